// Drop telemetry of the real object through BPF_PROG_TEST_RUN: events, the
// per-CPU rate limit per reason, suppressed counts and the top lists.
//
// Expected behaviour:
// - a dropped packet produces exactly one event describing it (addresses,
//   ports, protocol, TCP flags, reason, rule slot, length, direction), and
//   counts once in top_ports and top_peers; a passed packet produces none;
// - egress drops and audit would-drops are reported too, the latter flagged
//   as passed;
// - a flood of N drops (one BPF_PROG_TEST_RUN with repeat N, one CPU) gives
//   E events with burst <= E <= burst + rate x elapsed, emitted == E,
//   suppressed == N - E, and the suppressed counts carried by the events
//   plus what is still pending add up to the suppressed total;
// - the top lists are exact up to XDPG_TOP_EXACT_PER_TICK drops per tick,
//   CPU and reason, and an unbiased sample (1 in XDPG_TOP_SAMPLE, weighted)
//   beyond.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <variant>

#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "telemetry/drops.hpp"
#include "telemetry/events.hpp"
#include "telemetry/prometheus.hpp"

namespace xdpguard::telemetry {
namespace {

using kernel::Datapath;
using kernel::DatapathOptions;
using kernel::MapId;

constexpr uint64_t kRuleHttps = 1ULL << 0;  // tcp/443 from 10.0.0.0/8
constexpr uint64_t kRuleDns = 1ULL << 1;    // udp/53 from anywhere

xdpg_peer_v4_key v4_key(const char* addr, uint32_t prefix) {
  xdpg_peer_v4_key k{};
  k.prefixlen = prefix;
  inet_pton(AF_INET, addr, k.addr);
  return k;
}

xdpg_rule_meta meta(const char* id) {
  xdpg_rule_meta m{};
  std::strncpy(m.id, id, sizeof(m.id) - 1);
  return m;
}

compile::CompiledPolicy policy() {
  compile::CompiledPolicy p;
  p.port_entries = {{compile::port_table_index(XDPG_KIND_UDP_LOCAL, 53), kRuleDns},
                    {compile::port_table_index(XDPG_KIND_TCP_LOCAL, 443), kRuleHttps}};
  p.peers_v4 = compile::peer_table<xdpg_peer_v4_key>(
      {{v4_key("0.0.0.0", 0), kRuleDns}, {v4_key("10.0.0.0", 8), kRuleHttps | kRuleDns}});
  p.rule_meta = {meta("https-in"), meta("dns-in")};
  p.rule_flags[XDPG_RULE_REMOTE_INIT] = kRuleHttps | kRuleDns;
  p.info.rule_count = 2;
  return p;
}

Datapath load(uint32_t rate, uint32_t burst, bool audit = false) {
  DatapathOptions o;
  o.event_rate = rate;
  o.event_burst = burst;
  o.audit = audit;
  auto dp = Datapath::load(policy(), o);
  if (!dp) throw std::runtime_error(dp.error().message);
  return std::move(*dp);
}

std::vector<uint8_t> frame(const char* text) {
  auto spec = classify::parse_packet_spec(text);
  if (auto* err = std::get_if<std::string>(&spec)) ADD_FAILURE() << text << ": " << *err;
  return classify::build_frame(std::get<classify::PacketSpec>(spec));
}

// Everything waiting in the ring buffer.
std::vector<DropEvent> drain(const Datapath& dp) {
  std::vector<DropEvent> out;
  auto reader = EventReader::open_fds(
      {{"test0", dp.map_fd(MapId::Events), dp.map_fd(MapId::RuleMeta)}},
      [&](const DropEvent& e) { out.push_back(e); });
  EXPECT_TRUE(reader.ok()) << reader.error().message;
  if (reader) {
    auto n = (*reader)->consume();
    EXPECT_TRUE(n.ok()) << n.error().message;
  }
  return out;
}

EventCounters counters(const Datapath& dp) {
  auto c = read_event_counters(dp.map_fd(MapId::EventLimits));
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c ? *c : EventCounters{};
}

uint32_t idx(uint32_t dir, uint32_t reason) { return dir * XDPG_DROP_REASON_COUNT + reason; }

std::string addr(uint8_t family, const uint8_t* a) { return address_text(family, a); }

TEST(DropEvents, OneEventPerDropDescribingItAndNoneForPasses) {
  Datapath dp = load(1000, 100);
  auto pass = frame("tcp 10.1.2.3:40000 -> 192.0.2.1:443 flags S");
  auto not_in_set = frame("tcp 198.51.100.9:40001 -> 192.0.2.1:443 flags SA len 10");
  auto no_rule6 = frame("udp [2001:db8::9]:5353 -> [2001:db8::1]:9999");
  for (int i = 0; i < 50; ++i) ASSERT_EQ(*dp.test_run(pass), XDP_PASS);
  EXPECT_TRUE(drain(dp).empty()) << "a passed packet must not produce an event";

  ASSERT_EQ(*dp.test_run(not_in_set), XDP_DROP);
  ASSERT_EQ(*dp.test_run(no_rule6), XDP_DROP);
  auto events = drain(dp);
  ASSERT_EQ(events.size(), 2u);

  const auto& a = events[0];
  EXPECT_EQ(a.iface, "test0");
  EXPECT_EQ(a.raw.direction, 0);
  EXPECT_EQ(a.raw.family, 4);
  EXPECT_EQ(a.raw.protocol, IPPROTO_TCP);
  EXPECT_EQ(addr(4, a.raw.saddr), "198.51.100.9");
  EXPECT_EQ(addr(4, a.raw.daddr), "192.0.2.1");
  EXPECT_EQ(a.raw.sport, 40001);
  EXPECT_EQ(a.raw.dport, 443);
  EXPECT_EQ(a.raw.tcp_flags, 0x12);
  EXPECT_EQ(a.raw.reason, XDPG_DROP_PEER_NOT_IN_SET);
  EXPECT_EQ(a.raw.rule, 0u);
  EXPECT_EQ(a.rule_id, "https-in");
  EXPECT_EQ(a.raw.packet_len, not_in_set.size());
  EXPECT_EQ(a.raw.flags, 0);
  EXPECT_EQ(a.raw.suppressed, 0u);
  EXPECT_EQ(event_text(a),
            "drop ingress test0 tcp 198.51.100.9:40001 -> 192.0.2.1:443 flags=SA "
            "reason=peer_not_in_set rule=https-in len=" + std::to_string(not_in_set.size()) +
                " suppressed=0");
  // The event's time is the kernel's clock put on the wall clock: now-ish.
  auto age = std::chrono::system_clock::now() - a.time;
  EXPECT_LT(std::chrono::abs(age), std::chrono::seconds(5));

  const auto& b = events[1];
  EXPECT_EQ(b.raw.family, 6);
  EXPECT_EQ(b.raw.protocol, IPPROTO_UDP);
  EXPECT_EQ(addr(6, b.raw.saddr), "2001:db8::9");
  EXPECT_EQ(b.raw.dport, 9999);
  EXPECT_EQ(b.raw.reason, XDPG_DROP_NO_RULE);
  EXPECT_EQ(b.raw.rule, XDPG_NO_RULE);
  EXPECT_EQ(b.rule_id, "");
  const Json bj = event_json(b);
  EXPECT_TRUE(bj["rule"].is_null()) << json_text(bj);
  EXPECT_EQ(bj["src"], "2001:db8::9") << json_text(bj);

  auto c = counters(dp);
  EXPECT_EQ(c[idx(0, XDPG_DROP_PEER_NOT_IN_SET)].emitted, 1u);
  EXPECT_EQ(c[idx(0, XDPG_DROP_NO_RULE)].emitted, 1u);
  uint64_t suppressed = 0;
  for (const auto& l : c) suppressed += l.suppressed;
  EXPECT_EQ(suppressed, 0u);

  auto tops = read_drop_tops(dp.map_fd(MapId::TopPorts), dp.map_fd(MapId::TopPeers), 10);
  ASSERT_TRUE(tops.ok()) << tops.error().message;
  ASSERT_EQ(tops->ports.size(), 2u);
  ASSERT_EQ(tops->peers.size(), 2u);
  for (const auto& p : tops->ports) {
    EXPECT_EQ(p.packets, 1u);
    EXPECT_EQ(p.direction, 0);
    EXPECT_TRUE((p.protocol == IPPROTO_TCP && p.port == 443) ||
                (p.protocol == IPPROTO_UDP && p.port == 9999));
  }
}

TEST(DropEvents, EgressDropsAndAuditWouldDropsAreReported) {
  Datapath dp = load(1000, 100, /*audit=*/true);
  ASSERT_EQ(*dp.test_run(frame("tcp 198.51.100.9:40001 -> 192.0.2.1:23 flags S")), XDP_PASS);
  ASSERT_EQ(*dp.test_run_egress(frame("udp 192.0.2.1:5000 -> 198.51.100.9:7777")), 0 /*TC_ACT_OK*/);
  auto events = drain(dp);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].raw.direction, 0);
  EXPECT_EQ(events[0].raw.flags & XDPG_EVENT_PASSED, XDPG_EVENT_PASSED);
  EXPECT_TRUE(event_text(events[0]).starts_with("would-drop ingress")) << event_text(events[0]);
  EXPECT_EQ(events[1].raw.direction, 1);
  EXPECT_EQ(events[1].raw.dport, 7777);
  EXPECT_EQ(events[1].raw.reason, XDPG_DROP_NO_RULE);
  // Egress top peers are keyed by the destination: the remote end.
  auto tops = read_drop_tops(dp.map_fd(MapId::TopPorts), dp.map_fd(MapId::TopPeers), 10);
  ASSERT_TRUE(tops.ok());
  bool egress_peer = false;
  for (const auto& p : tops->peers)
    if (p.key.direction == 1) egress_peer = addr(p.key.family, p.key.addr) == "198.51.100.9";
  EXPECT_TRUE(egress_peer);
}

