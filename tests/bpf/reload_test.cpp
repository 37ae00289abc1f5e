// Audit mode and stable counter slots, through the real object and
// BPF_PROG_TEST_RUN (root). The reload itself (swap on a live interface) is
// exercised end to end by tests/e2e/test_lifecycle.sh.
//
// Expected behaviour:
// - audit mode decides and counts exactly as enforce mode (same rule and
//   reason counters, both directions, for the same frames) but returns
//   XDP_PASS / TC_ACT_OK for every frame enforce mode drops;
// - info records the mode (stats labels drops "would-drop" from it);
// - with rule_slots, a decision for rule i counts on slot rule_slots[i], and
//   rule_meta / info.rule_slot say so; without, slots are the identity.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <string>
#include <variant>
#include <vector>

#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/maps_io.hpp"
#include "policy/parser.hpp"

namespace xdpguard::kernel {
namespace {

constexpr const char* kPolicy = R"(version: 1
name: reload-test
peer_sets:
  anywhere:
    cidrs: [0.0.0.0/0, ::/0]
  admins:
    cidrs: [192.0.2.0/24]
rules:
  - id: sip-5060
    section: test
    row: "SIP | UDP | 5060"
    protocol: udp
    local_port: 5060
    peers: anywhere
    initiator: remote
    flow: bidirectional
    secured: false
    purpose: test
  - id: https-443
    section: test
    row: "HTTPS | TCP | 443"
    protocol: tcp
    local_port: 443
    peers: anywhere
    initiator: remote
    flow: bidirectional
    secured: true
    purpose: test
host_essentials:
  - id: admin-ssh
    protocol: tcp
    local_port: 22
    peers: admins
    initiator: remote
    flow: bidirectional
    purpose: test
)";

struct Compiled {
  policy::Policy policy;
  policy::RuleSet rules;
  compile::CompiledPolicy compiled;
};

std::unique_ptr<Compiled> compile_policy() {
  auto parsed = policy::parse_policy_text(kPolicy, "reload-test.yaml", ".");
  EXPECT_TRUE(parsed.ok()) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
  auto out = std::make_unique<Compiled>();
  out->policy = std::move(*parsed.policy);
  out->rules = std::get<policy::RuleSet>(policy::select_rules(out->policy, ""));
  out->compiled = compile::compile(out->rules);
  return out;
}

std::vector<uint8_t> frame(const std::string& spec) {
  auto s = classify::parse_packet_spec(spec);
  EXPECT_TRUE(std::holds_alternative<classify::PacketSpec>(s)) << spec;
  return classify::build_frame(std::get<classify::PacketSpec>(s));
}

// Ingress frames: passed, no_rule, peer_not_in_set, bad flags, and again.
const std::vector<std::string> kIngress = {
    "udp 198.51.100.7:40000 -> 203.0.113.1:5060",
    "tcp 198.51.100.7:40000 -> 203.0.113.1:443 flags S",
    "udp 198.51.100.7:40000 -> 203.0.113.1:9999",
    "tcp 198.51.100.7:40000 -> 203.0.113.1:22 flags S",
    "tcp 192.0.2.9:40000 -> 203.0.113.1:22 flags S",
    "tcp 198.51.100.7:40000 -> 203.0.113.1:443 flags SF",
    "tcp [2001:db8::7]:40000 -> [2001:db8::1]:8080 flags S",
    "udp [2001:db8::7]:40000 -> [2001:db8::1]:5060",
};
// Egress frames: a reply from the SIP port, one from an undocumented port.
const std::vector<std::string> kEgress = {
    "udp 203.0.113.1:5060 -> 198.51.100.7:40000",
    "udp 203.0.113.1:9999 -> 198.51.100.7:40000",
    "tcp 203.0.113.1:3306 -> 198.51.100.7:40000 flags SA",
};

struct RunResult {
  std::vector<int> ingress_actions, egress_actions;
  std::vector<xdpg_rule_counters> rules, egress_rules;
  std::vector<xdpg_reason_counters> reasons, egress_reasons;
  xdpg_info info{};
};

RunResult run_all(const compile::CompiledPolicy& policy, const DatapathOptions& options) {
  RunResult out;
  auto dp = Datapath::load(policy, options);
  EXPECT_TRUE(dp.ok()) << (dp.ok() ? "" : dp.error().message);
  if (!dp) return out;
  for (const auto& spec : kIngress) {
    auto f = frame(spec);
    auto action = dp->test_run(f);
    EXPECT_TRUE(action.ok());
    out.ingress_actions.push_back(action.ok() ? *action : -1);
  }
  for (const auto& spec : kEgress) {
    auto f = frame(spec);
    auto action = dp->test_run_egress(f);
    EXPECT_TRUE(action.ok());
    out.egress_actions.push_back(action.ok() ? *action : -1);
  }
  out.rules = *dp->rule_counters();
  out.reasons = *dp->reason_counters();
  out.egress_rules = *dp->egress_rule_counters();
  out.egress_reasons = *dp->egress_reason_counters();
  out.info = *read_info(dp->map_fd(MapId::Info));
  return out;
}

bool same(const xdpg_rule_counters& a, const xdpg_rule_counters& b) {
  return a.pass_packets == b.pass_packets && a.pass_bytes == b.pass_bytes &&
         a.drop_packets == b.drop_packets && a.drop_bytes == b.drop_bytes;
}
bool same(const xdpg_reason_counters& a, const xdpg_reason_counters& b) {
  return a.packets == b.packets && a.bytes == b.bytes;
}

template <typename T>
void expect_same_counters(const std::vector<T>& enforce, const std::vector<T>& audit,
                          const char* what) {
  ASSERT_EQ(enforce.size(), audit.size()) << what;
  for (size_t i = 0; i < enforce.size(); ++i)
    EXPECT_TRUE(same(enforce[i], audit[i])) << what << " entry " << i << " differs";
}

TEST(AuditMode, CountsLikeEnforceButPassesEverything) {
  auto c = compile_policy();
  DatapathOptions enforce_opts;
  DatapathOptions audit_opts;
  audit_opts.audit = true;
  RunResult enforce = run_all(c->compiled, enforce_opts);
  RunResult audit = run_all(c->compiled, audit_opts);

  // Enforce mode drops some of each; otherwise the test would prove nothing.
  int ingress_drops = 0, egress_drops = 0;
  for (size_t i = 0; i < kIngress.size(); ++i) {
    EXPECT_EQ(audit.ingress_actions[i], XDP_PASS) << kIngress[i];
    if (enforce.ingress_actions[i] == XDP_DROP) ++ingress_drops;
  }
  for (size_t i = 0; i < kEgress.size(); ++i) {
    EXPECT_EQ(audit.egress_actions[i], TC_ACT_OK) << kEgress[i];
    if (enforce.egress_actions[i] == TC_ACT_SHOT) ++egress_drops;
  }
  EXPECT_EQ(ingress_drops, 4);  // 9999, ssh from outside, SYN+FIN, v6 8080
  EXPECT_EQ(egress_drops, 2);

  expect_same_counters(enforce.rules, audit.rules, "rule_counters");
  expect_same_counters(enforce.reasons, audit.reasons, "reason_counters");
  expect_same_counters(enforce.egress_rules, audit.egress_rules, "egress_rule_counters");
  expect_same_counters(enforce.egress_reasons, audit.egress_reasons, "egress_reason_counters");
  EXPECT_EQ(audit.reasons[XDPG_DROP_NO_RULE].packets, 2u);
  EXPECT_EQ(audit.reasons[XDPG_DROP_PEER_NOT_IN_SET].packets, 1u);
  EXPECT_EQ(audit.rules[2].drop_packets, 1u);  // admin-ssh, source outside admins

  EXPECT_EQ(enforce.info.audit_mode, 0);
  EXPECT_EQ(audit.info.audit_mode, 1);
}

TEST(RuleSlots, IdentityByDefault) {
  auto c = compile_policy();
  RunResult r = run_all(c->compiled, {});
  for (uint32_t i = 0; i < XDPG_MAX_RULES; ++i) EXPECT_EQ(r.info.rule_slot[i], i);
  EXPECT_EQ(r.rules[0].pass_packets, 2u);  // sip-5060, v4 and v6
  EXPECT_EQ(r.rules[1].pass_packets, 1u);  // https-443
}

TEST(RuleSlots, DecisionsCountOnTheRulesSlot) {
  auto c = compile_policy();
  DatapathOptions o;
  o.rule_slots = {7, 3, 60};  // sip-5060 -> 7, https-443 -> 3, admin-ssh -> 60
  auto dp = Datapath::load(c->compiled, o);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  for (const auto& spec : kIngress) ASSERT_TRUE(dp->test_run(frame(spec)).ok());
  auto counts = *dp->rule_counters();
  EXPECT_EQ(counts[7].pass_packets, 2u);
  EXPECT_EQ(counts[3].pass_packets, 1u);
  EXPECT_EQ(counts[3].drop_packets, 0u);  // the SYN+FIN is bad_tcp_flags, unattributed
  EXPECT_EQ(counts[60].drop_packets, 1u);
  EXPECT_EQ(counts[60].pass_packets, 1u);
  EXPECT_EQ(counts[0].pass_packets + counts[1].pass_packets + counts[2].pass_packets, 0u);

  auto meta = read_rule_meta(dp->map_fd(MapId::RuleMeta), XDPG_MAX_RULES);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(fixed_string((*meta)[7].id, XDPG_RULE_ID_LEN), "sip-5060");
  EXPECT_EQ(fixed_string((*meta)[3].id, XDPG_RULE_ID_LEN), "https-443");
  EXPECT_EQ(fixed_string((*meta)[60].id, XDPG_RULE_ID_LEN), "admin-ssh");
  auto info = *read_info(dp->map_fd(MapId::Info));
  EXPECT_EQ(info.rule_slot[0], 7);
  EXPECT_EQ(info.rule_slot[1], 3);
  EXPECT_EQ(info.rule_slot[2], 60);
}

TEST(RuleSlots, RepeatedSlotIsRefused) {
  auto c = compile_policy();
  DatapathOptions o;
  o.rule_slots = {1, 1, 2};
  EXPECT_FALSE(Datapath::load(c->compiled, o).ok());
  o.rule_slots = {1, 2};  // one short
  EXPECT_FALSE(Datapath::load(c->compiled, o).ok());
}

}  // namespace
}  // namespace xdpguard::kernel
