// check's lint: shadowed rules, replies a local-port rule takes, and which
// rule counts where several admit, each against a policy whose answer is
// known. Also the address classes the packet space is cut into.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "classify/coverage.hpp"
#include "classify/lint.hpp"
#include "policy/parser.hpp"

namespace xdpguard::classify {
namespace {

using policy::Diagnostic;

// A parsed policy and its rules in force, kept together (RuleSet points in).
struct Loaded {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
};

Loaded load(const std::string& rules_yaml, const std::string& sets = "") {
  const std::string text = "version: 1\nname: t\npeer_sets:\n"
                           "  a:\n    cidrs: [10.0.0.0/8]\n"
                           "  b:\n    cidrs: [10.1.0.0/16]\n" +
                           sets + "rules:\n" + rules_yaml;
  auto r = policy::parse_policy_text(text, "t.yaml", "");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  Loaded out{std::make_unique<policy::Policy>(std::move(*r.policy)), {}};
  out.rules = std::get<policy::RuleSet>(policy::select_rules(*out.policy, ""));
  return out;
}

std::string rule(const std::string& id, const std::string& body) {
  return "  - id: " + id + "\n    " + body + "\n";
}
std::string tcp_local(const std::string& id, const std::string& port, const std::string& peers) {
  return rule(id, "protocol: tcp\n    local_port: " + port + "\n    peers: " + peers +
                      "\n    initiator: remote");
}
std::string remote(const std::string& id, const std::string& proto, const std::string& port,
                   const std::string& peers) {
  return rule(id, "protocol: " + proto + "\n    remote_port: " + port + "\n    peers: " + peers +
                      "\n    initiator: local");
}

std::vector<std::string> messages(const LintReport& r) {
  std::vector<std::string> out;
  for (const Diagnostic& d : r.warnings) out.push_back(d.to_string());
  return out;
}

TEST(Lint, RuleBehindAnEarlierRuleWithABroaderSetIsNeverCounted) {
  auto p = load(tcp_local("wide", "443", "a") + tcp_local("narrow", "443", "b"));
  auto r = lint(p.rules);
  EXPECT_EQ(messages(r), (std::vector<std::string>{
                             "t.yaml:14:5: rule 'narrow' is never counted: tcp to local port 443 "
                             "from 10.1.0.0/16 is counted on 'wide' (t.yaml:9), which comes first; "
                             "its counters stay 0 (remove it, or move it up if it should carry them)"}));
  ASSERT_EQ(r.overlaps.size(), 1u);
  EXPECT_EQ(r.overlaps[0].counted, 0u);
  EXPECT_EQ(r.overlaps[0].also, (std::vector<size_t>{1}));
  EXPECT_EQ(r.addresses(r.overlaps[0]), "10.1.0.0/16");
}

TEST(Lint, NarrowerRuleFirstShadowsTheBroaderOneInPartByPrefix) {
  auto p = load(tcp_local("narrow", "443", "b") + tcp_local("wide", "443", "a"));
  EXPECT_EQ(messages(lint(p.rules)),
            (std::vector<std::string>{"t.yaml:14:5: rule 'wide' is counted only in part: tcp to "
                                      "local port 443 from 10.1.0.0/16 is counted on 'narrow' "
                                      "(t.yaml:9), which comes first"}));
}

TEST(Lint, PartShadowNamesThePorts) {
  auto p = load(tcp_local("one", "8005", "a") + tcp_local("range", "8000-8010", "a"));
  EXPECT_EQ(messages(lint(p.rules)),
            (std::vector<std::string>{"t.yaml:14:5: rule 'range' is counted only in part: tcp to "
                                      "local port 8005 from 10.0.0.0/8 is counted on 'one' "
                                      "(t.yaml:9), which comes first"}));
}

TEST(Lint, DisjointSetsOrPortsAreNoFinding) {
  EXPECT_TRUE(lint(load(tcp_local("x", "443", "a") + tcp_local("y", "443", "c"),
                        "  c:\n    cidrs: [192.168.0.0/16]\n")
                       .rules)
                  .warnings.empty());
  auto r = lint(load(tcp_local("x", "443", "a") + tcp_local("y", "444", "a")).rules);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_TRUE(r.overlaps.empty());
}

TEST(Lint, RemotePortsShadowLikeLocalOnes) {
  auto p = load(remote("devices", "udp", "123", "a") + remote("upstream", "udp", "123", "b"));
  auto m = messages(lint(p.rules));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], "t.yaml:14:5: rule 'upstream' is never counted: udp from remote port 123 from "
                  "10.1.0.0/16 is counted on 'devices' (t.yaml:9), which comes first; its "
                  "counters stay 0 (remove it, or move it up if it should carry them)");
}