TEST(DropEvents, AFloodIsRateLimitedPerReasonAndTheRestCountedAsSuppressed) {
  constexpr uint32_t kRate = 100, kBurst = 10;
  constexpr uint32_t kBatch = 100000;
  Datapath dp = load(kRate, kBurst);
  auto knock = frame("tcp 203.0.113.7:40000 -> 192.0.2.1:23 flags S");

  // The bucket is per CPU: batches on two CPUs would get two bursts. Stay on one.
  cpu_set_t one_cpu, saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  CPU_ZERO(&one_cpu);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &saved)) {
      CPU_SET(c, &one_cpu);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one_cpu), &one_cpu), 0);
  struct RestoreAffinity {
    cpu_set_t set;
    ~RestoreAffinity() { sched_setaffinity(0, sizeof(set), &set); }
  } restore{saved};

  // Batches of drops for at least half a second, so the rate (not only the
  // burst) is what limits.
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = knock.data();
  opts.data_size_in = static_cast<uint32_t>(knock.size());
  opts.repeat = kBatch;
  uint64_t kFlood = 0;
  auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < 0.5) {
    ASSERT_EQ(bpf_prog_test_run_opts(dp.prog_fd(), &opts), 0);
    ASSERT_EQ(opts.retval, static_cast<uint32_t>(XDP_DROP));
    kFlood += kBatch;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  auto reasons = dp.reason_counters();
  ASSERT_TRUE(reasons.ok());
  ASSERT_EQ((*reasons)[XDPG_DROP_NO_RULE].packets, kFlood);

  auto events = drain(dp);
  const uint64_t received = events.size();
  const double bound = kBurst + kRate * elapsed;
  std::cout << "flood: " << kFlood << " drops in " << elapsed << " s, " << received
            << " events (bound " << bound << ")\n";
  EXPECT_LE(static_cast<double>(received), bound + 1);  // +1: the clocks are read apart
  // And not much less: the bucket refills at the rate (its clock lags by at
  // most a jiffy; a batch boundary may hold back one more).
  EXPECT_GE(static_cast<double>(received), kBurst + kRate * (elapsed - 0.05) - 2);

  auto c = counters(dp);
  const auto& l = c[idx(0, XDPG_DROP_NO_RULE)];
  EXPECT_EQ(l.emitted, received);
  EXPECT_EQ(l.suppressed, kFlood - received);
  uint64_t carried = 0;
  for (const auto& e : events) {
    EXPECT_EQ(e.raw.reason, XDPG_DROP_NO_RULE);
    carried += e.raw.suppressed;
  }
  EXPECT_EQ(carried + l.pending, l.suppressed);
  // Other reasons' buckets are untouched: the limit is per reason.
  EXPECT_EQ(c[idx(0, XDPG_DROP_PEER_NOT_IN_SET)].emitted + c[idx(0, XDPG_DROP_PEER_NOT_IN_SET)].suppressed, 0u);
  ASSERT_EQ(*dp.test_run(frame("tcp 198.51.100.9:40001 -> 192.0.2.1:443 flags S")), XDP_DROP);
  auto more = drain(dp);
  ASSERT_EQ(more.size(), 1u) << "a flood of one reason must not silence another";
  EXPECT_EQ(more[0].raw.reason, XDPG_DROP_PEER_NOT_IN_SET);

  // The top lists count every drop, not only the ones that became events:
  // past XDPG_TOP_EXACT_PER_TICK drops in a tick, one in XDPG_TOP_SAMPLE at
  // random with that weight, so the count is the flood within its sampling
  // error (standard deviation sqrt((S - 1) x N)); 6 of them is a bound no
  // honest run reaches, while dropping the weight or the sampling would miss it.
  const double sampling_bound = 6 * std::sqrt(double(XDPG_TOP_SAMPLE - 1) * double(kFlood));
  auto tops = read_drop_tops(dp.map_fd(MapId::TopPorts), dp.map_fd(MapId::TopPeers), 1);
  ASSERT_TRUE(tops.ok());
  ASSERT_EQ(tops->ports.size(), 1u);
  EXPECT_EQ(tops->ports[0].port, 23);
  EXPECT_EQ(tops->ports[0].protocol, IPPROTO_TCP);
  EXPECT_NEAR(double(tops->ports[0].packets), double(kFlood), sampling_bound);
  ASSERT_EQ(tops->peers.size(), 1u);
  EXPECT_EQ(addr(4, tops->peers[0].key.addr), "203.0.113.7");
  EXPECT_NEAR(double(tops->peers[0].packets), double(kFlood), sampling_bound);
}

