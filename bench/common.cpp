#include "common.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <variant>

#include "classify/packet_spec.hpp"
#include "kernel/skeleton.hpp"
#include "policy/parser.hpp"

namespace xdpguard::bench {

Args Args::parse(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) die("unexpected argument " + k);
    k = k.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
      a.kv[k] = argv[++i];
    else
      a.kv[k] = "1";
  }
  return a;
}

std::string Args::get(const std::string& key, const std::string& fallback) const {
  auto it = kv.find(key);
  return it == kv.end() ? fallback : it->second;
}

long Args::num(const std::string& key, long fallback) const {
  auto it = kv.find(key);
  return it == kv.end() ? fallback : std::stol(it->second);
}

void die(const std::string& message) {
  fmt::print(stderr, "xdpguard-bench: {}\n", message);
  std::exit(1);
}

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec);
}

static double quantile(const std::vector<double>& sorted, double q) {
  double pos = q * double(sorted.size() - 1);
  size_t lo = size_t(std::floor(pos)), hi = size_t(std::ceil(pos));
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

Summary summarize(std::vector<double> s) {
  Summary out;
  if (s.empty()) return out;
  std::sort(s.begin(), s.end());
  out.n = s.size();
  out.min = s.front();
  out.max = s.back();
  out.median = quantile(s, 0.5);
  out.q1 = quantile(s, 0.25);
  out.q3 = quantile(s, 0.75);
  return out;
}

Records::Records(const std::string& path) {
  if (!path.empty() && !(f_ = std::fopen(path.c_str(), "a"))) die("cannot open " + path);
}
Records::~Records() {
  if (f_) std::fclose(f_);
}

void Records::add(const std::vector<std::pair<std::string, std::string>>& fields) {
  if (!f_) return;
  std::string line = "{";
  for (size_t i = 0; i < fields.size(); ++i)
    line += fmt::format("{}{}: {}", i ? ", " : "", jstr(fields[i].first), fields[i].second);
  line += "}\n";
  std::fputs(line.c_str(), f_);
  std::fflush(f_);
}

std::string jstr(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", c);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string jnum(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "null"; }

BuiltPolicy build_policy(std::string_view yaml, const std::string& base_dir) {
  BuiltPolicy b;
  uint64_t t0 = now_ns();
  policy::ParseResult parsed = policy::parse_policy_text(yaml, "<bench policy>", base_dir);
  if (!parsed.ok()) {
    for (const auto& d : parsed.errors) fmt::print(stderr, "{}\n", d.to_string());
    die("benchmark policy rejected");
  }
  b.policy = std::make_unique<policy::Policy>(std::move(*parsed.policy));
  auto selected = policy::select_rules(*b.policy, "");
  if (auto* d = std::get_if<policy::Diagnostic>(&selected)) die(d->to_string());
  b.rules = std::get<policy::RuleSet>(std::move(selected));
  uint64_t t1 = now_ns();
  b.compiled = compile::compile(b.rules);
  uint64_t t2 = now_ns();
  b.parse_ms = double(t1 - t0) / 1e6;
  b.compile_ms = double(t2 - t1) / 1e6;
  return b;
}

std::string default_policy_with_set(const std::string& set, const std::string& replacement,
                                    bool as_file) {
  std::string text(kDefaultPolicyYaml);
  size_t at = text.find("\n  " + set + ":\n");
  if (at == std::string::npos) die("default policy has no peer set " + set);
  const std::string open = "cidrs: [0.0.0.0/0, ::/0]";
  size_t c = text.find(open, at);
  if (c == std::string::npos) die("peer set " + set + " has an unexpected cidrs line");
  text.replace(c, open.size(), as_file ? "file: " + replacement : "cidrs: " + replacement);
  return text;
}

Loaded load_datapath(const compile::CompiledPolicy& policy, const kernel::DatapathOptions& o) {
  uint64_t t0 = now_ns();
  auto dp = kernel::Datapath::load(policy, o);
  uint64_t t1 = now_ns();
  if (!dp) die("datapath load failed: " + dp.error().message);
  return Loaded{std::move(dp.value()), double(t1 - t0) / 1e6};
}

uint64_t map_memlock(int map_fd) {
  std::ifstream in(fmt::format("/proc/self/fdinfo/{}", map_fd));
  std::string key;
  while (in >> key) {
    if (key == "memlock:") {
      uint64_t v = 0;
      in >> v;
      return v;
    }
  }
  return 0;
}

uint64_t object_map_memlock(const kernel::Datapath& dp) {
  uint64_t total = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, dp.skeleton()->obj) {
    int fd = bpf_map__fd(m);
    if (fd >= 0) total += map_memlock(fd);
  }
  return total;
}

std::vector<uint8_t> frame(const std::string& spec) {
  auto parsed = classify::parse_packet_spec(spec);
  if (auto* err = std::get_if<std::string>(&parsed)) die("packet '" + spec + "': " + *err);
  return classify::build_frame(std::get<classify::PacketSpec>(parsed));
}

HoldPool::HoldPool(const std::string& devs) {
  size_t pos = 0;
  while (pos < devs.size()) {
    size_t comma = devs.find(',', pos);
    std::string name = devs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!name.empty()) {
      int idx = static_cast<int>(if_nametoindex(name.c_str()));
      if (!idx) die("hold device " + name + " not found");
      devs_.push_back(idx);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

HoldPool::~HoldPool() { release_all(); }

bool HoldPool::hold(int prog_fd) {
  for (int idx : devs_) {
    if (std::find(used_.begin(), used_.end(), idx) != used_.end()) continue;
    int err = bpf_xdp_attach(idx, prog_fd, XDP_FLAGS_SKB_MODE, nullptr);
    if (err) die(fmt::format("cannot hold program on ifindex {}: {}", idx, std::strerror(-err)));
    used_.push_back(idx);
    return true;
  }
  return false;
}

void HoldPool::release_all() {
  for (int idx : used_) bpf_xdp_detach(idx, XDP_FLAGS_SKB_MODE, nullptr);
  used_.clear();
}

double test_run_ns(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat,
                   uint32_t* retval, uint32_t* kernel_ns) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.repeat = repeat;
  uint64_t t0 = now_ns();
  int err = bpf_prog_test_run_opts(prog_fd, &opts);
  uint64_t t1 = now_ns();
  if (err) die(fmt::format("BPF_PROG_TEST_RUN: {}", std::strerror(-err)));
  if (retval) *retval = opts.retval;
  if (kernel_ns) *kernel_ns = opts.duration;
  return double(t1 - t0) / double(repeat);
}

void realtime_if_asked(const Args& args) {
  if (args.has("cpu")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<int>(args.num("cpu", 0)), &set);
    if (sched_setaffinity(0, sizeof(set), &set)) die("cannot pin to the CPU given by --cpu");
  }
  if (!args.has("rt")) return;
  sched_param sp{};
  sp.sched_priority = 10;
  if (sched_setscheduler(0, SCHED_FIFO, &sp)) die("cannot switch to SCHED_FIFO");
}

}  // namespace xdpguard::bench
