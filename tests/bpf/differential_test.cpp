// The XDP program against the reference classifier, packet by packet.
//
// Expected behaviour:
// - for every generated frame (random and crafted: every rule's ports and
//   types, sources inside and outside narrowed peer sets, VLAN tags, IPv4
//   options, IPv6 extension headers, fragments in and out of order, odd TCP
//   flags, truncation and corrupted bytes), BPF_PROG_TEST_RUN returns
//   XDP_PASS exactly when the reference classifier says pass;
// - after every batch, each rule's pass/drop packet and byte counters and each
//   drop reason's counters equal the sums of the reference's decisions;
// - this holds for the default policy as shipped (open sets), with its peer
//   sets narrowed to random prefixes, with them made of prefixes of many
//   distinct, nested lengths (sources drawn often from both ends of each
//   prefix and just past them), and for the secured-only profile, with
//   egress off (replies from remote ports admitted statelessly);
// - with egress enforced and no flow ever opened (the egress program is not
//   run), every packet that egress-off would pass through a remote port is
//   dropped no_flow on the same rule, and every other packet is decided as
//   with egress off;
// - with the policy split over three NICs by `interfaces:`, the program
//   compiled from the devices NIC's view agrees with the reference given the
//   same view, on packets aimed at every rule of the whole policy (those of
//   the other NICs included, which must be dropped here).
// Sequences through both programs are tests/bpf/flow_differential_test.cpp.
// The packet count is XDPGUARD_DIFF_PACKETS (default 1,000,000 in total).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <variant>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {

using classify::PacketSpec;
using testing::ExpectedCounters;
using testing::hex;
using testing::universe_address;

constexpr size_t kBatch = 1000;
constexpr size_t kMinFrame = 14;  // BPF_PROG_TEST_RUN refuses shorter XDP input

size_t total_packets() {
  const char* env = std::getenv("XDPGUARD_DIFF_PACKETS");
  return env ? std::strtoull(env, nullptr, 10) : 1'000'000;
}

// Every port, ICMP type and ethertype the rules name, so that generated
// packets hit rules often and their edges too.
struct Vocabulary {
  std::vector<uint16_t> ports;
  std::vector<uint8_t> icmp_types;
  std::vector<uint16_t> ethertypes;
};

Vocabulary vocabulary(const policy::RuleSet& rules) {
  std::set<uint16_t> ports, ethertypes;
  std::set<uint8_t> types;
  for (const auto& e : rules.rules) {
    for (const auto* ranges : {&e.rule->local_ports, &e.rule->remote_ports})
      for (const auto& r : *ranges) {
        ports.insert(r.first);
        ports.insert(r.last);
        if (r.last < 65535) ports.insert(static_cast<uint16_t>(r.last + 1));
        if (r.first > 1) ports.insert(static_cast<uint16_t>(r.first - 1));
      }
    types.insert(e.rule->icmp_types.begin(), e.rule->icmp_types.end());
    ethertypes.insert(e.rule->ethertypes.begin(), e.rule->ethertypes.end());
  }
  return {{ports.begin(), ports.end()}, {types.begin(), types.end()},
          {ethertypes.begin(), ethertypes.end()}};
}

class PacketGenerator {
 public:
  // `edges`: addresses of each family the sources are drawn from a third of
  // the time (none: never).
  PacketGenerator(uint64_t seed, Vocabulary vocab, testing::FamilyAddrs edges = {})
      : rng_(seed), vocab_(std::move(vocab)), edges_(std::move(edges)) {}

  void next(std::vector<uint8_t>& frame) {
    PacketSpec s = spec();
    classify::build_frame_into(s, frame);
    mutate(frame);
  }

 private:
  bool chance(unsigned percent) { return rng_() % 100 < percent; }
  template <typename T>
  T pick(const std::vector<T>& v) { return v[rng_() % v.size()]; }

  uint16_t port() {
    if (chance(45) && !vocab_.ports.empty()) return pick(vocab_.ports);
    if (chance(3)) return 0;
    return static_cast<uint16_t>(1 + rng_() % 65535);
  }

