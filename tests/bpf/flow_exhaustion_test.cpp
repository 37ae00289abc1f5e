// Flow-table exhaustion, through the real programs (BPF_PROG_TEST_RUN of the
// TC egress and XDP ingress programs sharing one LRU flow table).
//
// Expected behaviour, with the smallest flow table the loader allows (1024
// entries) and the default policy, egress enforced:
// - a flood of 20 times the table's size in new outbound flows (UDP to
//   devices' SNMP port 161 and TCP SYNs to LDAP servers, each from its own
//   port to its own address) overflows the table; the table never holds more
//   than its capacity;
// - an established flow that keeps being used during the flood (one packet
//   each way every 64 flood packets) is never evicted: every one of its
//   replies is admitted on its rule (kernel LRU: an entry looked up recently
//   is moved to the active list and survives);
// - a connection attempt made before the flood and never answered (one
//   packet, never looked up again) is evicted, and its late reply is dropped
//   no_flow (fails closed);
// - evictions are counted: flow_counters.inserts counts every new key, and
//   inserts - entries (what `xdpguard stats` reports as evictions,
//   docs/datapath.md 8.5) equals the number of keys that left the table.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <variant>

#include "classify/decision.hpp"
#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/maps_io.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {

using classify::PacketSpec;

constexpr uint32_t kTableSize = 1024;
constexpr size_t kFlood = 20 * kTableSize;
constexpr size_t kRefreshEvery = 64;

std::array<uint8_t, 16> host_addr() { return testing::host_address(4); }
std::array<uint8_t, 16> peer(uint32_t n) {
  return {10, static_cast<uint8_t>(1 + (n >> 16)), static_cast<uint8_t>(n >> 8),
          static_cast<uint8_t>(n)};
}

// host:sport -> peer:dport (egress) or its mirror (ingress reply).
std::vector<uint8_t> frame(bool outbound, PacketSpec::L4 l4, uint16_t host_port,
                           uint16_t peer_port, const std::array<uint8_t, 16>& peer_addr,
                           uint8_t flags) {
  PacketSpec s;
  s.family = 4;
  s.l4 = l4;
  s.tcp_flags = flags;
  s.payload_len = 8;
  s.src = outbound ? host_addr() : peer_addr;
  s.dst = outbound ? peer_addr : host_addr();
  s.sport = outbound ? host_port : peer_port;
  s.dport = outbound ? peer_port : host_port;
  return classify::build_frame(s);
}

// Both flow maps, as `xdpguard stats` counts them.
uint64_t flow_entries(const kernel::Datapath& dp) {
  uint64_t n = 0;
  auto st = kernel::for_each_flow(dp.map_fd(kernel::MapId::FlowsV4),
                                  dp.map_fd(kernel::MapId::Flows),
                                  [&](const auto&, const auto&) { ++n; });
  EXPECT_TRUE(st.ok());
  return n;
}

// `fd`: flows_v4 (the flows here are IPv4).
bool has_flow(int fd, uint8_t proto, uint16_t host_port, uint16_t peer_port,
              const std::array<uint8_t, 16>& peer_addr) {
  xdpg_flow_v4_key k{};
  k.protocol = proto;
  k.local_port = host_port;
  k.remote_port = peer_port;
  std::copy_n(host_addr().begin(), 4, k.local_addr);
  std::copy_n(peer_addr.begin(), 4, k.remote_addr);
  xdpg_flow_value v{};
  return bpf_map_lookup_elem(fd, &k, &v) == 0;
}

