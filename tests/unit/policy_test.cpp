// Policy format: the shipped default policy against the vendor table, and one
// test per validation error with its exact file:line:column.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "policy/cidr.hpp"
#include "policy/parser.hpp"
#include "policy/suggest.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::policy {
namespace {

const std::string kSourceDir = XDPGUARD_SOURCE_DIR;
const std::string kDefaultPath = kSourceDir + "/policy/ovoc-single-node.yaml";
const std::string kDataDir = kSourceDir + "/tests/data/policies";

ParseResult parse(std::string_view text, const std::string& base_dir = "") {
  return parse_policy_text(text, "t.yaml", base_dir);
}

std::string all(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) out += "  " + d.to_string() + "\n";
  return out;
}

// An error at exactly `where` ("file:line:col") whose message contains `text`.
::testing::AssertionResult has_error(const ParseResult& r, const std::string& where,
                                     const std::string& text) {
  if (r.policy) return ::testing::AssertionFailure() << "policy accepted despite expected error";
  for (const auto& e : r.errors) {
    const std::string s = e.to_string();
    if (s.rfind(where + ": ", 0) == 0 && s.find(text) != std::string::npos)
      return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no error at " << where << " containing '" << text
                                       << "'; errors:\n"
                                       << all(r.errors);
}

const Rule* find_rule(const Policy& p, const std::string& id) {
  for (const auto& r : p.rules)
    if (r.id == id) return &r;
  return nullptr;
}

std::vector<std::string> ids(const RuleSet& s) {
  std::vector<std::string> out;
  for (const auto& e : s.rules) out.push_back(e.rule->id);
  return out;
}

RuleSet select(const Policy& p, const std::string& profile) {
  auto s = select_rules(p, profile);
  if (auto* d = std::get_if<Diagnostic>(&s)) ADD_FAILURE() << d->to_string();
  return std::get<RuleSet>(s);
}

// ---------------------------------------------------------------------------
// The default policy

class DefaultPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    result_ = parse_policy_file(kDefaultPath);
    ASSERT_TRUE(result_.ok()) << all(result_.errors);
    policy_ = &*result_.policy;
  }
  ParseResult result_;
  const Policy* policy_ = nullptr;
};

TEST_F(DefaultPolicy, ParsesWithoutErrorsOrWarnings) {
  EXPECT_TRUE(result_.errors.empty());
  EXPECT_TRUE(result_.warnings.empty()) << all(result_.warnings);
  EXPECT_EQ(policy_->name, "ovoc-single-node");
  EXPECT_EQ(policy_->source_file, kDefaultPath);
}

// The shipped policy documents every rule: it passes --strict.
TEST_F(DefaultPolicy, ParsesStrictly) {
  auto strict = parse_policy_file(kDefaultPath, {.strict = true});
  EXPECT_TRUE(strict.ok()) << all(strict.errors);
}

TEST_F(DefaultPolicy, EmbeddedCopyIsTheFileAndParses) {
  std::ifstream in(kDefaultPath);
  std::stringstream buf;
  buf << in.rdbuf();
  EXPECT_EQ(kDefaultPolicyYaml, buf.str());
  auto r = parse_policy_text(kDefaultPolicyYaml, "<embedded default>", "");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  EXPECT_EQ(r.policy->source_hash, policy_->source_hash);
  EXPECT_EQ(r.policy->rules.size(), policy_->rules.size());
}

TEST_F(DefaultPolicy, RuleCounts) {
  const auto& rules = policy_->rules;
  const auto essentials = std::count_if(rules.begin(), rules.end(), [](auto& r) { return r.essential; });
  const auto enforced = std::count_if(rules.begin(), rules.end(), [](auto& r) { return r.enforced; });
  EXPECT_EQ(rules.size(), 41u);
  EXPECT_EQ(essentials, 13);
  EXPECT_EQ(enforced, 38);
  EXPECT_EQ(select(*policy_, "").rules.size(), 38u);
  // Vendor rows first, then host essentials.
  auto first_essential = std::find_if(rules.begin(), rules.end(), [](auto& r) { return r.essential; });
  EXPECT_TRUE(std::all_of(first_essential, rules.end(), [](auto& r) { return r.essential; }));
  EXPECT_EQ(rules.front().id, "nbif-clients-https");
  EXPECT_EQ(rules.back().id, "admin-ssh");
}

// Every row (and port) of the vendor table, as "connection" and "| port".
TEST_F(DefaultPolicy, EveryTableRowIsEncoded) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"HTTPS/NBIF Clients ↔ OVOC server", "443"},
      {"Microsoft Teams ↔ OVOC Live Platform", "443"},
      {"WebSocket Client ↔ OVOC Server", "915"},
      {"Device ↔ OVOC server (SNMP)", "1161"},
      {"Device ↔ OVOC server (SNMP)", "162"},
      {"Device ↔ OVOC server (SNMP)", "161"},
      {"Device ↔ OVOC server (NTP Server)", "123"},
      {"Device ↔ OVOC server | TCP (HTTP)", "80"},
      {"Device ↔ OVOC server | TCP (HTTPS)", "443"},
      {"Device ↔ OVOC server Floating License Management", "443"},
      {"Endpoints ↔ OVOC Device Manager", "80"},
      {"Endpoints ↔ OVOC Device Manager", "443"},
      {"OVOC Device Manager ↔ ShareFile", "443"},
      {"Endpoints ↔ WAF (Imperva Incapsula) and Azure Blob", "443 (endpoints ↔ WAF)"},
      {"Endpoints ↔ WAF (Imperva Incapsula) and Azure Blob", "443 (endpoints ↔ Azure Blob)"},
      {"OVOC Device Manager → Azure Blob", "443"},
      {"OVOC Device Manager ↔ ShareFile", "443 (second listing)"},
      {"Media Gateways ↔ Voice Quality Package", "5000"},
      {"Media Gateways ↔ Voice Quality Package", "5001"},
      {"OVOC server ↔ Active Directory LDAP server", "389"},
      {"OVOC server ↔ Active Directory LDAP server", "636"},
      {"OVOC server ↔ AudioCodes Floating License Service", "443"},
      {"OVOC server ↔ Mail Server", "25"},
      {"OVOC server ↔ Syslog Server", "514"},
      {"OVOC server ↔ Debug Recording Server", "925"},
      {"OVOC server ↔ Remote Managed Device", "3389"},
      {"Voice Quality Package ↔ Endpoints (RFC 6035)", "5060"},
  };
  std::set<const Rule*> seen;
  for (const auto& [conn, port] : rows) {
    const auto& rules = policy_->rules;
    auto it = std::find_if(rules.begin(), rules.end(), [&](const Rule& r) {
      const std::string tail = "| " + port;
      return !r.essential && r.row.rfind(conn, 0) == 0 && r.row.size() >= tail.size() &&
             r.row.compare(r.row.size() - tail.size(), tail.size(), tail) == 0;
    });
    ASSERT_NE(it, rules.end()) << conn << " | " << port;
    EXPECT_TRUE(seen.insert(&*it).second) << "two table rows map to " << it->id;
    EXPECT_FALSE(it->section.empty()) << it->id;
  }
  // The NTP row has a second rule for the server as NTP client.
  EXPECT_EQ(seen.size() + 1, 28u);
}