  PacketSpec spec() {
    PacketSpec s;
    unsigned tags = 0;
    if (unsigned r = rng_() % 100; r >= 80) tags = r < 90 ? 1 : r < 97 ? 2 : 3;
    for (unsigned i = 0; i < tags; ++i) s.vlan_ids.push_back(static_cast<uint16_t>(rng_() % 4095));

    if (chance(8)) {
      s.family = 0;
      s.ethertype = chance(60) && !vocab_.ethertypes.empty()
                        ? pick(vocab_.ethertypes)
                        : static_cast<uint16_t>(0x0600 + rng_() % (0x10000 - 0x0600));
      s.payload_len = 28 + rng_() % 40;
      return s;
    }
    s.family = chance(50) ? 4 : 6;
    const bool fragment = chance(15);
    // Fragments draw from 2 sources x 16 ids per family: the reference's
    // fragment table has no capacity, the kernel's LRU (XDPG_FRAG_ENTRIES)
    // does, and with ~10^4 distinct datagrams it evicts first fragments early
    // (seen: a non-first fragment dropped as orphan that the model passed).
    s.src = fragment ? fragment_source(s.family) : chance(90) ? universe_address(rng_, s.family)
                                                              : random_address(s.family);
    if (const auto& edges = edges_[s.family == 6]; !fragment && !edges.empty() && chance(33))
      s.src = pick(edges);
    s.dst = testing::host_address(s.family);

    unsigned r = rng_() % 100;
    if (r < 40) {
      s.l4 = PacketSpec::L4::Tcp;
    } else if (r < 75) {
      s.l4 = PacketSpec::L4::Udp;
    } else if (r < 92) {
      // ICMP of the other family now and then: must be no_rule.
      bool own = chance(95);
      s.l4 = (s.family == 4) == own ? PacketSpec::L4::Icmp : PacketSpec::L4::Icmpv6;
    } else if (r < 97) {
      s.l4 = PacketSpec::L4::Other;
      static const std::vector<uint8_t> kOther = {50, 47, 132, 0, 255};
      s.ip_protocol = pick(kOther);
    } else {
      s.l4 = PacketSpec::L4::None;
    }
    s.sport = port();
    s.dport = port();
    static const std::vector<uint8_t> kCommonFlags = {0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14};
    s.tcp_flags = chance(60) ? pick(kCommonFlags) : static_cast<uint8_t>(rng_());
    s.icmp_type = chance(60) && !vocab_.icmp_types.empty() ? pick(vocab_.icmp_types)
                                                          : static_cast<uint8_t>(rng_());
    s.icmp_code = static_cast<uint8_t>(rng_() % 4);
    s.payload_len = chance(90) ? rng_() % 64 : rng_() % 1400;
    if (chance(5)) s.eth_padding = 1 + rng_() % 20;
    if (s.family == 4 && chance(10)) s.ipv4_options_len = 4 * (1 + rng_() % 10);
    if (s.family == 6 && chance(20)) {
      static const std::vector<uint8_t> kExt = {0, 43, 60, 51, 44};
      unsigned n = 1 + rng_() % 8;
      for (unsigned i = 0; i < n; ++i) s.ipv6_ext_headers.push_back(pick(kExt));
    }
    if (fragment) {
      s.frag_id = static_cast<uint32_t>(rng_() % 16);
      if (chance(50)) {
        s.more_fragments = true;  // first fragment
      } else {
        s.frag_offset = static_cast<uint16_t>(1 + rng_() % 200);
        s.more_fragments = chance(50);
      }
      if (s.family == 6 && std::find(s.ipv6_ext_headers.begin(), s.ipv6_ext_headers.end(), 44) ==
                               s.ipv6_ext_headers.end())
        s.ipv6_ext_headers.push_back(44);
    }
    return s;
  }

  void mutate(std::vector<uint8_t>& frame) {
    if (chance(10) && frame.size() > kMinFrame)
      frame.resize(kMinFrame + rng_() % (frame.size() - kMinFrame));
    if (chance(8)) {
      size_t limit = std::min<size_t>(frame.size(), 100);
      frame[rng_() % limit] ^= static_cast<uint8_t>(1 + rng_() % 255);
    }
  }

