#include "kernel/probe.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <unistd.h>
#include <sys/vfs.h>
#include <time.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kernel/libbpf_log.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::kernel {

namespace {
// Without privilege every probe load fails like an unsupported feature would
// (libbpf reports both as "no"): ask about capabilities first, so the error
// names the real cause.
Status check_capabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t effective = 0;
  bool found = false;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) {
      effective = std::stoull(line.substr(7), nullptr, 16);
      found = true;
    }
  if (!found) return {};  // cannot tell: let the probes speak
  auto has = [effective](int cap) { return (effective >> cap) & 1; };
  constexpr int kCapNetAdmin = 12, kCapSysAdmin = 21, kCapBpf = 39;
  if ((has(kCapBpf) || has(kCapSysAdmin)) && has(kCapNetAdmin)) return {};
  return plain_error("missing privilege: loading and attaching xdpguard needs root, or "
                     "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)");
}
}  // namespace

Status probe_bpf_features() {
  if (auto st = check_capabilities(); !st) return st;
  std::vector<std::string> missing;
  auto note = [&](int ret, const char* what) -> Status {
    if (ret < 0)
      return errno_error(ret, std::string("cannot probe BPF support for ") + what +
                                  " (xdpguard needs root, or CAP_BPF and CAP_NET_ADMIN)");
    if (ret == 0) missing.emplace_back(what);
    return {};
  };
  const std::pair<int, const char*> checks[] = {
      {libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr), "XDP programs (4.8)"},
      {libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nullptr), "TC programs (4.1)"},
      {libbpf_probe_bpf_map_type(BPF_MAP_TYPE_HASH, nullptr), "HASH maps"},
      {libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, nullptr), "LRU_HASH maps (4.10)"},
      {libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_ARRAY, nullptr), "PERCPU_ARRAY maps"},
      {libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr), "the BPF ring buffer (5.8)"},
      {libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_jiffies64, nullptr),
       "bpf_jiffies64 in XDP (5.5)"},
  };
  for (auto [ret, what] : checks)
    if (auto st = note(ret, what); !st) return st;
  if (missing.empty()) return {};
  std::string list;
  for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
  return plain_error("this kernel lacks " + list + "; xdpguard needs " + kMinimumKernel +
                     " or newer");
}

uint8_t probe_datapath_clock() {
  static const uint8_t clock = [] {
    for (auto type : {BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS})
      if (libbpf_probe_bpf_helper(type, BPF_FUNC_ktime_get_coarse_ns, nullptr) != 1)
        return static_cast<uint8_t>(XDPG_CLOCK_PRECISE);
    return static_cast<uint8_t>(XDPG_CLOCK_COARSE);
  }();
  return clock;
}

bool probe_xdp_frags() {
  static const bool frags = [] {
    // "return XDP_PASS", loaded with the flag: kernels before 5.18 refuse the
    // unknown flag (EINVAL). The helper came with it; asked too, for a
    // backport that has one without the other.
    const bpf_insn insns[] = {
        {static_cast<uint8_t>(BPF_ALU64 | BPF_MOV | BPF_K), BPF_REG_0, 0, 0, XDP_PASS},
        {static_cast<uint8_t>(BPF_JMP | BPF_EXIT), 0, 0, 0, 0}};
    bpf_prog_load_opts opts{};
    opts.sz = sizeof(opts);
    opts.expected_attach_type = BPF_XDP;
    opts.prog_flags = BPF_F_XDP_HAS_FRAGS;
    QuietLibbpf quiet;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, nullptr, "GPL", insns, 2, &opts);
    if (fd < 0) return false;
    ::close(fd);
    return libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_get_buff_len, nullptr) == 1;
  }();
  return frags;
}

const char* clock_name(uint8_t clock) {
  return clock == XDPG_CLOCK_COARSE ? "coarse" : "precise";
}

uint64_t clock_now_ns(uint8_t clock) {
  timespec ts{};
  clock_gettime(clock == XDPG_CLOCK_COARSE ? CLOCK_MONOTONIC_COARSE : CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

Status check_bpffs(const std::string& path) {
  std::filesystem::path p(path);
  std::error_code ec;
  while (!p.empty() && !std::filesystem::exists(p, ec) && p != p.root_path())
    p = p.parent_path();
  struct statfs fs {};
  if (::statfs(p.c_str(), &fs) != 0) return errno_error(errno, "cannot stat " + p.string());
  if (static_cast<unsigned long>(fs.f_type) != BPF_FS_MAGIC)
    return plain_error(p.string() + " is not on a bpf filesystem; mount it with "
                       "`mount -t bpf bpf /sys/fs/bpf` (needed to keep xdpguard's maps "
                       "after the command exits; under `ip netns exec`, which remounts /sys, use "
                       "`nsenter --net=/run/netns/NAME` instead)");
  return {};
}

}  // namespace xdpguard::kernel