TEST_F(DefaultPolicy, SpecificRows) {
  const Rule* traps = find_rule(*policy_, "device-snmp-traps-162");
  ASSERT_NE(traps, nullptr);
  EXPECT_EQ(traps->protocol, Protocol::Udp);
  ASSERT_EQ(traps->local_ports.size(), 1u);
  EXPECT_EQ(traps->local_ports[0].first, 162);
  EXPECT_EQ(traps->local_ports[0].last, 162);
  EXPECT_TRUE(traps->remote_ports.empty());
  EXPECT_EQ(traps->initiator, Initiator::Remote);
  EXPECT_EQ(traps->flow, Flow::ReceiveOnly);
  EXPECT_EQ(traps->peers, "managed-devices");

  const Rule* keepalive = find_rule(*policy_, "device-snmp-keepalive-1161");
  ASSERT_NE(keepalive, nullptr);
  EXPECT_EQ(keepalive->local_ports[0].first, 1161);
  EXPECT_EQ(keepalive->flow, Flow::ReceiveOnly);

  const Rule* snmp = find_rule(*policy_, "device-snmp-161");
  ASSERT_NE(snmp, nullptr);
  EXPECT_EQ(snmp->protocol, Protocol::Udp);
  EXPECT_TRUE(snmp->local_ports.empty());
  ASSERT_EQ(snmp->remote_ports.size(), 1u);
  EXPECT_EQ(snmp->remote_ports[0].first, 161);
  EXPECT_EQ(snmp->initiator, Initiator::Local);
  EXPECT_EQ(snmp->flow, Flow::Bidirectional);

  const Rule* ntp = find_rule(*policy_, "device-ntp-123");
  ASSERT_NE(ntp, nullptr);
  EXPECT_EQ(ntp->protocol, Protocol::Udp);
  EXPECT_EQ(ntp->initiator, Initiator::Both);
  ASSERT_EQ(ntp->local_ports.size(), 1u);
  ASSERT_EQ(ntp->remote_ports.size(), 1u);
  EXPECT_EQ(ntp->local_ports[0].first, 123);
  EXPECT_EQ(ntp->remote_ports[0].first, 123);

  const Rule* ldap = find_rule(*policy_, "ldap-389");
  ASSERT_NE(ldap, nullptr);
  EXPECT_EQ(ldap->protocol, Protocol::Tcp);
  EXPECT_EQ(ldap->initiator, Initiator::Local);
  EXPECT_EQ(ldap->remote_ports[0].first, 389);
  EXPECT_TRUE(ldap->local_ports.empty());
  EXPECT_FALSE(ldap->secured);
  EXPECT_EQ(ldap->peers, "ldap-servers");

  const Rule* blob = find_rule(*policy_, "azure-blob-upload-443");
  ASSERT_NE(blob, nullptr);
  EXPECT_EQ(blob->initiator, Initiator::Local);
  EXPECT_EQ(blob->flow, Flow::SendOnly);
  EXPECT_EQ(blob->remote_ports[0].first, 443);
  EXPECT_EQ(blob->peers, "azure-blob");
  EXPECT_TRUE(blob->enforced);

  for (const char* id : {"endpoints-waf-443", "endpoints-azure-blob-443", "sharefile-https-repeat"}) {
    const Rule* r = find_rule(*policy_, id);
    ASSERT_NE(r, nullptr) << id;
    EXPECT_FALSE(r->enforced) << id;
    EXPECT_FALSE(r->not_enforced_reason.empty()) << id;
  }

  const Rule* arp = find_rule(*policy_, "arp");
  ASSERT_NE(arp, nullptr);
  EXPECT_TRUE(arp->essential);
  EXPECT_EQ(arp->protocol, Protocol::Ethertype);
  EXPECT_EQ(arp->ethertypes, std::vector<uint16_t>{0x0806});
  const Rule* ndp = find_rule(*policy_, "icmpv6-ndp");
  ASSERT_NE(ndp, nullptr);
  EXPECT_EQ(ndp->icmp_types, (std::vector<uint8_t>{133, 134, 135, 136, 137}));
}

TEST_F(DefaultPolicy, SecuredOnlyDropsExactlyTheUnsecuredRows) {
  const auto full = ids(select(*policy_, ""));
  const auto secured = ids(select(*policy_, "secured-only"));
  std::vector<std::string> dropped;
  for (const auto& id : full)
    if (std::find(secured.begin(), secured.end(), id) == secured.end()) dropped.push_back(id);
  const std::vector<std::string> expected = {"device-http-80",   "endpoints-http-80", "vq-xml-5000",
                                             "ldap-389",         "mail-25",           "syslog-514",
                                             "debug-recording-925", "sip-publish-5060"};
  EXPECT_EQ(dropped, expected);
  EXPECT_EQ(secured.size(), full.size() - expected.size());
  for (const auto& r : policy_->rules) {
    if (r.essential) {
      EXPECT_NE(std::find(secured.begin(), secured.end(), r.id), secured.end()) << r.id;
    }
  }
}

TEST_F(DefaultPolicy, OpenSetWarningsNameEachSetButAnywhere) {
  const RuleSet full = select(*policy_, "");
  const auto warnings = peer_set_warnings(*policy_, full);
  EXPECT_EQ(warnings.size(), policy_->peer_sets.size() - 1);
  std::string text = all(warnings);
  for (const auto& set : policy_->peer_sets) {
    const std::string needle = "peer set '" + set.name + "' is open to any address";
    EXPECT_EQ(text.find(needle) != std::string::npos,
              set.name != "anywhere" && set.name != "monitoring")
        << set.name;
  }
  // monitoring ships empty: nobody scrapes the metrics until it is filled in.
  EXPECT_NE(text.find("peer set 'monitoring' is empty"), std::string::npos);
  ASSERT_FALSE(warnings.empty());
  EXPECT_EQ(warnings[0].to_string(),
            kDefaultPath + ":25:3: peer set 'ovoc-clients' is open to any address; fill it in before production");

  // Sets used only by rules the profile leaves out are not warned about.
  const auto secured = peer_set_warnings(*policy_, select(*policy_, "secured-only"));
  text = all(secured);
  EXPECT_EQ(text.find("'mail-servers'"), std::string::npos);
  EXPECT_NE(text.find("'ldap-servers'"), std::string::npos);  // ldaps-636 stays
}

