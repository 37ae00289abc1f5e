// `xdpguard diff`: before/after pairs whose answers are known.
#include <gtest/gtest.h>

#include <memory>

#include "classify/diff.hpp"
#include "policy/parser.hpp"

namespace xdpguard::classify {
namespace {

struct Loaded {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
};

Loaded load(const std::string& rules_yaml, const std::string& profile = "",
            const std::string& tail = "") {
  const std::string text = "version: 1\nname: t\npeer_sets:\n"
                           "  a:\n    cidrs: [10.0.0.0/8]\n"
                           "  b:\n    cidrs: [10.1.0.0/16]\n"
                           "rules:\n" + rules_yaml + tail;
  auto r = policy::parse_policy_text(text, "t.yaml", "");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  Loaded out{std::make_unique<policy::Policy>(std::move(*r.policy)), {}};
  out.rules = std::get<policy::RuleSet>(policy::select_rules(*out.policy, profile));
  return out;
}

std::string tcp(const std::string& id, const std::string& side_port, const std::string& peers,
                const std::string& initiator = "remote") {
  return "  - id: " + id + "\n    protocol: tcp\n    " + side_port + "\n    peers: " + peers +
         "\n    initiator: " + initiator + "\n";
}

// One line per change: "kind | packets | from | before -> after".
std::vector<std::string> lines(const Loaded& before, const Loaded& after) {
  const DiffReport d = diff(before.rules, after.rules);
  std::vector<std::string> out;
  for (const auto& c : d.changes)
    out.push_back(std::string(to_string(c.kind)) + " | " +
                  describe_values(c.protocol, c.side, c.cells.values) + " | " + d.addresses(c) +
                  " | " + (c.before ? c.before->id : "-") + " -> " + (c.after ? c.after->id : "-"));
  return out;
}

using Lines = std::vector<std::string>;

TEST(Diff, SamePolicyNoChange) {
  auto p = load(tcp("https", "local_port: 443", "a"));
  auto q = load(tcp("https", "local_port: 443", "a"));
  EXPECT_EQ(lines(p, q), Lines{});
}

TEST(Diff, NewRuleAdmits) {
  EXPECT_EQ(lines(load(tcp("https", "local_port: 443", "a")),
                  load(tcp("https", "local_port: 443", "a") + tcp("alt", "local_port: 8080", "b"))),
            (Lines{"admitted | tcp to local port 8080 | 10.1.0.0/16 | - -> alt"}));
}

TEST(Diff, WiderRangeAdmitsOnlyTheNewPorts) {
  EXPECT_EQ(lines(load(tcp("web", "local_port: 8000-8005", "a")),
                  load(tcp("web", "local_port: 8000-8010", "a"))),
            (Lines{"admitted | tcp to local ports 8006-8010 | 10.0.0.0/8 | - -> web"}));
}

TEST(Diff, NarrowerPeerSetRefusesTheRest) {
  EXPECT_EQ(lines(load(tcp("https", "local_port: 443", "a")), load(tcp("https", "local_port: 443", "b"))),
            (Lines{"refused | tcp to local port 443 | 10.0.0.0/8 except 10.1.0.0/16 | https -> -"}));
}

TEST(Diff, ReorderingMovesTheCounters) {
  EXPECT_EQ(lines(load(tcp("wide", "local_port: 443", "a") + tcp("narrow", "local_port: 443", "b")),
                  load(tcp("narrow", "local_port: 443", "b") + tcp("wide", "local_port: 443", "a"))),
            (Lines{"recounted | tcp to local port 443 | 10.1.0.0/16 | wide -> narrow"}));
}

// Who initiates decides the direction: peers may no longer open 443; the
// host may open 443 on them and get its replies.
TEST(Diff, InitiatorTurnsTheDirection) {
  EXPECT_EQ(lines(load(tcp("https", "local_port: 443", "a")),
                  load(tcp("https", "remote_port: 443", "a", "local"))),
            (Lines{"refused | tcp to local port 443 | 10.0.0.0/8 | https -> -",
                   "admitted | tcp from remote port 443 | 10.0.0.0/8 | - -> https"}));
}

// receive-only: peers may still send, the host may no longer answer.
TEST(Diff, ReceiveOnlyRefusesTheHostsReplies) {
  const std::string udp = "  - id: traps\n    protocol: udp\n    local_port: 162\n    peers: a\n"
                          "    initiator: remote\n";
  EXPECT_EQ(lines(load(udp), load(udp + "    flow: receive-only\n")),
            (Lines{"replies refused | udp to local port 162 | 10.0.0.0/8 | traps -> traps"}));
  EXPECT_EQ(lines(load(udp + "    flow: receive-only\n"), load(udp)),
            (Lines{"replies sent | udp to local port 162 | 10.0.0.0/8 | traps -> traps"}));
}

TEST(Diff, ProfileLeavesRulesOut) {
  const std::string rules = tcp("https", "local_port: 443", "a") + "    secured: true\n" +
                            tcp("http", "local_port: 80", "a");
  const std::string profiles = "profiles:\n  secured-only:\n    secured_only: true\n";
  EXPECT_EQ(lines(load(rules, "", profiles), load(rules, "secured-only", profiles)),
            (Lines{"refused | tcp to local port 80 | 10.0.0.0/8 | http -> -"}));
}

// The default policy against its secured-only profile: each unsecured rule
// that counts packets loses them; endpoints-http-80 counts none (device-http-80
// takes port 80 first), so nothing of it shows.
TEST(Diff, DefaultPolicySecuredOnly) {
  auto parsed = policy::parse_policy_file(std::string(XDPGUARD_SOURCE_DIR) + "/policy/ovoc-single-node.yaml");
  ASSERT_TRUE(parsed.ok());
  auto all = std::get<policy::RuleSet>(policy::select_rules(*parsed.policy, ""));
  auto secured = std::get<policy::RuleSet>(policy::select_rules(*parsed.policy, "secured-only"));
  const DiffReport d = diff(all, secured);
  std::vector<std::string> refused;
  for (const auto& c : d.changes) {
    EXPECT_EQ(c.kind, Change::Kind::Refused);
    refused.push_back(describe_values(c.protocol, c.side, c.cells.values) + " " + c.before->id);
  }
  EXPECT_EQ(refused, (Lines{"tcp to local port 80 device-http-80", "tcp to local port 5000 vq-xml-5000",
                            "tcp from remote port 25 mail-25", "tcp from remote port 80 device-http-80",
                            "tcp from remote port 389 ldap-389", "tcp from remote port 514 syslog-514",
                            "udp to local port 5060 sip-publish-5060",
                            "udp from remote port 925 debug-recording-925"}));
}

}  // namespace
}  // namespace xdpguard::classify
