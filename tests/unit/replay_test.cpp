// classify::Replay: a capture's frames through the reference classifier with
// the direction decided from the host's addresses and MAC.
//
// Expected behaviour (the default policy, host 192.0.2.1):
// - a frame from the host's address goes through the egress decision and
//   opens the flow; the peer's answer passes on that rule, the same answer
//   from another peer is no_flow;
// - the host's MAC is learnt from its IP frames: its ARP is egress, a peer's
//   ARP ingress; --host-mac alone gives the same directions;
// - the capture's timestamps are the clock: an SNMP answer within the UDP
//   timeout passes, one after it is no_flow;
// - the counters equal a reference classifier fed the same frames in the
//   directions the test knows, frame lengths as bytes.
#include <gtest/gtest.h>

#include <variant>

#include "classify/packet_spec.hpp"
#include "classify/replay.hpp"
#include "policy/cidr.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::classify {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;
const Mac kHostMac = {0x02, 0, 0, 0, 0, 0x0a};
const Mac kPeerMac = {0x02, 0, 0, 0, 0, 0x0b};

struct Captured {
  std::vector<uint8_t> frame;
  uint64_t ns;
  bool egress;  // what the test knows
};

Captured frame(const std::string& spec, uint64_t seconds, bool from_host) {
  auto parsed = parse_packet_spec(spec);
  EXPECT_TRUE(std::holds_alternative<PacketSpec>(parsed)) << spec;
  auto f = build_frame(std::get<PacketSpec>(parsed));
  std::copy(from_host ? kPeerMac.begin() : kHostMac.begin(),
            from_host ? kPeerMac.end() : kHostMac.end(), f.begin());
  std::copy(from_host ? kHostMac.begin() : kPeerMac.begin(),
            from_host ? kHostMac.end() : kPeerMac.end(), f.begin() + 6);
  return {f, seconds * kSecond, from_host};
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
    ASSERT_TRUE(r.ok());
    policy_ = std::make_unique<policy::Policy>(std::move(*r.policy));
    rules_ = std::get<policy::RuleSet>(policy::select_rules(*policy_, ""));
  }
  size_t rule(const std::string& id) const {
    for (size_t i = 0; i < rules_.rules.size(); ++i)
      if (rules_.rules[i].rule->id == id) return i;
    ADD_FAILURE() << "no rule " << id;
    return 0;
  }
  HostIdentity by_address() const {
    return {{std::get<policy::Cidr>(policy::parse_cidr("192.0.2.1"))}, {}};
  }

  std::unique_ptr<policy::Policy> policy_;
  policy::RuleSet rules_;
};

std::vector<Captured> conversation() {
  return {
      frame("arp", 0, true),  // before any IP frame: the MAC is not known yet
      frame("tcp 192.0.2.1:50000 -> 198.51.100.7:389 flags S", 1, true),
      frame("tcp 198.51.100.7:389 -> 192.0.2.1:50000 flags SA", 1, false),
      frame("tcp 198.51.100.8:389 -> 192.0.2.1:50000 flags SA", 2, false),
      frame("arp", 3, true),   // the host's MAC, now learnt
      frame("arp", 3, false),  // a peer's
      frame("tcp 203.0.113.9:40000 -> 192.0.2.1:443 flags S", 4, false),
      frame("tcp 192.0.2.1:443 -> 203.0.113.9:40000 flags SA", 4, true),
      frame("udp 192.0.2.1:40001 -> 198.51.100.20:161", 10, true),
      frame("udp 198.51.100.20:161 -> 192.0.2.1:40001", 20, false),   // within 60 s
      frame("udp 198.51.100.20:161 -> 192.0.2.1:40001", 200, false),  // long after
      frame("tcp 203.0.113.9:40000 -> 192.0.2.1:6667 flags S", 201, false),
  };
}