// ---------------------------------------------------------------------------
// Model helpers

TEST(PolicyModel, DiagnosticToString) {
  EXPECT_EQ((Diagnostic{{"p.yaml", 3, 7}, "bad"}).to_string(), "p.yaml:3:7: bad");
  EXPECT_EQ((Diagnostic{{"p.yaml", 3, 0}, "bad"}).to_string(), "p.yaml:3: bad");
  EXPECT_EQ((Diagnostic{{"p.yaml", 0, 0}, "bad"}).to_string(), "p.yaml: bad");
  EXPECT_EQ((Diagnostic{{}, "bad"}).to_string(), "bad");
}

TEST(PolicyModel, CidrParseContainsAndPrint) {
  auto v4 = parse_cidr("10.1.0.0/16");
  ASSERT_TRUE(std::holds_alternative<Cidr>(v4));
  const Cidr& c = std::get<Cidr>(v4);
  EXPECT_EQ(c.to_string(), "10.1.0.0/16");
  const uint8_t in[4] = {10, 1, 200, 3}, out[4] = {10, 2, 0, 1};
  EXPECT_TRUE(c.contains(4, in));
  EXPECT_FALSE(c.contains(4, out));
  EXPECT_FALSE(c.contains(6, in));

  auto bare = parse_cidr("2001:db8::1");
  ASSERT_TRUE(std::holds_alternative<Cidr>(bare));
  EXPECT_EQ(std::get<Cidr>(bare).to_string(), "2001:db8::1/128");
  EXPECT_EQ(std::get<Cidr>(parse_cidr("::/0")).is_any(), true);

  auto bits = parse_cidr("2001:db8::1/32");
  ASSERT_TRUE(std::holds_alternative<std::string>(bits));
  EXPECT_NE(std::get<std::string>(bits).find("the prefix is 2001:db8::/32"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_cidr("10.0.0.0/33")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_cidr("10.0.0.0/")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_cidr("10.0.0")));

  EXPECT_TRUE(cidrs_overlap(std::get<Cidr>(parse_cidr("10.0.0.0/8")), c));
  EXPECT_FALSE(cidrs_overlap(std::get<Cidr>(parse_cidr("192.168.0.0/16")), c));
  EXPECT_FALSE(cidrs_overlap(std::get<Cidr>(parse_cidr("::/0")), c));
}

// ---------------------------------------------------------------------------
// Validation: every error with its position. Lines of kHeader are numbered;
// rules appended to it start at line 11.

const std::string kHeader = R"(version: 1
name: t
peer_sets:
  a:
    cidrs: [10.0.0.0/8]
  b:
    cidrs: [10.1.0.0/16, "2001:db8::/32"]
  c:
    cidrs: [192.168.0.0/16]
rules:
)";

// Lines 11-20.
const std::string kRule = R"(  - id: r1
    section: s
    row: r
    protocol: tcp
    local_port: 443
    peers: a
    initiator: remote
    flow: bidirectional
    secured: true
    purpose: p
)";

TEST(PolicyValidation, MinimalPolicyIsValid) {
  auto r = parse(kHeader + kRule);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  ASSERT_EQ(r.policy->rules.size(), 1u);
  EXPECT_EQ(r.policy->rules[0].where.line, 11);
  EXPECT_EQ(r.policy->rules[0].where.column, 5);
  // Unused peer sets are worth a warning, not an error.
  EXPECT_NE(all(r.warnings).find("peer set 'c' is not used"), std::string::npos);
}

TEST(PolicyValidation, SourceHashIsFnv1a64OfTheText) {
  // Expected value computed independently (Python) over kHeader + kRule.
  auto r = parse(kHeader + kRule);
  ASSERT_TRUE(r.ok());
  auto r2 = parse(kHeader + kRule + "# comment\n");
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r.policy->source_hash, r2.policy->source_hash);
  EXPECT_EQ(r.policy->source_hash, 0x475855b7aa3b524cull);
}

TEST(PolicyValidation, YamlSyntaxError) {
  // yaml-cpp notices the unclosed flow sequence at the ':' of the next key.
  auto r = parse("version: 1\nname: [t\nrules: []\n");
  EXPECT_TRUE(has_error(r, "t.yaml:3:6", "YAML syntax error: end of sequence flow not found"));
  EXPECT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(has_error(parse("version: 1\n\tname: t\n"), "t.yaml:2:1", "YAML syntax error"));
}

TEST(PolicyValidation, VersionMissingOrWrong) {
  EXPECT_TRUE(has_error(parse("name: t\nrules: []\n"), "t.yaml:1:1", "missing required key 'version'"));
  EXPECT_TRUE(has_error(parse("version: 2\nname: t\nrules: []\n"), "t.yaml:1:10",
                        "version: '2' is not supported; this xdpguard reads version 1"));
}

TEST(PolicyValidation, NotAMapping) {
  EXPECT_TRUE(has_error(parse("- 1\n"), "t.yaml:1:1", "a policy must be a mapping"));
  EXPECT_TRUE(has_error(parse(""), "t.yaml:1:1", "a policy must be a mapping"));
}

TEST(PolicyValidation, UnknownKeysEverywhere) {
  auto r = parse("version: 1\nname: t\ncolour: red\nrules: []\n");
  EXPECT_TRUE(has_error(r, "t.yaml:3:1", "unknown key 'colour'"));

  r = parse(kHeader + kRule + "    colour: red\n");
  EXPECT_TRUE(has_error(r, "t.yaml:21:5", "unknown key 'colour'"));

  r = parse("version: 1\nname: t\npeer_sets:\n  a:\n    cidr: [10.0.0.0/8]\nrules: []\n");
  EXPECT_TRUE(has_error(r, "t.yaml:5:5", "unknown key 'cidr'"));

  r = parse(kHeader + kRule + "profiles:\n  p:\n    secure_only: true\n");
  EXPECT_TRUE(has_error(r, "t.yaml:23:5", "unknown key 'secure_only'"));
}

TEST(PolicyValidation, DuplicateKey) {
  auto r = parse(kHeader + kRule + "    peers: b\n");
  EXPECT_TRUE(has_error(r, "t.yaml:21:5", "duplicate key 'peers' (first at line 16)"));
}

// A rule with only what the datapath needs: no section, row, secured,
// purpose or flow. Lines 7-11.
const std::string kBareRule = R"(version: 1
name: t
peer_sets:
  a:
    cidrs: [10.0.0.0/8]