  std::array<uint8_t, 16> random_address(int family) {
    std::array<uint8_t, 16> a{};
    for (int i = 0; i < (family == 4 ? 4 : 16); ++i) a[i] = static_cast<uint8_t>(rng_());
    return a;
  }
  std::array<uint8_t, 16> fragment_source(int family) {
    std::array<uint8_t, 16> a = universe_address(rng_, family);
    a[1] = a[2] = 0;
    a[family == 4 ? 3 : 15] = static_cast<uint8_t>(rng_() % 2);
    return a;
  }

  std::mt19937_64 rng_;
  Vocabulary vocab_;
  testing::FamilyAddrs edges_;
};

void expect_counters_equal(const kernel::Datapath& dp, const ExpectedCounters& want,
                           const policy::RuleSet& rules, size_t after) {
  auto got_rules = dp.rule_counters();
  auto got_reasons = dp.reason_counters();
  ASSERT_TRUE(got_rules.ok()) << got_rules.error().message;
  ASSERT_TRUE(got_reasons.ok()) << got_reasons.error().message;
  testing::expect_counters_equal(*got_rules, *got_reasons, want, rules,
                                 "after " + std::to_string(after));
}

enum class Sets { Open, Narrowed, Nested };

struct Scenario {
  const char* name;
  const char* profile;
  Sets sets;
  uint64_t seed;
  uint8_t egress_mode = XDPG_EGRESS_OFF;
  // Set: the default policy split over three NICs (scope_three_nics), and the
  // program holds this interface's view.
  const char* iface = "";
};
constexpr size_t kScenarios = 6;

// The vendor's multi-NIC layout: clients on xg-clients, managed devices on
// xg-devices, admin SSH on xg-mgmt; everything else unscoped.
void scope_three_nics(policy::Policy& pol) {
  pol.interface_roles = {{"clients", {"xg-clients"}, {}},
                         {"devices", {"xg-devices"}, {}},
                         {"management", {"xg-mgmt"}, {}}};
  for (auto& r : pol.rules) {
    if (r.peers == "managed-devices") r.interface_roles = {"devices"};
    if (r.peers == "ovoc-clients" || r.peers == "teams" || r.peers == "endpoints")
      r.interface_roles = {"clients"};
    if (r.id == "admin-ssh") r.interface_roles = {"management"};
  }
}

class Differential : public ::testing::TestWithParam<Scenario> {};

