// Per-packet cost with BPF_PROG_TEST_RUN: the bare XDP_DROP floor, xdp-filter
// and xdpguard's default policy, per packet class, in one invocation; also
// the same policy with learning on (docs/learn.md).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <arpa/inet.h>
#include <sched.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>

#include "bench_progs.skel.h"
#include "kernel/probe.hpp"
#include "kernel/skeleton.hpp"
#include "common.hpp"
#include "subcommands.hpp"

namespace xdpguard::bench {
namespace {

struct PacketClass {
  const char* name;
  const char* spec;
  double mix_weight;  // share of the traffic mix
  bool narrowed;      // run against the policy with admin-hosts narrowed
  int expect;         // xdpguard's expected verdict
};

// The server is 198.51.100.10 / 2001:db8::10. The reply's flow is inserted
// before the runs; admin-hosts is narrowed to 10.0.0.0/8 for the
// peer-outside-set class only.
constexpr PacketClass kClasses[] = {
    {"tcp-443-allowed", "tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags A len 20", 0.35, false, XDP_PASS},
    {"tcp-reply-tracked", "tcp 203.0.113.5:443 -> 198.51.100.10:40001 flags A len 20", 0.25, false, XDP_PASS},
    {"udp-162-trap", "udp 192.0.2.7:40000 -> 198.51.100.10:162 len 20", 0.10, false, XDP_PASS},
    {"drop-undocumented-port", "tcp 192.0.2.7:40000 -> 198.51.100.10:8080 flags S len 20", 0.10, false, XDP_DROP},
    {"drop-peer-outside-set", "tcp 192.0.2.7:40000 -> 198.51.100.10:22 flags S len 20", 0.05, true, XDP_DROP},
    {"ipv6-tcp-443", "tcp [2001:db8::7]:51515 -> [2001:db8::10]:443 flags A len 20", 0.10, false, XDP_PASS},
    {"vlan-tcp-443", "tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags A len 20 vlan 100", 0.05, false, XDP_PASS},
};

// The flow the host opened to 203.0.113.5:443, as egress would record it.
void insert_reply_flow(const kernel::Datapath& dp) {
  bpf_map* flows = dp.skeleton()->maps.flows_v4;
  xdpg_flow_v4_key k{};
  k.protocol = 6;
  k.local_port = 40001;
  k.remote_port = 443;
  inet_pton(AF_INET, "198.51.100.10", k.local_addr);
  inet_pton(AF_INET, "203.0.113.5", k.remote_addr);
  xdpg_flow_value v{};
  v.last_seen_ns = v.created_ns = kernel::clock_now_ns(dp.clock());
  if (int err = bpf_map_update_elem(bpf_map__fd(flows), &k, &v, BPF_ANY))
    die(fmt::format("cannot insert the reply flow: {}", std::strerror(-err)));
}

int xdp_filter_fd(const Args& args) {
  long id = args.num("xdp-filter-id", 0);
  if (!id && args.has("xdp-filter-dev")) {
    int idx = static_cast<int>(if_nametoindex(args.get("xdp-filter-dev").c_str()));
    if (!idx) die("no device " + args.get("xdp-filter-dev"));
    uint32_t pid = 0;
    if (bpf_xdp_query_id(idx, 0, &pid) || !pid) die("no XDP program on the xdp-filter device");
    id = pid;
  }
  if (!id) return -1;
  int fd = bpf_prog_get_fd_by_id(static_cast<uint32_t>(id));
  if (fd < 0) die(fmt::format("cannot open xdp-filter program id {}", id));
  return fd;
}

// One frame test-run on every CPU at once (the tracked reply: every CPU
// refreshes the same flow entry). A datapath writing the entry per packet
// bounces its cache line between the CPUs. ns/packet of each thread,
// summarized over threads and runs; empty with a single CPU.
// Per round, ns/packet of each CPU's thread; `frame_of(cpu)` is its frame.
std::vector<std::vector<double>> every_cpu_rounds(
    int fd, const std::function<std::vector<uint8_t>(int)>& frame_of, uint32_t repeat, int runs) {
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::vector<double>> rounds;
  if (ncpu < 2) return rounds;
  std::vector<std::vector<uint8_t>> frames;
  for (int c = 0; c < ncpu; ++c) frames.push_back(frame_of(c));
  for (int r = 0; r < runs; ++r) {
    std::vector<double> per(ncpu);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < ncpu; ++c)
      threads.emplace_back([&, c] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(c, &set);
        sched_setaffinity(0, sizeof(set), &set);  // this thread
        ready.fetch_add(1);
        while (ready.load() < ncpu) {
        }
        per[c] = test_run_ns(fd, frames[c], repeat);
      });
    for (auto& t : threads) t.join();
    rounds.push_back(per);
  }
  return rounds;
}