rules:
  - id: r1
    protocol: tcp
    local_port: 443
    peers: a
    initiator: remote
)";

TEST(PolicyValidation, MissingRequiredKeys) {
  std::string text = kBareRule;
  text.replace(text.find("    peers: a\n"), 13, "");
  auto r = parse(text);
  EXPECT_TRUE(has_error(r, "t.yaml:7:5", "rule 'r1': missing required key 'peers'"));
  EXPECT_EQ(r.errors.size(), 1u) << all(r.errors);
  text = kBareRule;
  text.replace(text.find("    initiator: remote\n"), 22, "");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:7:5", "rule 'r1': missing required key 'initiator'"));
  text = kBareRule;
  text.replace(text.find("    protocol: tcp\n"), 18, "");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:7:5", "rule 'r1': missing required key 'protocol'"));
  EXPECT_TRUE(has_error(parse("version: 1\nname: t\n"), "t.yaml:1:1", "missing required key 'rules'"));
}

TEST(PolicyValidation, DocumentationKeysAreOptionalAndFlowDefaultsToBidirectional) {
  auto r = parse(kBareRule);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const Rule& rule = r.policy->rules[0];
  EXPECT_EQ(rule.flow, Flow::Bidirectional);
  EXPECT_FALSE(rule.secured);
  EXPECT_EQ(rule.section, "");
  EXPECT_EQ(rule.purpose, "");
}

TEST(PolicyValidation, StrictRequiresDocumentationKeys) {
  const std::string essential =
      "host_essentials:\n  - id: ping\n    protocol: icmp\n    icmp_types: [8]\n    peers: a\n";
  auto r = parse_policy_text(kBareRule + essential, "t.yaml", "", {.strict = true});
  for (const char* key : {"section", "row", "secured", "purpose"})
    EXPECT_TRUE(has_error(r, "t.yaml:7:5",
                          std::string("rule 'r1': missing required key '") + key +
                              "' (--strict: vendor rules document their table row)"))
        << key;
  // Host essentials need only say what they are for.
  EXPECT_TRUE(has_error(r, "t.yaml:13:5",
                        "rule 'ping': missing required key 'purpose' (--strict: every rule says "
                        "what it is for)"));
  EXPECT_EQ(r.errors.size(), 5u) << all(r.errors);
  // flow is not documentation: it keeps its default under --strict too.
  EXPECT_TRUE(parse_policy_text(kHeader + kRule, "t.yaml", "", {.strict = true}).ok());
}

TEST(PolicyValidation, HostEssentialsNeedNoSectionRowOrSecured) {
  auto r = parse_policy_text(kHeader + kRule + R"(host_essentials:
  - id: ping
    protocol: icmp
    icmp_types: [8]
    peers: c
    purpose: p
)", "t.yaml", "", {.strict = true});
  ASSERT_TRUE(r.ok()) << all(r.errors);
  EXPECT_TRUE(r.policy->rules[1].essential);
  EXPECT_FALSE(r.policy->rules[1].secured);
}

TEST(PolicyValidation, WrongTypes) {
  std::string text = kHeader + kRule;
  text.replace(text.find("secured: true"), 13, "secured: yes");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:19:14", "secured: must be true or false"));

  EXPECT_TRUE(has_error(parse("version: 1\nname: t\nrules: {}\n"), "t.yaml:3:8", "rules: must be a list"));

  text = kHeader + kRule;
  text.replace(text.find("local_port: 443"), 15, "local_port: {a: 1}");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:15:17", "local_port: must be a value or a list"));

  text = kHeader + kRule;
  text.replace(text.find("protocol: tcp"), 13, "protocol: sctp");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:14:15",
                        "protocol: 'sctp' is not one of tcp, udp, icmp, icmpv6, ethertype"));

  text = kHeader + kRule;
  text.replace(text.find("peers: a"), 8, "peers:");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:16:5", "peers: must be a string"));
}

TEST(PolicySuggestions, EditDistance) {
  EXPECT_EQ(edit_distance("tcp", "tcp"), 0u);
  EXPECT_EQ(edit_distance("TCP", "tcp"), 0u);
  EXPECT_EQ(edit_distance("tpc", "tcp"), 1u);  // a swap is one edit
  EXPECT_EQ(edit_distance("device", "devices"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(PolicySuggestions, DidYouMean) {
  const std::vector<std::string_view> sets = {"devices", "admins", "dns-resolvers"};
  EXPECT_EQ(did_you_mean("device", sets), "; did you mean 'devices'?");
  EXPECT_EQ(did_you_mean("servers", sets), "");  // nothing close: no guess
  const std::vector<std::string_view> ties = {"udp", "tcp", "icmp"};
  EXPECT_EQ(did_you_mean("xcp", ties), "; did you mean 'tcp'?");
  EXPECT_EQ(did_you_mean("icp", ties), "; did you mean 'tcp' or 'icmp'?");
}

// Each kind of unknown name, misspelt by one or two letters.
TEST(PolicySuggestions, UnknownNamesGetTheClosestKnownOne) {
  auto r = parse("version: 1\nname: t\npeer_sets:\n  a:\n    cidr: [10.0.0.0/8]\nrules: []\n");
  EXPECT_TRUE(has_error(r, "t.yaml:5:5", "unknown key 'cidr' (expected one of: description, cidrs, "
                                         "file); did you mean 'cidrs'?"));

  std::string text = kHeader + kRule;
  text.replace(text.find("protocol: tcp"), 13, "protocol: tcpp");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:14:15",
                        "protocol: 'tcpp' is not one of tcp, udp, icmp, icmpv6, ethertype; did you "
                        "mean 'tcp'?"));

  text = kHeader + kRule;
  text.replace(text.find("initiator: remote"), 17, "initiator: remot");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:17:16", "did you mean 'remote'?"));

  text = kHeader + kRule;
  text.replace(text.find("peers: a"), 8, "peers: bb");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:16:12", "peers: unknown peer set 'bb'; did you mean 'b'?"));

  r = parse(kHeader + kRule + "profiles:\n  p:\n    exclude_rules: [r2]\n");
  EXPECT_TRUE(has_error(r, "t.yaml:23:21", "excludes unknown rule 'r2'; did you mean 'r1'?"));

  r = parse(kHeader + kRule + "    colour: red\n");
  ASSERT_TRUE(has_error(r, "t.yaml:21:5", "unknown key 'colour'"));
  EXPECT_EQ(all(r.errors).find("did you mean"), std::string::npos) << all(r.errors);

  r = parse(kHeader + kRule + "profiles:\n  secured-only:\n    secured_only: true\n");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  auto s = select_rules(*r.policy, "secure-only");
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(s));
  EXPECT_EQ(std::get<Diagnostic>(s).message,
            "unknown profile 'secure-only'; the policy defines secured-only; did you mean "
            "'secured-only'?");
}

