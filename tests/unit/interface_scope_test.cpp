// Interface scope (docs/policy-format.md, "Interfaces"):
// - a rule with `interfaces:` is in force only on the interfaces its roles
//   name; a rule without it on every interface;
// - an interface no role names gets only the unscoped rules, or is refused
//   with `unlisted_interfaces: refuse`;
// - roles are checked (unknown role, bad interface name: errors at
//   file:line:col), and rules that never meet on an interface do not
//   contradict each other;
// - the reference classifier, given an interface's view, admits a device's
//   SNMP trap on the devices NIC and refuses it on the clients NIC.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "policy/parser.hpp"

namespace xdpguard::policy {
namespace {

constexpr const char* kThreeNics = R"(version: 1
name: three-nics
peer_sets:
  clients: {cidrs: [192.0.2.0/24]}
  devices: {cidrs: [198.51.100.0/24]}
  admins: {cidrs: [203.0.113.7/32]}
interfaces:
  clients: [ens192]
  devices: [ens224, ens225]
  management: ens256
rules:
  - {id: clients-https, protocol: tcp, local_port: 443, peers: clients, initiator: remote,
     interfaces: [clients]}
  - {id: device-traps, protocol: udp, local_port: 162, peers: devices, initiator: remote,
     flow: receive-only, interfaces: [devices]}
  - {id: web-anywhere, protocol: tcp, local_port: 80, peers: clients, initiator: remote}
host_essentials:
  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: admins, initiator: remote,
     interfaces: [management]}
)";

std::string all(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) out += "  " + d.to_string() + "\n";
  return out;
}

Policy parsed(const std::string& text) {
  auto r = parse_policy_text(text, "t.yaml", "");
  EXPECT_TRUE(r.ok()) << all(r.errors);
  return r.ok() ? std::move(*r.policy) : Policy{};
}

std::vector<std::string> view(const Policy& p, const std::string& iface) {
  auto s = select_rules(p, "", iface);
  if (auto* d = std::get_if<Diagnostic>(&s)) {
    ADD_FAILURE() << d->to_string();
    return {};
  }
  std::vector<std::string> ids;
  for (const auto& e : std::get<RuleSet>(s).rules) ids.push_back(e.rule->id);
  return ids;
}

using Ids = std::vector<std::string>;

TEST(InterfaceScope, EachInterfaceGetsItsRolesRulesAndTheUnscopedOnes) {
  const Policy p = parsed(kThreeNics);
  ASSERT_EQ(p.interface_roles.size(), 3u);
  EXPECT_EQ(p.interface_roles[1].ifaces, (Ids{"ens224", "ens225"}));
  EXPECT_EQ(p.interface_roles[2].ifaces, (Ids{"ens256"}));  // one name, not a list
  EXPECT_EQ(view(p, "ens192"), (Ids{"clients-https", "web-anywhere"}));
  EXPECT_EQ(view(p, "ens224"), (Ids{"device-traps", "web-anywhere"}));
  EXPECT_EQ(view(p, "ens225"), (Ids{"device-traps", "web-anywhere"}));
  EXPECT_EQ(view(p, "ens256"), (Ids{"web-anywhere", "admin-ssh"}));
  // Without an interface: every rule, whatever its scope.
  EXPECT_EQ(view(p, ""), (Ids{"clients-https", "device-traps", "web-anywhere", "admin-ssh"}));
}

TEST(InterfaceScope, AnUnlistedInterfaceGetsTheUnscopedRulesByDefault) {
  const Policy p = parsed(kThreeNics);
  EXPECT_EQ(p.settings.unlisted_interfaces, UnlistedInterfaces::Unscoped);
  EXPECT_EQ(view(p, "eth9"), (Ids{"web-anywhere"}));
}

TEST(InterfaceScope, AnUnlistedInterfaceIsRefusedWhenTheSettingsSaySo) {
  const Policy p = parsed(std::string(kThreeNics) + "settings: {unlisted_interfaces: refuse}\n");
  auto s = select_rules(p, "", "ens193");
  auto* d = std::get_if<Diagnostic>(&s);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("interface 'ens193' is not in the policy's 'interfaces:'"),
            std::string::npos)
      << d->message;
  EXPECT_NE(d->message.find("did you mean 'ens192'"), std::string::npos) << d->message;
  EXPECT_EQ(d->where.line, 20);  // the settings line
  EXPECT_EQ(view(p, "ens224"), (Ids{"device-traps", "web-anywhere"}));
}