TEST_F(ReplayTest, DirectionsFlowsAndTheCaptureClock) {
  Replay replay(rules_, policy_->settings, by_address());
  std::vector<ReplayFrame> got;
  for (const auto& c : conversation()) got.push_back(replay.feed(c.frame, c.ns));

  EXPECT_FALSE(got[0].egress);  // an ARP before the host's MAC is known: taken as ingress
  EXPECT_TRUE(got[1].egress);
  EXPECT_EQ(got[1].decision->verdict, Verdict::Pass);
  EXPECT_EQ(got[1].decision->rule, rule("ldap-389"));
  EXPECT_FALSE(got[2].egress);
  EXPECT_EQ(*got[2].decision, (Decision{Verdict::Pass, rule("ldap-389"), DropReason::None}));
  EXPECT_EQ(got[3].decision->reason, DropReason::NoFlow);
  EXPECT_TRUE(got[4].egress);
  EXPECT_FALSE(got[5].egress);
  EXPECT_EQ(got[6].decision->rule, rule("nbif-clients-https"));
  EXPECT_TRUE(got[7].egress);
  EXPECT_EQ(got[9].decision->verdict, Verdict::Pass);
  EXPECT_EQ(got[9].decision->rule, rule("device-snmp-161"));
  EXPECT_EQ(got[10].decision->reason, DropReason::NoFlow);
  EXPECT_FALSE(got[10].passes);
  EXPECT_EQ(got[11].decision->reason, DropReason::NoRule);
  EXPECT_EQ(got[2].flow.to_string(), "tcp 192.0.2.1:50000 <-> 198.51.100.7:389");
  EXPECT_EQ(got[1].flow, got[2].flow);  // both directions name one conversation
  EXPECT_EQ(replay.frames(), 12u);
}

TEST_F(ReplayTest, CountersEqualTheReferenceInKnownDirections) {
  // The host's MAC given: every frame, the first ARP too, in its true direction.
  Replay replay(rules_, policy_->settings, {{}, {kHostMac}});
  ReferenceClassifier ref(rules_, reference_options(policy_->settings));
  CounterSums in, out;
  for (const auto& c : conversation()) {
    const ReplayFrame f = replay.feed(c.frame, c.ns);
    ASSERT_EQ(f.egress, c.egress);
    ref.set_now(c.ns);
    if (c.egress) {
      auto e = ref.classify_egress(c.frame);
      out.count(*e.decision, c.frame.size());
    } else {
      in.count(ref.classify(c.frame), c.frame.size());
    }
  }
  for (size_t i = 0; i < rules_.rules.size(); ++i) {
    EXPECT_EQ(replay.ingress().rules[i].pass_packets, in.rules[i].pass_packets) << i;
    EXPECT_EQ(replay.ingress().rules[i].drop_bytes, in.rules[i].drop_bytes) << i;
    EXPECT_EQ(replay.egress().rules[i].pass_bytes, out.rules[i].pass_bytes) << i;
  }
  for (size_t r = 0; r < XDPG_DROP_REASON_COUNT; ++r) {
    EXPECT_EQ(replay.ingress().reasons[r].packets, in.reasons[r].packets) << r;
    EXPECT_EQ(replay.egress().reasons[r].packets, out.reasons[r].packets) << r;
  }
  EXPECT_EQ(replay.egress().rules[rule("arp")].pass_packets, 2u);
  EXPECT_EQ(replay.ingress().rules[rule("arp")].pass_packets, 1u);
  EXPECT_EQ(replay.ingress().reasons[static_cast<size_t>(DropReason::NoFlow)].packets, 2u);
}

TEST(ReplayOptions, FromTheSettings) {
  policy::Settings s;
  s.egress = policy::EgressMode::Track;
  s.udp_timeout = 7;
  s.tcp_closing_timeout = 9;
  const ReferenceOptions o = reference_options(s);
  EXPECT_EQ(o.egress_mode, XDPG_EGRESS_TRACK);
  EXPECT_EQ(o.udp_timeout_ns, 7 * kSecond);
  EXPECT_EQ(o.tcp_closing_timeout_ns, 9 * kSecond);
}

}  // namespace
}  // namespace xdpguard::classify