// Issue 13's new operator: three rules with only datapath keys, two typos.
TEST(PolicySuggestions, NewOperatorPolicy) {
  auto r = parse_policy_file(kDataDir + "/new-operator-typos.yaml");
  const std::string file = kDataDir + "/new-operator-typos.yaml";
  EXPECT_TRUE(has_error(r, file + ":15:12", "peers: unknown peer set 'device'; did you mean 'devices'?"));
  EXPECT_TRUE(has_error(r, file + ":19:15", "did you mean 'tcp'?"));
  EXPECT_EQ(r.errors.size(), 2u) << all(r.errors);
  auto fixed = parse_policy_file(kDataDir + "/new-operator.yaml");
  EXPECT_TRUE(fixed.ok()) << all(fixed.errors);
}

TEST(PolicyValidation, BadCidrs) {
  auto r = parse(R"(version: 1
name: t
peer_sets:
  a:
    cidrs: [10.0.0.1/8, 10.0.0.0/33, 300.1.1.1, "2001:db8::1/32"]
rules: []
)");
  EXPECT_TRUE(has_error(r, "t.yaml:5:13", "'10.0.0.1/8' has host bits set; the prefix is 10.0.0.0/8"));
  EXPECT_TRUE(has_error(r, "t.yaml:5:25", "prefix length must be 0-32"));
  EXPECT_TRUE(has_error(r, "t.yaml:5:38", "'300.1.1.1' is not an IPv4 or IPv6 address"));
  EXPECT_TRUE(has_error(r, "t.yaml:5:49", "the prefix is 2001:db8::/32"));
  EXPECT_EQ(r.errors.size(), 4u) << all(r.errors);
}

TEST(PolicyValidation, PeerSetNeedsCidrsOrFile) {
  auto r = parse("version: 1\nname: t\npeer_sets:\n  a:\n    description: x\nrules: []\n");
  EXPECT_TRUE(has_error(r, "t.yaml:4:3", "peer set 'a': needs 'cidrs' or 'file'"));
}

TEST(PolicyValidation, PortsOutOfRange) {
  for (const auto& [value, message] : std::vector<std::pair<std::string, std::string>>{
           {"0", "local_port: port 0 is out of range 1-65535"},
           {"65536", "local_port: port 65536 is out of range 1-65535"},
           {"\"5001-5000\"", "local_port: range 5001-5000 has first port greater than last"},
           {"http", "local_port: 'http' is not a port"}}) {
    std::string text = kHeader + kRule;
    text.replace(text.find("local_port: 443"), 15, "local_port: " + value);
    EXPECT_TRUE(has_error(parse(text), "t.yaml:15:17", message)) << value;
  }
  // A list reports at the bad item.
  std::string text = kHeader + kRule;
  text.replace(text.find("local_port: 443"), 15, "local_port: [443, 8000-8010, 70000]");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:15:34", "port 70000 is out of range"));
}

TEST(PolicyValidation, PortFormsAccepted) {
  std::string text = kHeader + kRule;
  text.replace(text.find("local_port: 443"), 15, "local_port: [443, \"8000-8010\", 9000-9001]");
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const auto& p = r.policy->rules[0].local_ports;
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[1].first, 8000);
  EXPECT_EQ(p[1].last, 8010);
  EXPECT_EQ(p[2].last, 9001);
}

const std::string kIcmpRule = R"(  - id: r1
    section: s
    row: r
    protocol: icmp
    icmp_types: [3, 256]
    peers: a
    secured: true
    purpose: p
)";

TEST(PolicyValidation, IcmpTypeOutOfRange) {
  EXPECT_TRUE(has_error(parse(kHeader + kIcmpRule), "t.yaml:15:21", "icmp_types: '256' is not an ICMP type (0-255)"));
}

TEST(PolicyValidation, Ethertypes) {
  const std::string rule = R"(host_essentials:
  - id: frames
    protocol: ethertype
    ethertypes: [0x0806, 0x0800, 0x86DD, 0x0500, 0x8100]
    purpose: p
)";
  auto r = parse(kHeader + kRule + rule);
  EXPECT_TRUE(has_error(r, "t.yaml:24:26", "ethertypes: 0x0800 is IP"));
  EXPECT_TRUE(has_error(r, "t.yaml:24:34", "ethertypes: 0x86DD is IP"));
  EXPECT_TRUE(has_error(r, "t.yaml:24:42", "'0x0500' is not an ethertype (0x0600-0xFFFF)"));
  EXPECT_TRUE(has_error(r, "t.yaml:24:50", "0x8100 is a VLAN tag"));
  EXPECT_EQ(r.errors.size(), 4u) << all(r.errors);
}

TEST(PolicyValidation, DuplicateIdsAcrossSections) {
  auto r = parse(kHeader + kRule + R"(host_essentials:
  - id: r1
    protocol: icmp
    icmp_types: [8]
    peers: a
    purpose: p
)");
  EXPECT_TRUE(has_error(r, "t.yaml:22:9", "duplicate rule id 'r1' (first at t.yaml:11:9)"));
}

TEST(PolicyValidation, BadIds) {
  std::string text = kHeader + kRule;
  text.replace(text.find("id: r1"), 6, "id: R_1");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:11:9", "id: 'R_1' must use only a-z, 0-9 and '-'"));
  text = kHeader + kRule;
  text.replace(text.find("id: r1"), 6, "id: " + std::string(48, 'x'));
  EXPECT_TRUE(has_error(parse(text), "t.yaml:11:9", "is longer than 47 characters"));
}

TEST(PolicyValidation, UndefinedPeerSet) {
  std::string text = kHeader + kRule;
  text.replace(text.find("peers: a"), 8, "peers: zz");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:16:12", "peers: unknown peer set 'zz'"));
}

TEST(PolicyValidation, ProfileExcludesUnknownRule) {
  auto r = parse(kHeader + kRule + "profiles:\n  p:\n    exclude_rules: [r1, r9]\n");
  EXPECT_TRUE(has_error(r, "t.yaml:23:25", "profile 'p' excludes unknown rule 'r9'"));
  EXPECT_EQ(r.errors.size(), 1u) << all(r.errors);
}