TEST(InterfaceScope, WithoutRolesEveryInterfaceGetsEveryRule) {
  const Policy p = parsed(R"(version: 1
name: plain
peer_sets: {clients: {cidrs: [192.0.2.0/24]}}
rules:
  - {id: https, protocol: tcp, local_port: 443, peers: clients, initiator: remote}
settings: {unlisted_interfaces: refuse}
)");
  EXPECT_EQ(view(p, "anything"), (Ids{"https"}));
}

::testing::AssertionResult rejected_at(const std::string& text, const std::string& where,
                                       const std::string& message) {
  auto r = parse_policy_text(text, "t.yaml", "");
  for (const auto& e : r.errors)
    if (e.to_string().rfind(where + ": ", 0) == 0 && e.message.find(message) != std::string::npos)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no error at " << where << " with '" << message
                                       << "'; errors:\n"
                                       << all(r.errors);
}

TEST(InterfaceScope, AnUnknownRoleIsAnErrorWithASuggestion) {
  std::string text = kThreeNics;
  text.replace(text.find("interfaces: [devices]"), 21, "interfaces: [device] ");
  EXPECT_TRUE(rejected_at(text, "t.yaml:15:39", "unknown interface role 'device'"));
  EXPECT_TRUE(rejected_at(text, "t.yaml:15:39", "did you mean 'devices'"));
}

TEST(InterfaceScope, ARoleNeedsTheTopLevelMapping) {
  EXPECT_TRUE(rejected_at(R"(version: 1
name: x
peer_sets: {c: {cidrs: [192.0.2.0/24]}}
rules:
  - {id: https, protocol: tcp, local_port: 443, peers: c, initiator: remote, interfaces: [clients]}
)",
                          "t.yaml:5:91", "the policy has no top-level 'interfaces:'"));
}

TEST(InterfaceScope, InterfaceNamesAreCheckedLikeTheKernelDoes) {
  std::string text = kThreeNics;
  text.replace(text.find("[ens192]"), 8, "[a-name-far-too-long]");
  EXPECT_TRUE(rejected_at(text, "t.yaml:8:13", "'a-name-far-too-long' is not an interface name"));
  text = kThreeNics;
  text.replace(text.find("ens256"), 6, "eth/0");
  EXPECT_TRUE(rejected_at(text, "t.yaml:10:15", "'eth/0' is not an interface name"));
}

TEST(InterfaceScope, AnEmptyRoleIsAWarningNotAnError) {
  std::string text = kThreeNics;
  text.replace(text.find("management: ens256"), 18, "management: []");
  auto r = parse_policy_text(text, "t.yaml", "");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  ASSERT_EQ(r.warnings.size(), 1u) << all(r.warnings);
  EXPECT_NE(r.warnings[0].message.find("names no interface"), std::string::npos);
}

// Receive-only and bidirectional on the same port contradict each other only
// where both are in force.
TEST(InterfaceScope, RulesOnDisjointInterfacesDoNotContradict) {
  const std::string base = R"(version: 1
name: x
peer_sets: {devices: {cidrs: [198.51.100.0/24]}}
interfaces: {a: [eth0], b: [eth1], ab: [eth0, eth1]}
rules:
  - {id: traps-in, protocol: udp, local_port: 162, peers: devices, initiator: remote,
     flow: receive-only, interfaces: [a]}
  - {id: traps-both, protocol: udp, local_port: 162, peers: devices, initiator: remote,
     interfaces: [)";
  EXPECT_TRUE(parse_policy_text(base + "b]}\n", "t.yaml", "").ok());
  EXPECT_TRUE(rejected_at(base + "ab]}\n", "t.yaml:8:5", "contradicts rule 'traps-in'"));
}

TEST(InterfaceScope, TheReferenceClassifierDecidesByTheInterfacesView) {
  const Policy p = parsed(kThreeNics);
  auto decide = [&](const std::string& iface, const std::string& spec) {
    auto rules = std::get<RuleSet>(select_rules(p, "", iface));
    classify::ReferenceClassifier ref(rules);
    auto packet = std::get<classify::PacketSpec>(classify::parse_packet_spec(spec));
    auto d = ref.classify(classify::build_frame(packet));
    return d.verdict == Verdict::Pass
               ? "pass " + rules.rules[*d.rule].rule->id
               : std::string("drop ") + drop_reason_name(d.reason);
  };
  const std::string trap = "udp 198.51.100.9:40000 -> 192.0.2.1:162";
  EXPECT_EQ(decide("ens224", trap), "pass device-traps");
  EXPECT_EQ(decide("ens192", trap), "drop no_rule");
  const std::string ssh = "tcp 203.0.113.7:50000 -> 192.0.2.1:22 flags S";
  EXPECT_EQ(decide("ens256", ssh), "pass admin-ssh");
  EXPECT_EQ(decide("ens192", ssh), "drop no_rule");
}

}  // namespace
}  // namespace xdpguard::policy