TEST(Lint, IcmpTypesAndEthertypes) {
  auto p = load(rule("ping", "protocol: icmp\n    icmp_types: [0, 8]\n    peers: a") +
                rule("echo", "protocol: icmp\n    icmp_types: [8]\n    peers: a") +
                rule("arp", "protocol: ethertype\n    ethertypes: [0x0806]") +
                rule("arp2", "protocol: ethertype\n    ethertypes: [0x0806, 0x88cc]"));
  auto m = messages(lint(p.rules));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_NE(m[0].find("rule 'echo' is never counted: icmp type 8 from 10.0.0.0/8 is counted on 'ping'"),
            std::string::npos)
      << m[0];
  EXPECT_NE(m[1].find("rule 'arp2' is counted only in part: ethertype 0x0806 is counted on 'arp'"),
            std::string::npos)
      << m[1];
}

// Local-port rules win over remote-port rules whatever their order: replies
// that arrive at a port a local-port rule serves are counted there.
TEST(Lint, RepliesToAServedPortAreTakenByTheLocalPortRule) {
  auto p = load(remote("upload", "tcp", "443", "a") + tcp_local("https", "443", "b"));
  auto r = lint(p.rules);
  EXPECT_EQ(messages(r),
            (std::vector<std::string>{
                "t.yaml:9:5: rule 'upload' admits tcp from remote port 443 as replies, but those "
                "arriving at the same port of the host (tcp to local port 443) from 10.1.0.0/16 "
                "are counted on 'https' (t.yaml:14), which serves it: a local-port rule admits "
                "them first, without a flow"}));
  // Replies to the host's other ports stay with 'upload': no shadowing.
  EXPECT_TRUE(r.overlaps.empty());
}

TEST(Lint, ARuleServingBothSidesIsNotTakenFromItself) {
  auto p = load(rule("ntp", "protocol: udp\n    local_port: 123\n    remote_port: 123\n"
                            "    peers: a\n    initiator: both"));
  EXPECT_TRUE(lint(p.rules).warnings.empty());
}

TEST(PacketSpace, AddressClassesSplitPrefixesByTheSetsHoldingThem) {
  auto p = load(tcp_local("x", "443", "a") + tcp_local("y", "443", "b") + tcp_local("z", "443", "c"),
                "  c:\n    cidrs: [10.1.0.0/17, 10.1.128.0/17, \"2001:db8::/32\"]\n");
  PacketSpace space({&p.rules});
  std::vector<std::string> pieces;
  for (const auto& c : space.classes()) {
    // The sample lies in a piece of its class, outside the carved-out prefixes.
    bool sampled = false;
    for (const auto& piece : c.pieces) {
      pieces.push_back(piece.to_string());
      sampled = sampled || (piece.prefix.contains(c.family, c.sample.data()) &&
                            std::none_of(piece.except.begin(), piece.except.end(), [&](auto& e) {
                              return e.contains(c.family, c.sample.data());
                            }));
    }
    EXPECT_TRUE(sampled) << c.pieces[0].to_string();
  }
  // 10.1.0.0/16 (b) is wholly split into c's two /17s: no piece of its own.
  EXPECT_EQ(pieces, (std::vector<std::string>{"10.0.0.0/8 except 10.1.0.0/16", "10.1.0.0/17",
                                              "10.1.128.0/17", "2001:db8::/32"}));
  // The two /17s are held by the same sets (a, b, c): one class.
  EXPECT_EQ(space.classes().size(), 3u);
}

TEST(PacketSpace, SampleSkipsAChildAtTheStartOfItsParent) {
  auto p = load(tcp_local("x", "443", "a") + tcp_local("y", "443", "d"),
                "  d:\n    cidrs: [10.0.0.0/9]\n");
  PacketSpace space({&p.rules});
  ASSERT_EQ(space.classes().size(), 2u);
  EXPECT_EQ(space.classes()[0].pieces[0].to_string(), "10.0.0.0/8 except 10.0.0.0/9");
  EXPECT_EQ(space.classes()[0].sample, (std::array<uint8_t, 16>{10, 128, 0, 0}));
}

// The default policy while its sets are open: the rules issue 13 names.
TEST(Lint, DefaultPolicyRulesNeverCounted) {
  auto r = policy::parse_policy_file(std::string(XDPGUARD_SOURCE_DIR) + "/policy/ovoc-single-node.yaml");
  ASSERT_TRUE(r.ok());
  auto rules = std::get<policy::RuleSet>(policy::select_rules(*r.policy, ""));
  std::vector<std::string> never, part;
  for (const auto& w : lint(rules).warnings) {
    const auto quote = w.message.find('\'', 6);
    const std::string id = w.message.substr(6, quote - 6);
    if (w.message.find("is never counted") != std::string::npos) never.push_back(id);
    if (w.message.find("is counted only in part") != std::string::npos) part.push_back(id);
  }
  EXPECT_EQ(never, (std::vector<std::string>{"teams-https", "ntp-upstream-123",
                                             "device-floating-license-443", "endpoints-http-80",
                                             "endpoints-https-443", "sharefile-https",
                                             "azure-blob-upload-443",
                                             "floating-license-service-443"}));
  EXPECT_EQ(part, (std::vector<std::string>{"device-https-443"}));
}

}  // namespace
}  // namespace xdpguard::classify