TEST(PolicyValidation, InitiatorAndPortsMustAgree) {
  // remote: remote_port forbidden.
  std::string text = kHeader + kRule + "    remote_port: 1024\n";
  EXPECT_TRUE(has_error(parse(text), "t.yaml:21:5", "remote_port: not allowed with initiator remote"));
  // remote: local_port required.
  text = kHeader + kRule;
  text.replace(text.find("    local_port: 443\n"), 20, "");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:11:5", "rule 'r1': missing required key 'local_port'"));
  // local: local_port forbidden, remote_port required.
  text = kHeader + kRule;
  text.replace(text.find("initiator: remote"), 17, "initiator: local");
  auto r = parse(text);
  EXPECT_TRUE(has_error(r, "t.yaml:15:5", "local_port: not allowed with initiator local"));
  EXPECT_TRUE(has_error(r, "t.yaml:11:5", "missing required key 'remote_port'"));
  // both: both required.
  text = kHeader + kRule;
  text.replace(text.find("initiator: remote"), 17, "initiator: both");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:11:5", "missing required key 'remote_port' (initiator both)"));
  text += "    remote_port: 443\n";
  EXPECT_TRUE(parse(text).ok());
}

TEST(PolicyValidation, FlowMustAgreeWithInitiator) {
  std::string text = kHeader + kRule;
  text.replace(text.find("flow: bidirectional"), 19, "flow: send-only");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:18:11", "flow: send-only needs initiator local"));

  text = kHeader + kRule;
  text.replace(text.find("initiator: remote"), 17, "initiator: local");
  text.replace(text.find("local_port: 443"), 15, "remote_port: 443");
  text.replace(text.find("flow: bidirectional"), 19, "flow: receive-only");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:18:11", "flow: receive-only needs initiator remote"));
}

TEST(PolicyValidation, ProtocolFieldsMustMatch) {
  EXPECT_TRUE(has_error(parse(kHeader + kRule + "    icmp_types: [8]\n"), "t.yaml:21:5",
                        "icmp_types: not allowed for protocol tcp"));
  std::string text = kHeader + kIcmpRule;
  text.replace(text.find("[3, 256]"), 8, "[3]");
  EXPECT_TRUE(parse(text).ok());
  EXPECT_TRUE(has_error(parse(text + "    local_port: 1\n"), "t.yaml:19:5",
                        "local_port: not allowed for protocol icmp"));
  auto r = parse(kHeader + kRule + R"(host_essentials:
  - id: frames
    protocol: ethertype
    ethertypes: [0x0806]
    peers: a
    purpose: p
)");
  EXPECT_TRUE(has_error(r, "t.yaml:25:5", "peers: not allowed for protocol ethertype"));
  // tcp/udp need ports, icmp needs types.
  text = kHeader + kIcmpRule;
  text.replace(text.find("    icmp_types: [3, 256]\n"), 25, "");
  EXPECT_TRUE(has_error(parse(text), "t.yaml:11:5", "missing required key 'icmp_types'"));
}

TEST(PolicyValidation, NotEnforcedNeedsReason) {
  auto r = parse(kHeader + kRule + "    enforced: false\n");
  EXPECT_TRUE(has_error(r, "t.yaml:11:5", "enforced: false needs a not_enforced_reason"));
  r = parse(kHeader + kRule + "    not_enforced_reason: because\n");
  EXPECT_TRUE(has_error(r, "t.yaml:21:5", "not_enforced_reason: given, but the rule is enforced"));

  // A documentation-only rule may leave out ports and peers; it is not in force.
  r = parse(kHeader + kRule + R"(  - id: doc
    section: s
    row: r
    protocol: tcp
    initiator: remote
    secured: true
    purpose: p
    enforced: false
    not_enforced_reason: not on this host
)");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  EXPECT_EQ(select(*r.policy, "").rules.size(), 1u);
}

// Rules after the first one at line 11 (kRule, tcp 443 from 'a').
std::string udp_rule(const std::string& id, const std::string& port_line, const std::string& peers,
                     const std::string& initiator, const std::string& flow,
                     const std::string& protocol = "udp") {
  return "  - id: " + id + "\n    section: s\n    row: r\n    protocol: " + protocol + "\n    " +
         port_line + "\n    peers: " + peers + "\n    initiator: " + initiator + "\n    flow: " + flow +
         "\n    secured: true\n    purpose: p\n";
}

TEST(PolicyValidation, ReceiveOnlyContradiction) {
  // Lines 21-30 and 31-40.
  const std::string text = kHeader + kRule +
                           udp_rule("traps", "local_port: 162", "a", "remote", "receive-only") +
                           udp_rule("mixed", "local_port: 160-170", "b", "remote", "bidirectional");
  auto r = parse(text);
  EXPECT_TRUE(has_error(r, "t.yaml:31:5",
                        "rule 'mixed' contradicts rule 'traps' (t.yaml:21:5): both cover udp local port "
                        "162 for overlapping peer sets 'a' and 'b', but 'traps' is receive-only and "
                        "'mixed' is bidirectional"));
  EXPECT_EQ(r.errors.size(), 1u) << all(r.errors);

  // Disjoint peers, disjoint ports, or a rule not in force: no contradiction.
  EXPECT_TRUE(parse(kHeader + kRule + udp_rule("traps", "local_port: 162", "a", "remote", "receive-only") +
                    udp_rule("mixed", "local_port: 160-170", "c", "remote", "bidirectional"))
                  .ok());
  EXPECT_TRUE(parse(kHeader + kRule + udp_rule("traps", "local_port: 162", "a", "remote", "receive-only") +
                    udp_rule("mixed", "local_port: 163-170", "b", "remote", "bidirectional"))
                  .ok());
  EXPECT_TRUE(parse(kHeader + kRule + udp_rule("traps", "local_port: 162", "a", "remote", "receive-only") +
                    udp_rule("mixed", "local_port: 162", "b", "remote", "bidirectional") +
                    "    enforced: false\n    not_enforced_reason: x\n")
                  .ok());
  // Same for tcp local ports: kRule (443, bidirectional) against a receive-only 443.
  r = parse(kHeader + kRule + udp_rule("rx", "local_port: 443", "b", "remote", "receive-only", "tcp"));
  EXPECT_TRUE(has_error(r, "t.yaml:21:5", "rule 'rx' contradicts rule 'r1' (t.yaml:11:5)"));
}

TEST(PolicyValidation, SendOnlyContradictionIsUdpOnly) {
  auto r = parse(kHeader + kRule + udp_rule("up", "remote_port: 443", "a", "local", "send-only") +
                 udp_rule("down", "remote_port: 443", "b", "local", "bidirectional"));
  EXPECT_TRUE(has_error(r, "t.yaml:31:5",
                        "rule 'down' contradicts rule 'up' (t.yaml:21:5): both cover udp remote port 443"));
  EXPECT_TRUE(parse(kHeader + kRule + udp_rule("up", "remote_port: 443", "a", "local", "send-only", "tcp") +
                    udp_rule("down", "remote_port: 443", "b", "local", "bidirectional", "tcp"))
                  .ok());
}