Summary on_every_cpu(int fd, const std::vector<uint8_t>& f, uint32_t repeat, int runs) {
  std::vector<double> ns;
  for (const auto& per : every_cpu_rounds(fd, [&](int) { return f; }, repeat, runs))
    ns.insert(ns.end(), per.begin(), per.end());
  return summarize(ns);
}

// Drop rate on every CPU at once over one CPU's alone, per round (the lone
// run on this thread's CPU, right before): sum over the threads of
// packets/ns, over the lone thread's. Flat at 1 would mean the CPUs share a
// cache line written per packet; the CPU count, that nothing is shared.
struct Scaling {
  Summary ratio, one_ns, all_ns;
};
Scaling drop_scaling(int fd, const std::function<std::vector<uint8_t>(int)>& frame_of,
                     uint32_t repeat, int runs) {
  std::vector<double> ratio, one, all;
  for (int r = 0; r < runs; ++r) {
    double lone = test_run_ns(fd, frame_of(0), repeat);
    auto rounds = every_cpu_rounds(fd, frame_of, repeat, 1);
    if (rounds.empty()) break;
    double rate = 0;
    for (double ns : rounds[0]) rate += 1 / ns, all.push_back(ns);
    one.push_back(lone);
    ratio.push_back(rate * lone);
  }
  return {summarize(ratio), summarize(one), summarize(all)};
}

std::string spread(const Summary& s) { return fmt::format("{:.2f} [{:.2f}-{:.2f}]", s.median, s.min, s.max); }

}  // namespace