TEST(DropEvents, TheTopListsAreExactBelowTheFloodThreshold) {
  Datapath dp = load(100, 10);
  auto knock = frame("udp 203.0.113.7:40000 -> 192.0.2.1:7777");
  // However the drops fall into ticks, no tick holds more than this many.
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = knock.data();
  opts.data_size_in = static_cast<uint32_t>(knock.size());
  opts.repeat = XDPG_TOP_EXACT_PER_TICK;
  ASSERT_EQ(bpf_prog_test_run_opts(dp.prog_fd(), &opts), 0);
  ASSERT_EQ(opts.retval, static_cast<uint32_t>(XDP_DROP));
  auto tops = read_drop_tops(dp.map_fd(MapId::TopPorts), dp.map_fd(MapId::TopPeers), 1);
  ASSERT_TRUE(tops.ok());
  ASSERT_EQ(tops->ports.size(), 1u);
  EXPECT_EQ(tops->ports[0].port, 7777);
  EXPECT_EQ(tops->ports[0].packets, uint64_t{XDPG_TOP_EXACT_PER_TICK});
  ASSERT_EQ(tops->peers.size(), 1u);
  EXPECT_EQ(tops->peers[0].packets, uint64_t{XDPG_TOP_EXACT_PER_TICK});
}

TEST(DropEvents, RateZeroEmitsNothingAndCountsEverythingSuppressed) {
  Datapath dp = load(0, 10);
  auto knock = frame("udp 203.0.113.7:40000 -> 192.0.2.1:9 len 4");
  for (int i = 0; i < 25; ++i) ASSERT_EQ(*dp.test_run(knock), XDP_DROP);
  EXPECT_TRUE(drain(dp).empty());
  EXPECT_EQ(counters(dp)[idx(0, XDPG_DROP_NO_RULE)].suppressed, 25u);
}

}  // namespace
}  // namespace xdpguard::telemetry