TEST(PolicyValidation, AllErrorsAreCollected) {
  std::string text = kHeader + kRule;
  text.replace(text.find("local_port: 443"), 15, "local_port: 0");
  text.replace(text.find("peers: a"), 8, "peers: zz");
  text.replace(text.find("secured: true"), 13, "secured: maybe");
  auto r = parse(text);
  EXPECT_TRUE(has_error(r, "t.yaml:15:17", "port 0"));
  EXPECT_TRUE(has_error(r, "t.yaml:16:12", "unknown peer set 'zz'"));
  EXPECT_TRUE(has_error(r, "t.yaml:19:14", "secured: must be true or false"));
  EXPECT_EQ(r.errors.size(), 3u) << all(r.errors);
}

// ---------------------------------------------------------------------------
// Peer-set files

TEST(PolicyPeerFiles, ReadRelativeToThePolicy) {
  std::string text = kHeader;
  text.replace(text.find("rules:\n"), 7, "  admins:\n    file: admin-hosts.txt\n    cidrs: [198.51.100.0/24]\nrules:\n");
  auto r = parse(text + kRule, kDataDir);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const PeerSet* admins = r.policy->find_peer_set("admins");
  ASSERT_NE(admins, nullptr);
  std::vector<std::string> cidrs;
  for (const auto& c : admins->cidrs) cidrs.push_back(c.to_string());
  EXPECT_EQ(cidrs, (std::vector<std::string>{"198.51.100.0/24", "10.20.0.0/16", "192.0.2.7/32",
                                             "2001:db8:1::/48"}));
  EXPECT_FALSE(admins->is_open());
}

TEST(PolicyPeerFiles, ErrorsPointIntoTheFile) {
  std::string text = kHeader;
  text.replace(text.find("rules:\n"), 7, "  admins:\n    file: bad-hosts.txt\nrules:\n");
  auto r = parse(text + kRule, kDataDir);
  const std::string file = kDataDir + "/bad-hosts.txt";
  EXPECT_TRUE(has_error(r, file + ":3:4", "'10.1.2.3/16' has host bits set; the prefix is 10.1.0.0/16"));
  EXPECT_TRUE(has_error(r, file + ":4:1", "'not-an-address' is not an IPv4 or IPv6 address"));
  EXPECT_EQ(r.errors.size(), 2u) << all(r.errors);

  text = kHeader;
  text.replace(text.find("rules:\n"), 7, "  admins:\n    file: missing.txt\nrules:\n");
  EXPECT_TRUE(has_error(parse(text + kRule, kDataDir), "t.yaml:11:11", "cannot read '" + kDataDir + "/missing.txt'"));
}

// Found while writing the fuzzer: a directory used to read as an empty set.
TEST(PolicyPeerFiles, OnlyRegularFiles) {
  for (const std::string name : {".", "/dev/null"}) {
    std::string text = kHeader;
    text.replace(text.find("rules:\n"), 7, "  admins:\n    file: " + name + "\nrules:\n");
    const std::string path = name == "." ? kDataDir + "/." : name;
    EXPECT_TRUE(has_error(parse(text + kRule, kDataDir), "t.yaml:11:11",
                          "'" + path + "' is not a regular file"))
        << name;
  }
}

// ---------------------------------------------------------------------------
// Selecting the rules in force

TEST(PolicySelect, UnknownProfile) {
  auto r = parse(kHeader + kRule);
  ASSERT_TRUE(r.ok());
  auto s = select_rules(*r.policy, "strict");
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(s));
  EXPECT_EQ(std::get<Diagnostic>(s).to_string(), "t.yaml: unknown profile 'strict'; the policy defines no profiles");
}

TEST(PolicySelect, ProfileExcludesAndSecuredOnly) {
  std::string text = kHeader + kRule;
  text += udp_rule("plain", "local_port: 5060", "b", "remote", "bidirectional");
  text.replace(text.rfind("secured: true"), 13, "secured: false");
  text += "host_essentials:\n  - id: ping\n    protocol: icmp\n    icmp_types: [8]\n    peers: c\n    purpose: p\n";
  text += "profiles:\n  strict:\n    secured_only: true\n  no-r1:\n    exclude_rules: [r1]\n";
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  EXPECT_EQ(ids(select(*r.policy, "")), (std::vector<std::string>{"r1", "plain", "ping"}));
  EXPECT_EQ(ids(select(*r.policy, "strict")), (std::vector<std::string>{"r1", "ping"}));
  EXPECT_EQ(ids(select(*r.policy, "no-r1")), (std::vector<std::string>{"plain", "ping"}));
  const RuleSet s = select(*r.policy, "");
  EXPECT_EQ(s.rules[0].peers, r.policy->find_peer_set("a"));
  EXPECT_EQ(s.profile, "");
}

TEST(PolicySelect, AtMost64RulesInForce) {
  std::string text = kHeader;
  for (int i = 1; i <= 65; ++i)
    text += udp_rule("r" + std::to_string(i), "local_port: " + std::to_string(1000 + i), "a", "remote",
                     "bidirectional");
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  auto s = select_rules(*r.policy, "");
  ASSERT_TRUE(std::holds_alternative<Diagnostic>(s));
  EXPECT_NE(std::get<Diagnostic>(s).message.find("policy has 65 rules in force; the datapath holds at most 64"),
            std::string::npos);
}

TEST(PolicySelect, EthertypeRulesHaveNoPeerSet) {
  auto r = parse(kHeader + kRule +
                 "host_essentials:\n  - id: arp\n    protocol: ethertype\n    ethertypes: 0x0806\n    purpose: p\n");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const RuleSet s = select(*r.policy, "");
  ASSERT_EQ(s.rules.size(), 2u);
  EXPECT_EQ(s.rules[1].peers, nullptr);
  EXPECT_TRUE(peer_set_warnings(*r.policy, s).empty());  // 'a' is 10.0.0.0/8
}