TEST(FlowExhaustion, ActiveFlowSurvivesAFloodAndEvictionsAreCounted) {
  kernel::DatapathOptions options;
  options.egress_mode = XDPG_EGRESS_ENFORCE;
  options.flow_table_size = kTableSize;
  auto dp = kernel::Datapath::load(testing::compiled_default_policy(), options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  const int flows = dp->map_fd(kernel::MapId::FlowsV4);
  const int counters = dp->map_fd(kernel::MapId::FlowCounters);

  auto egress = [&](const std::vector<uint8_t>& f) {
    auto r = dp->test_run_egress(f);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -1;
  };
  auto ingress = [&](const std::vector<uint8_t>& f) {
    auto r = dp->test_run(f);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : -1;
  };
  using L4 = PacketSpec::L4;
  const auto ldap = peer(0xfffe), idle_peer = peer(0xfffd);

  // The established connection: host:40000 -> LDAP server:389, handshake done.
  ASSERT_EQ(egress(frame(true, L4::Tcp, 40000, 389, ldap, 0x02)), TC_ACT_OK);
  ASSERT_EQ(ingress(frame(false, L4::Tcp, 40000, 389, ldap, 0x12)), XDP_PASS);
  ASSERT_EQ(egress(frame(true, L4::Tcp, 40000, 389, ldap, 0x10)), TC_ACT_OK);
  // A connection attempt nobody answered: one packet, never looked up again.
  const auto silent = peer(0xfffc);
  ASSERT_EQ(egress(frame(true, L4::Tcp, 40002, 389, silent, 0x02)), TC_ACT_OK);
  // A flow that goes quiet after its reply: the host polled a device once.
  ASSERT_EQ(egress(frame(true, L4::Udp, 40001, 161, idle_peer, 0)), TC_ACT_OK);
  ASSERT_EQ(ingress(frame(false, L4::Udp, 40001, 161, idle_peer, 0)), XDP_PASS);

  size_t replies = 0;
  for (size_t i = 0; i < kFlood; ++i) {
    // New flows, each a distinct key: half UDP polls, half TCP SYNs.
    const auto to = peer(static_cast<uint32_t>(i));
    const auto port = static_cast<uint16_t>(20000 + i % 40000);
    const bool tcp = i % 2;
    ASSERT_EQ(egress(frame(true, tcp ? L4::Tcp : L4::Udp, port, tcp ? 389 : 161, to,
                           tcp ? 0x02 : 0)),
              TC_ACT_OK)
        << "flood packet " << i;
    if (i % kRefreshEvery == 0) {
      // The live connection keeps talking both ways.
      ASSERT_EQ(egress(frame(true, L4::Tcp, 40000, 389, ldap, 0x18)), TC_ACT_OK);
      ASSERT_EQ(ingress(frame(false, L4::Tcp, 40000, 389, ldap, 0x18)), XDP_PASS)
          << "the established flow's reply was dropped after " << i << " new flows";
      replies++;
    }
  }
  EXPECT_TRUE(has_flow(flows, 6, 40000, 389, ldap));
  EXPECT_EQ(ingress(frame(false, L4::Tcp, 40000, 389, ldap, 0x10)), XDP_PASS);

  // The unanswered attempt was pushed out; its late reply fails closed.
  EXPECT_FALSE(has_flow(flows, 6, 40002, 389, silent));
  auto reasons_before = dp->reason_counters();
  ASSERT_TRUE(reasons_before.ok());
  EXPECT_EQ(ingress(frame(false, L4::Tcp, 40002, 389, silent, 0x12)), XDP_DROP);
  auto reasons_after = dp->reason_counters();
  ASSERT_TRUE(reasons_after.ok());
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    EXPECT_EQ((*reasons_after)[r].packets,
              (*reasons_before)[r].packets + (r == XDPG_DROP_NO_FLOW ? 1 : 0))
        << drop_reason_name(static_cast<DropReason>(r));
  // Not asserted: whether the idle flow that once saw a reply survived. The
  // kernel's LRU usually keeps it (it was referenced, so it sits on the
  // active list while the flood churns the inactive one), but which CPU's
  // local lists the flood ran on can change that.
  const bool idle_survived = has_flow(flows, 17, 40001, 161, idle_peer);

  // Evictions: every flood packet and the three first flows were new keys.
  auto inserts = kernel::read_flow_counters(counters);
  ASSERT_TRUE(inserts.ok()) << inserts.error().message;
  const uint64_t entries = flow_entries(*dp);
  EXPECT_EQ(inserts->inserts, kFlood + 3);
  EXPECT_LE(entries, kTableSize);
  EXPECT_GT(entries, kTableSize / 2);  // evicted as needed, not flushed
  const uint64_t evictions = inserts->inserts - entries;
  EXPECT_GE(evictions, kFlood + 3 - kTableSize);
  std::printf("[ flow exhaustion ] table %u, %zu new flows, %zu replies of the live flow "
              "admitted during the flood; idle answered flow %s; entries %llu, inserts %llu, "
              "evictions %llu\n",
              kTableSize, kFlood, replies, idle_survived ? "kept" : "evicted", static_cast<unsigned long long>(entries),
              static_cast<unsigned long long>(inserts->inserts),
              static_cast<unsigned long long>(evictions));
}

}  // namespace
}  // namespace xdpguard
