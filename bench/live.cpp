// The veth drop-rate benchmark's moving parts: attach a receiver program,
// drive the live-frames generator, and print xdp-filter's port list.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include "bench_progs.skel.h"
#include "common.hpp"
#include "subcommands.hpp"

namespace xdpguard::bench {
namespace {

int ifindex_of(const std::string& dev) {
  int idx = static_cast<int>(if_nametoindex(dev.c_str()));
  if (!idx) die("no device " + dev);
  return idx;
}

void pin_cpu(long cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  if (sched_setaffinity(0, sizeof(set), &set)) die("cannot pin to CPU " + std::to_string(cpu));
}

bool parse_mac(const std::string& s, uint8_t* out) {
  unsigned b[6];
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
    return false;
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(b[i]);
  return true;
}

}  // namespace

// Loads `--prog` (xdpguard | drop | pass) and attaches it in native mode to
// `--dev`. The attachment outlives this process (netlink, no bpf_link);
// `ip link set DEV xdp off` removes it. For xdpguard, `--peer-set NAME
// --set-file FILE` replaces that peer set of the default policy by the
// prefixes in FILE (one per line).
int run_attach(const Args& args) {
  int idx = ifindex_of(args.get("dev"));
  std::string which = args.get("prog");
  int fd = -1;
  std::optional<Loaded> guard;
  bench_progs* progs = nullptr;
  if (which == "xdpguard") {
    kernel::DatapathOptions opts;
    opts.egress_mode = XDPG_EGRESS_ENFORCE;
    BuiltPolicy b = args.has("peer-set")
                        ? build_policy(default_policy_with_set(args.get("peer-set"),
                                                               args.get("set-file"), true))
                        : build_policy(kDefaultPolicyYaml);
    guard.emplace(load_datapath(b.compiled, opts));
    fd = guard->dp.prog_fd();
  } else if (which == "drop" || which == "pass") {
    if (!(progs = bench_progs__open_and_load())) die("cannot load bench_progs.bpf.o");
    fd = bpf_program__fd(which == "drop" ? progs->progs.bench_drop : progs->progs.bench_pass);
  } else {
    die("--prog must be xdpguard, drop or pass");
  }
  if (int err = bpf_xdp_attach(idx, fd, XDP_FLAGS_DRV_MODE, nullptr))
    die(fmt::format("cannot attach {} to {}: {}", which, args.get("dev"), std::strerror(-err)));
  if (progs) bench_progs__destroy(progs);
  return 0;
}

namespace {

// run_time_ns and run_cnt of a program (kernel.bpf_stats), by id.
std::pair<uint64_t, uint64_t> prog_run_stats(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) die(fmt::format("no program with id {}", id));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) die("cannot read the program's info");
  close(fd);
  return {info.run_time_ns, info.run_cnt};
}

}  // namespace

// The live-frames generator: XDP_TX of one frame, BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES on `--dev`, for `--seconds`. Prints one JSON
// object: packets offered and the exact duration. With `--stats-prog-id ID`
// the kernel's BPF run-time statistics are on while it runs (only then: the
// fd of BPF_ENABLE_STATS holds them), and the object has that program's run
// time and run count over the run: the receiver program's own cost per packet
// on the real path, which test_run cannot show (cold caches, other work).
int run_gen(const Args& args) {
  pin_cpu(args.num("cpu", -1));
  int idx = ifindex_of(args.get("dev"));
  auto f = frame(args.get("packet"));
  if (!parse_mac(args.get("dst-mac"), f.data()) || !parse_mac(args.get("src-mac"), f.data() + 6))
    die("--dst-mac and --src-mac take aa:bb:cc:dd:ee:ff");
  bench_progs* progs = bench_progs__open_and_load();
  if (!progs) die("cannot load bench_progs.bpf.o");
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(f.size());
  ctx.ingress_ifindex = static_cast<uint32_t>(idx);
  const uint32_t repeat = static_cast<uint32_t>(args.num("repeat", 1 << 18));
  const double seconds = std::stod(args.get("seconds", "3"));
  const auto stats_id = static_cast<uint32_t>(args.num("stats-prog-id", 0));
  int stats_fd = -1;
  std::pair<uint64_t, uint64_t> stats0{};
  if (stats_id) {
    if ((stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0) die("cannot enable BPF run-time stats");
    stats0 = prog_run_stats(stats_id);
  }
  uint64_t sent = 0, t0 = now_ns(), t1 = t0;
  while (double(t1 - t0) / 1e9 < seconds) {
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = f.data();
    opts.data_size_in = static_cast<uint32_t>(f.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    opts.repeat = repeat;
    opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
    opts.batch_size = static_cast<uint32_t>(args.num("batch", 64));
    if (int err = bpf_prog_test_run_opts(bpf_program__fd(progs->progs.bench_tx), &opts))
      die(fmt::format("live-frames test run: {}", std::strerror(-err)));
    sent += repeat;
    t1 = now_ns();
  }
  std::string prog;
  if (stats_id) {
    auto [ns, cnt] = prog_run_stats(stats_id);
    close(stats_fd);
    prog = fmt::format(", \"prog_run_ns\": {}, \"prog_run_cnt\": {}", ns - stats0.first,
                       cnt - stats0.second);
  }
  fmt::print("{{\"offered\": {}, \"seconds\": {:.6f}{}}}\n", sent, double(t1 - t0) / 1e9, prog);
  bench_progs__destroy(progs);
  return 0;
}

// "tcp dst 443" lines: the inbound ports of the default policy as xdp-filter
// sees them: local ports by destination, remote ports (replies) by source.
int run_filter_ports(const Args&) {
  BuiltPolicy b = build_policy(kDefaultPolicyYaml);
  std::set<std::tuple<std::string, std::string, unsigned>> out;
  for (const auto& [index, mask] : b.compiled.port_entries) {
    unsigned kind = index >> 16, port = index & 0xffff;
    switch (kind) {
      case XDPG_KIND_TCP_LOCAL: out.insert({"tcp", "dst", port}); break;
      case XDPG_KIND_UDP_LOCAL: out.insert({"udp", "dst", port}); break;
      case XDPG_KIND_TCP_REMOTE: out.insert({"tcp", "src", port}); break;
      case XDPG_KIND_UDP_REMOTE: out.insert({"udp", "src", port}); break;
      default: break;
    }
  }
  for (const auto& [proto, mode, port] : out) fmt::print("{} {} {}\n", proto, mode, port);
  return 0;
}

// The policy built into xdpguard (and this tool), for the agent benchmark's
// policy file.
int run_default_policy(const Args&) {
  fmt::print("{}", kDefaultPolicyYaml);
  return 0;
}

}  // namespace xdpguard::bench