TEST_P(Differential, XdpAgreesWithReferenceOnEveryPacket) {
  const Scenario& sc = GetParam();
  auto parsed = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
  ASSERT_TRUE(parsed.ok());
  policy::Policy pol = std::move(*parsed.policy);

  std::mt19937_64 rng(sc.seed);
  testing::FamilyAddrs edges;
  if (sc.sets == Sets::Narrowed) testing::narrow_peer_sets(pol, rng);
  if (sc.sets == Sets::Nested) edges = testing::nest_peer_sets(pol, rng);

  if (*sc.iface) scope_three_nics(pol);
  auto selected = policy::select_rules(pol, sc.profile, sc.iface);
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(selected));
  const auto& rules = std::get<policy::RuleSet>(selected);
  // Packets for every rule of the policy, those of the other interfaces too.
  auto whole = policy::select_rules(pol, sc.profile);
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(whole));
  if (*sc.iface) {  // the shape this scenario exists for
    EXPECT_LT(rules.rules.size(), std::get<policy::RuleSet>(whole).rules.size());
    EXPECT_TRUE(std::any_of(rules.rules.begin(), rules.rules.end(), [](const auto& e) {
      return e.rule->id == "device-snmp-traps-162";
    }));
  }

  kernel::DatapathOptions options;
  options.frag_timeout_ns = ~0ULL;  // the reference's clock stands still
  options.egress_mode = sc.egress_mode;
  const compile::CompiledPolicy compiled = compile::compile(rules);
  if (sc.sets == Sets::Nested) {  // the shape this scenario exists for
    EXPECT_GE(compiled.peers_v4.lengths.size(), 6u);
    EXPECT_GE(compiled.peers_v6.lengths.size(), 4u);
    EXPECT_NE(compiled.peers_v4.default_mask, 0u);
  }
  auto dp = kernel::Datapath::load(compiled, options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;

  classify::ReferenceOptions ref_options;
  ref_options.frag_timeout_ns = options.frag_timeout_ns;
  ref_options.egress_mode = sc.egress_mode;
  classify::ReferenceClassifier reference(rules, ref_options);
  // The same packets without flow tracking, to check what tracking changes.
  ref_options.egress_mode = XDPG_EGRESS_OFF;
  classify::ReferenceClassifier stateless(rules, ref_options);
  const bool tracking = sc.egress_mode != XDPG_EGRESS_OFF;
  PacketGenerator gen(sc.seed, vocabulary(std::get<policy::RuleSet>(whole)), edges);
  ExpectedCounters expected;
  std::vector<uint8_t> frame;
  size_t passes = 0;
  std::array<size_t, XDPG_DROP_REASON_COUNT> drops{};

  const size_t n = total_packets() / kScenarios;
  for (size_t i = 1; i <= n; ++i) {
    gen.next(frame);
    Decision want = reference.classify(frame);
    if (tracking) {
      // No flows: tracking only turns stateless reply passes into no_flow.
      Decision plain = stateless.classify(frame);
      if (want != plain)
        ASSERT_EQ(want, (Decision{Verdict::Drop, plain.rule, DropReason::NoFlow}))
            << "packet " << i << " egress off: " << to_string(plain) << "\nframe: " << hex(frame);
    }
    auto action = dp->test_run(frame);
    ASSERT_TRUE(action.ok()) << action.error().message;
    int want_action = want.verdict == Verdict::Pass ? XDP_PASS : XDP_DROP;
    ASSERT_EQ(*action, want_action) << "packet " << i << " reference: " << to_string(want)
                                    << "\nframe: " << hex(frame);
    expected.count(want, frame.size());
    if (want.verdict == Verdict::Pass) passes++;
    else drops[static_cast<size_t>(want.reason)]++;
    if (i % kBatch == 0 || i == n) {
      expect_counters_equal(*dp, expected, rules, i);
      if (HasFatalFailure()) return;
    }
  }
  // The generator must actually reach every outcome, or agreement proves little.
  EXPECT_GT(passes, n / 50);
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r) {
    if (sc.sets == Sets::Open && r == XDPG_DROP_PEER_NOT_IN_SET) continue;  // open sets hold everyone
    if (r == XDPG_DROP_RECEIVE_ONLY) continue;  // egress only
    if (r == XDPG_DROP_NO_FLOW && !tracking) continue;
    EXPECT_GT(drops[r], 0u) << drop_reason_name(static_cast<DropReason>(r));
  }
  EXPECT_EQ(drops[XDPG_DROP_RECEIVE_ONLY], 0u);
  if (!tracking) EXPECT_EQ(drops[XDPG_DROP_NO_FLOW], 0u);
  EXPECT_TRUE(reference.flows().empty());
  std::printf("[ %s ] %zu packets: %zu passed, drops:", sc.name, n, passes);
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    std::printf(" %s=%zu", drop_reason_name(static_cast<DropReason>(r)), drops[r]);
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(
    DefaultPolicy, Differential,
    ::testing::Values(Scenario{"open_sets", "", Sets::Open, 1},
                      Scenario{"narrowed_sets", "", Sets::Narrowed, 2},
                      Scenario{"secured_only_narrowed", "secured-only", Sets::Narrowed, 3},
                      Scenario{"enforce_without_flows", "", Sets::Narrowed, 4, XDPG_EGRESS_ENFORCE},
                      Scenario{"nested_lengths", "", Sets::Nested, 5},
                      Scenario{"devices_nic_view", "", Sets::Narrowed, 6, XDPG_EGRESS_OFF,
                               "xg-devices"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xdpguard