TEST(PolicyPeerSets, AnEmptyListIsASetOfNobodyAndWarned) {
  std::string text = kHeader + kRule;
  text.replace(text.find("[10.0.0.0/8]"), 12, "[]");
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  EXPECT_TRUE(r.policy->find_peer_set("a")->cidrs.empty());
  const auto w = peer_set_warnings(*r.policy, select(*r.policy, ""));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].message, "peer set 'a' is empty: its rules admit no one");
  EXPECT_EQ(w[0].where.line, 4);
  // Empty lists elsewhere are still slips.
  auto ports = parse(kHeader + std::string(kRule).replace(kRule.find("443"), 3, "[]"));
  ASSERT_FALSE(ports.ok());
  EXPECT_NE(all(ports.errors).find("local_port: must not be empty"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Settings (kHeader + kRule are lines 1-20; `settings:` is line 21)

TEST(PolicySettings, DefaultsWithoutTheBlock) {
  auto r = parse(kHeader + kRule);
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const Settings& s = r.policy->settings;
  EXPECT_EQ(s.egress, EgressMode::Enforce);
  EXPECT_EQ(s.tcp_established_timeout, 3600u);
  EXPECT_EQ(s.tcp_closing_timeout, 30u);
  EXPECT_EQ(s.udp_timeout, 60u);
  EXPECT_EQ(s.fragment_timeout, 30u);
  EXPECT_EQ(s.flow_table_size, 65536u);
  EXPECT_EQ(s.event_rate, 10u);
  EXPECT_EQ(s.event_burst, 20u);
  EXPECT_EQ(s.where.line, 0);
}

TEST(PolicySettings, EveryKeyIsRead) {
  auto r = parse(kHeader + kRule + R"(settings:
  egress: track
  timeouts: {tcp_established: 7200, tcp_closing: 10, udp: 120, fragments: 5}
  flow_table_size: 2048
  events: {rate: 0, burst: 5}
)");
  ASSERT_TRUE(r.ok()) << all(r.errors);
  const Settings& s = r.policy->settings;
  EXPECT_EQ(s.egress, EgressMode::Track);
  EXPECT_EQ(s.tcp_established_timeout, 7200u);
  EXPECT_EQ(s.tcp_closing_timeout, 10u);
  EXPECT_EQ(s.udp_timeout, 120u);
  EXPECT_EQ(s.fragment_timeout, 5u);
  EXPECT_EQ(s.flow_table_size, 2048u);
  EXPECT_EQ(s.event_rate, 0u);
  EXPECT_EQ(s.event_burst, 5u);
  EXPECT_EQ(s.where.line, 21);

  auto off = parse(kHeader + kRule + "settings:\n  egress: off\n  timeouts: {udp: 30}\n");
  ASSERT_TRUE(off.ok()) << all(off.errors);
  EXPECT_EQ(off.policy->settings.egress, EgressMode::Off);
  EXPECT_EQ(off.policy->settings.udp_timeout, 30u);
  EXPECT_EQ(off.policy->settings.tcp_established_timeout, 3600u);  // untouched
}

TEST(PolicySettings, ErrorsPointAtTheValue) {
  auto r = parse(kHeader + kRule + R"(settings:
  egress: block
  timeouts:
    udp: 0
    tcp_established: 604801
    tcp_closing: soon
    fragments: -1
    icmp: 5
  flow_table_size: 1023
  mtu: 1500
  events:
    rate: 100001
    burst: 0
    size: 3
)");
  EXPECT_TRUE(has_error(r, "t.yaml:22:11", "egress: 'block' is not one of enforce, track, off"));
  EXPECT_TRUE(has_error(r, "t.yaml:24:10", "timeouts: udp: '0' must be a whole number of seconds from 1 to 86400"));
  EXPECT_TRUE(has_error(r, "t.yaml:25:22", "'604801' must be a whole number of seconds from 1 to 604800"));
  EXPECT_TRUE(has_error(r, "t.yaml:26:18", "timeouts: tcp_closing: 'soon'"));
  EXPECT_TRUE(has_error(r, "t.yaml:27:16", "timeouts: fragments: '-1'"));
  EXPECT_TRUE(has_error(r, "t.yaml:28:5", "unknown key 'icmp'"));
  EXPECT_TRUE(has_error(r, "t.yaml:29:20", "flow_table_size: '1023' must be a whole number of entries from 1024 to 4194304"));
  EXPECT_TRUE(has_error(r, "t.yaml:30:3", "unknown key 'mtu'"));
  EXPECT_TRUE(has_error(r, "t.yaml:32:11", "events: rate: '100001' must be a whole number of events per second from 0 to 100000"));
  EXPECT_TRUE(has_error(r, "t.yaml:33:12", "events: burst: '0' must be a whole number of events from 1 to 100000"));
  EXPECT_TRUE(has_error(r, "t.yaml:34:5", "unknown key 'size'"));
}

TEST(PolicySettings, LearnIsOffByDefaultAndReadWithItsBounds) {
  auto plain = parse(kHeader + kRule);
  ASSERT_TRUE(plain.ok()) << all(plain.errors);
  EXPECT_FALSE(plain.policy->settings.learn);
  EXPECT_EQ(plain.policy->settings.learn_entries, uint32_t{XDPG_LEARN_ENTRIES});

  auto on = parse(kHeader + kRule + "settings:\n  learn: {enabled: true, entries: 4096}\n");
  ASSERT_TRUE(on.ok()) << all(on.errors);
  EXPECT_TRUE(on.policy->settings.learn);
  EXPECT_EQ(on.policy->settings.learn_entries, 4096u);

  auto bad = parse(kHeader + kRule + R"(settings:
  learn:
    enabled: maybe
    entries: 0
    window: 3
)");
  EXPECT_TRUE(has_error(bad, "t.yaml:23:14", "learn: enabled"));
  EXPECT_TRUE(has_error(bad, "t.yaml:24:14", "learn: entries: '0' must be a whole number of entries from 1 to 4194304"));
  EXPECT_TRUE(has_error(bad, "t.yaml:25:5", "unknown key 'window'"));
  EXPECT_TRUE(has_error(parse(kHeader + kRule + "settings:\n  learn: yes\n"), "t.yaml:22:10",
                        "learn: must be a mapping with keys: enabled, entries"));
}

TEST(PolicySettings, ShapesAreChecked) {
  EXPECT_TRUE(has_error(parse(kHeader + kRule + "settings: enforce\n"), "t.yaml:21:11",
                        "settings: must be a mapping"));
  EXPECT_TRUE(has_error(parse(kHeader + kRule + "settings:\n  timeouts: 30\n"), "t.yaml:22:13",
                        "timeouts: must be a mapping"));
  EXPECT_TRUE(has_error(parse(kHeader + kRule + "settings:\n  flow_table_size: 4194305\n"),
                        "t.yaml:22:20", "from 1024 to 4194304"));
}

TEST_F(DefaultPolicy, EnforcesEgressWithDefaultTimeouts) {
  const Settings& s = policy_->settings;
  EXPECT_EQ(s.egress, EgressMode::Enforce);
  EXPECT_GT(s.where.line, 0) << "the default policy states its egress mode explicitly";
  EXPECT_EQ(s.udp_timeout, 60u);
  EXPECT_EQ(s.flow_table_size, 65536u);
}

}  // namespace
}  // namespace xdpguard::policy