int run_cost(const Args& args) {
  const uint32_t repeat = static_cast<uint32_t>(args.num("repeat", 1'000'000));
  const int runs = static_cast<int>(args.num("runs", 7));
  Records rec(args.get("out"));
  HoldPool holds(args.get("hold-devs"));
  realtime_if_asked(args);

  kernel::DatapathOptions opts;
  opts.egress_mode = XDPG_EGRESS_ENFORCE;
  BuiltPolicy def = build_policy(kDefaultPolicyYaml);
  Loaded guard = load_datapath(def.compiled, opts);
  BuiltPolicy nar = build_policy(default_policy_with_set("admin-hosts", "[10.0.0.0/8, \"fd00::/8\"]"));
  Loaded guard_nar = load_datapath(nar.compiled, opts);
  insert_reply_flow(guard.dp);
  // The same datapath on the precise clock (what kernels before 5.11 get):
  // the clock's share of the classes that read it.
  kernel::DatapathOptions precise_opts = opts;
  precise_opts.precise_clock = true;
  Loaded guard_precise = load_datapath(def.compiled, precise_opts);
  insert_reply_flow(guard_precise.dp);
  // The same datapath learning (docs/learn.md): what recording peers adds.
  kernel::DatapathOptions learn_opts = opts;
  learn_opts.learn = true;
  Loaded guard_learn = load_datapath(def.compiled, learn_opts);
  insert_reply_flow(guard_learn.dp);

  bench_progs* progs = bench_progs__open_and_load();
  if (!progs) die("cannot load bench_progs.bpf.o");
  int floor_fd = bpf_program__fd(progs->progs.bench_drop);
  // A second copy of the floor that is never held: shows the dispatcher swap.
  bench_progs* unheld = bench_progs__open_and_load();
  if (!unheld) die("cannot load bench_progs.bpf.o");
  int filter_fd = xdp_filter_fd(args);

  bool held = holds.hold(floor_fd) && holds.hold(guard.dp.prog_fd()) &&
              holds.hold(guard_nar.dp.prog_fd()) && holds.hold(guard_precise.dp.prog_fd()) &&
              holds.hold(guard_learn.dp.prog_fd());
  if (!args.get("hold-devs").empty() && !held) die("not enough --hold-devs (need 5)");
  // xdp-filter stays attached where it was loaded, so it is already held.

  struct Case {
    std::string program, cls;
    int fd;
    std::vector<uint8_t> frame;
    int expect;  // -1: not checked
    double weight;
    std::vector<double> ns, kns;
    uint32_t retval = 0;
  };
  std::vector<Case> cases;
  for (const auto& c : kClasses) {
    auto f = frame(c.spec);
    cases.push_back({"floor", c.name, floor_fd, f, XDP_DROP, c.mix_weight, {}, {}});
    if (filter_fd >= 0) cases.push_back({"xdp-filter", c.name, filter_fd, f, -1, c.mix_weight, {}, {}});
    cases.push_back({"xdpguard", c.name, c.narrowed ? guard_nar.dp.prog_fd() : guard.dp.prog_fd(),
                     f, c.expect, c.mix_weight, {}, {}});
  }
  for (const char* cls : {"tcp-reply-tracked", "drop-undocumented-port"})
    for (const auto& c : kClasses)
      if (std::string(c.name) == cls)
        cases.push_back({"xdpguard-precise-clock", c.name, guard_precise.dp.prog_fd(),
                         frame(c.spec), c.expect, 0, {}, {}});
  for (const auto& c : kClasses)
    if (!c.narrowed)
      cases.push_back({"xdpguard-learning", c.name, guard_learn.dp.prog_fd(), frame(c.spec),
                       c.expect, 0, {}, {}});
  // Probes: what a tracked reply adds, part by part (see progs.bpf.c).
  {
    xdpg_flow_key k{};
    k.family = 4;
    k.protocol = 6;
    k.local_port = 40001;
    k.remote_port = 443;
    k.local_addr[0] = 198;
    k.remote_addr[0] = 203;
    xdpg_flow_v4_key k16{};
    k16.protocol = 6;
    k16.local_port = 40001;
    k16.remote_port = 443;
    k16.local_addr[0] = 198;
    k16.remote_addr[0] = 203;
    xdpg_flow_value v{};
    if (bpf_map_update_elem(bpf_map__fd(progs->maps.probe_flows), &k, &v, BPF_ANY) ||
        bpf_map_update_elem(bpf_map__fd(progs->maps.probe_flows16), &k16, &v, BPF_ANY))
      die("cannot fill the probe flow maps");
    const std::pair<const char*, bpf_program*> probes[] = {
        {"probe-ktime", progs->progs.bench_ktime},
        {"probe-ktime-coarse", progs->progs.bench_ktime_coarse},
        {"probe-flow-lookup", progs->progs.bench_flow_lookup},
        {"probe-flow-lookup16", progs->progs.bench_flow_lookup16}};
    for (auto [name, prog] : probes) {
      if (!holds.hold(bpf_program__fd(prog)) && !args.get("hold-devs").empty())
        die("not enough --hold-devs (need 9)");
      cases.push_back({name, "tcp-443-allowed", bpf_program__fd(prog), frame(kClasses[0].spec),
                       XDP_DROP, 0, {}, {}});
    }
  }
  cases.push_back({"floor-unheld", "tcp-443-allowed", bpf_program__fd(unheld->progs.bench_drop),
                   frame(kClasses[0].spec), XDP_DROP, 0, {}, {}});

  // Warm up, then interleave the runs so drift hits every case alike.
  for (auto& c : cases) test_run_ns(c.fd, c.frame, repeat / 10, &c.retval);
  for (int r = 0; r < runs; ++r)
    for (auto& c : cases) {
      uint32_t k = 0;
      c.ns.push_back(test_run_ns(c.fd, c.frame, repeat, &c.retval, &k));
      c.kns.push_back(k);
    }

  std::map<std::pair<std::string, std::string>, Summary> med;
  for (auto& c : cases) {
    Summary s = summarize(c.ns), ks = summarize(c.kns);
    med[{c.program, c.cls}] = s;
    bool ok = c.expect < 0 || int(c.retval) == c.expect;
    if (!ok)
      fmt::print(stderr, "warning: {} on {} returned {}, expected {}\n", c.program, c.cls,
                 c.retval, c.expect);
    rec.add({{"section", jstr("cost")}, {"program", jstr(c.program)}, {"class", jstr(c.cls)},
             {"median_ns", jnum(s.median)}, {"min_ns", jnum(s.min)}, {"max_ns", jnum(s.max)},
             {"q1_ns", jnum(s.q1)}, {"q3_ns", jnum(s.q3)}, {"runs", jnum(double(s.n))},
             {"repeat", jnum(repeat)}, {"retval", jnum(c.retval)},
             {"kernel_median_ns", jnum(ks.median)}, {"kernel_min_ns", jnum(ks.min)},
             {"kernel_max_ns", jnum(ks.max)},
             {"verdict_ok", ok ? "true" : "false"}, {"frame_bytes", jnum(double(c.frame.size()))}});
  }

  fmt::print("Per-packet cost, BPF_PROG_TEST_RUN, repeat {}, {} runs: median [min-max] ns/packet\n",
             repeat, runs);
  fmt::print("{:<24} {:>22} {:>22} {:>22} {:>9} {:>9}\n", "class", "floor (XDP_DROP)",
             filter_fd >= 0 ? "xdp-filter" : "xdp-filter (absent)", "xdpguard", "g/floor", "g/filter");
  double mix[3] = {0, 0, 0}, stateless[3] = {0, 0, 0}, stateless_w = 0;
  for (const auto& c : kClasses) {
    const Summary& fl = med[{"floor", c.name}];
    const Summary& g = med[{"xdpguard", c.name}];
    Summary xf = filter_fd >= 0 ? med[{"xdp-filter", c.name}] : Summary{};
    mix[0] += c.mix_weight * fl.median;
    mix[1] += c.mix_weight * xf.median;
    mix[2] += c.mix_weight * g.median;
    if (std::string(c.name) != "tcp-reply-tracked") {
      stateless[0] += c.mix_weight * fl.median;
      stateless[1] += c.mix_weight * xf.median;
      stateless[2] += c.mix_weight * g.median;
      stateless_w += c.mix_weight;
    }
    fmt::print("{:<24} {:>22} {:>22} {:>22} {:>9.2f} {:>9}\n", c.name, spread(fl),
               filter_fd >= 0 ? spread(xf) : "-", spread(g), g.median / fl.median,
               filter_fd >= 0 ? fmt::format("{:.2f}", g.median / xf.median) : "-");
    rec.add({{"section", jstr("cost-ratio")}, {"class", jstr(c.name)},
             {"xdpguard_over_floor", jnum(g.median / fl.median)},
             {"xdpguard_over_xdp_filter", filter_fd >= 0 ? jnum(g.median / xf.median) : "null"},
             {"mix_weight", jnum(c.mix_weight)}});
  }
  fmt::print("{:<24} {:>22.2f} {:>22} {:>22.2f} {:>9.2f} {:>9}\n", "traffic mix (weighted)", mix[0],
             filter_fd >= 0 ? fmt::format("{:.2f}", mix[1]) : "-", mix[2], mix[2] / mix[0],
             filter_fd >= 0 ? fmt::format("{:.2f}", mix[2] / mix[1]) : "-");
  fmt::print("{:<24} {:>22.2f} {:>22} {:>22.2f} {:>9.2f} {:>9}\n", "mix w/o tracked replies",
             stateless[0] / stateless_w,
             filter_fd >= 0 ? fmt::format("{:.2f}", stateless[1] / stateless_w) : "-",
             stateless[2] / stateless_w, stateless[2] / stateless[0],
             filter_fd >= 0 ? fmt::format("{:.2f}", stateless[2] / stateless[1]) : "-");
  rec.add({{"section", jstr("cost-ratio")}, {"class", jstr("mix-without-tracked-replies")},
           {"floor_ns", jnum(stateless[0] / stateless_w)},
           {"xdp_filter_ns", filter_fd >= 0 ? jnum(stateless[1] / stateless_w) : "null"},
           {"xdpguard_ns", jnum(stateless[2] / stateless_w)},
           {"xdpguard_over_floor", jnum(stateless[2] / stateless[0])},
           {"xdpguard_over_xdp_filter", filter_fd >= 0 ? jnum(stateless[2] / stateless[1]) : "null"}});
  const Summary& uh = med[{"floor-unheld", "tcp-443-allowed"}];
  fmt::print("floor not held attached (includes the XDP dispatcher swap): {}\n", spread(uh));
  fmt::print("xdpguard clock: {}; on the precise clock: tcp-reply-tracked {}, "
             "drop-undocumented-port {}\n",
             kernel::clock_name(guard.dp.clock()),
             spread(med[{"xdpguard-precise-clock", "tcp-reply-tracked"}]),
             spread(med[{"xdpguard-precise-clock", "drop-undocumented-port"}]));
  fmt::print("learning on (docs/learn.md), same policy: median ns/packet and on/off ratio:");
  for (const auto& c : kClasses) {
    if (c.narrowed) continue;
    const Summary& on = med[{"xdpguard-learning", c.name}];
    const Summary& off = med[{"xdpguard", c.name}];
    fmt::print(" {} {} ({:.2f}x);", c.name, spread(on), on.median / off.median);
    rec.add({{"section", jstr("cost-learning")}, {"class", jstr(c.name)},
             {"median_ns", jnum(on.median)}, {"min_ns", jnum(on.min)}, {"max_ns", jnum(on.max)},
             {"on_over_off", jnum(on.median / off.median)}});
  }
  fmt::print("\n");
  // Write avoidance (docs/datapath.md 8.2) only shows when CPUs share a flow.
  const auto reply = frame(kClasses[1].spec);
  Summary both = on_every_cpu(guard.dp.prog_fd(), reply, repeat, runs);
  Summary both_precise = on_every_cpu(guard_precise.dp.prog_fd(), reply, repeat, runs);
  fmt::print("tcp-reply-tracked on every CPU at once, same flow: {} ({} clock); {} (precise "
             "clock: last_seen written every packet)\n",
             spread(both), kernel::clock_name(guard.dp.clock()), spread(both_precise));
  rec.add({{"section", jstr("cost-contended")}, {"class", jstr(kClasses[1].name)},
           {"median_ns", jnum(both.median)}, {"min_ns", jnum(both.min)}, {"max_ns", jnum(both.max)},
           {"precise_median_ns", jnum(both_precise.median)},
           {"precise_min_ns", jnum(both_precise.min)}, {"precise_max_ns", jnum(both_precise.max)}});
  // A drop flood on every CPU: from one source (every CPU drops the same
  // peer's packets: its top_peers entry, its top_ports slot) and from a
  // source per CPU.
  const PacketClass& undoc = kClasses[3];
  for (bool one_source : {true, false}) {
    Scaling sc = drop_scaling(
        guard.dp.prog_fd(),
        [&](int cpu) {
          std::string spec = undoc.spec;
          if (!one_source) spec.replace(spec.find("192.0.2.7"), 9, fmt::format("192.0.2.{}", 20 + cpu));
          return frame(spec);
        },
        repeat, runs);
    const char* what = one_source ? "one-source" : "source-per-cpu";
    fmt::print("{} on {} CPUs at once, {}: drop rate {:.2f}x one CPU's [{:.2f}-{:.2f}]; ns/packet "
               "alone {}, each at once {}\n",
               undoc.name, std::thread::hardware_concurrency(), what, sc.ratio.median,
               sc.ratio.min, sc.ratio.max, spread(sc.one_ns), spread(sc.all_ns));
    rec.add({{"section", jstr("cost-scaling")}, {"class", jstr(undoc.name)}, {"flood", jstr(what)},
             {"cpus", jnum(std::thread::hardware_concurrency())},
             {"rate_ratio_median", jnum(sc.ratio.median)}, {"rate_ratio_min", jnum(sc.ratio.min)},
             {"rate_ratio_max", jnum(sc.ratio.max)}, {"alone_median_ns", jnum(sc.one_ns.median)},
             {"each_median_ns", jnum(sc.all_ns.median)}});
  }
  fmt::print("probe: bpf_ktime_get_ns() alone: {}; bpf_ktime_get_coarse_ns() alone: {}\n",
             spread(med[{"probe-ktime", "tcp-443-allowed"}]),
             spread(med[{"probe-ktime-coarse", "tcp-443-allowed"}]));
  fmt::print("probe: flow-table lookup alone, 40-byte key: {}; 16-byte key: {}\n",
             spread(med[{"probe-flow-lookup", "tcp-443-allowed"}]),
             spread(med[{"probe-flow-lookup16", "tcp-443-allowed"}]));
  rec.add({{"section", jstr("cost-ratio")}, {"class", jstr("mix")},
           {"floor_ns", jnum(mix[0])}, {"xdp_filter_ns", filter_fd >= 0 ? jnum(mix[1]) : "null"},
           {"xdpguard_ns", jnum(mix[2])}, {"xdpguard_over_floor", jnum(mix[2] / mix[0])},
           {"xdpguard_over_xdp_filter", filter_fd >= 0 ? jnum(mix[2] / mix[1]) : "null"}});

  holds.release_all();
  bench_progs__destroy(progs);
  bench_progs__destroy(unheld);
  return 0;
}

}  // namespace xdpguard::bench
