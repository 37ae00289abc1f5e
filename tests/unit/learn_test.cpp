// Learning's proposal, without a kernel (agent/learn/, docs/learn.md).
//
// Expected behaviour:
// - aggregation covers every address it is given, never proposes a prefix
//   broader than the limits, merges into the limit prefix exactly when at
//   least `min` distinct addresses fall in it, and gives the same sorted
//   result whatever the order of its input, for IPv4 and IPv6;
// - the proposal replaces each open set with its confirmed peers (with their
//   evidence as comments), leaves out unconfirmed peers, and those seen only
//   on receive-only rules unless asked, extends a filled set with the
//   confirmed peers audit mode saw it refuse, leaves a set whose rules saw
//   nothing as it was, and is a policy the parser takes;
// - the preview admits every proposed sighting and reports what becomes of
//   the others;
// - observations survive their text form and merge by adding up.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "learn/aggregate.hpp"
#include "learn/observations.hpp"
#include "learn/preview.hpp"
#include "learn/proposal.hpp"
#include "policy/cidr.hpp"
#include "policy/parser.hpp"

namespace xdpguard::learn {
namespace {

classify::LearnedAddress addr(const std::string& text) {
  auto c = std::get<policy::Cidr>(policy::parse_cidr(text));
  return {static_cast<uint8_t>(c.family), c.address};
}

std::vector<std::string> cidr_texts(const std::vector<Prefix>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.cidr.to_string());
  return out;
}

TEST(LearnAggregate, MergesIntoTheLimitPrefixFromMinAddressesOn) {
  std::vector<Evidence> in = {{addr("10.1.2.3"), 5, 100, 200},  {addr("10.1.2.77"), 1, 150, 160},
                              {addr("10.1.2.3"), 2, 50, 300},   {addr("10.9.9.9"), 1, 10, 10},
                              {addr("2001:db8:1::5"), 3, 1, 2}, {addr("2001:db8:1::9"), 3, 1, 4},
                              {addr("2001:db8:2::1"), 1, 1, 1}};
  auto out = aggregate(in, {24, 64, 2});
  EXPECT_EQ(cidr_texts(out), (std::vector<std::string>{"10.1.2.0/24", "10.9.9.9/32",
                                                      "2001:db8:1::/64", "2001:db8:2::1/128"}));
  EXPECT_EQ(out[0].addresses, 2u);  // 10.1.2.3 twice is one address
  EXPECT_EQ(out[0].packets, 8u);
  EXPECT_EQ(out[0].first_seen, 50);
  EXPECT_EQ(out[0].last_seen, 300);
  // min 3: the /24 holds only two distinct addresses.
  EXPECT_EQ(cidr_texts(aggregate(in, {24, 64, 3}))[0], "10.1.2.3/32");
  // Limits at the full length: single addresses only.
  EXPECT_EQ(aggregate(in, {32, 128, 1}).size(), 6u);
}

TEST(LearnAggregate, PropertiesHoldOnRandomInput) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<Evidence> in;
    for (int i = 0, n = 1 + rng() % 40; i < n; ++i) {
      Evidence e;
      e.addr.family = rng() % 2 ? 4 : 6;
      // Few networks, so that some share a prefix.
      e.addr.addr[0] = e.addr.family == 4 ? 10 : 0x20;
      e.addr.addr[1] = static_cast<uint8_t>(rng() % 3);
      e.addr.addr[2] = static_cast<uint8_t>(rng() % 3);
      for (int b = 3; b < (e.addr.family == 4 ? 4 : 16); ++b)
        e.addr.addr[b] = static_cast<uint8_t>(b >= 8 || e.addr.family == 4 ? rng() : rng() % 2);
      e.packets = 1 + rng() % 9;
      e.first_seen = static_cast<int64_t>(rng() % 1000);
      e.last_seen = e.first_seen + static_cast<int64_t>(rng() % 1000);
      in.push_back(e);
    }
    AggregateOptions o{static_cast<uint8_t>(8 + rng() % 25), static_cast<uint8_t>(16 + rng() % 113),
                       1 + rng() % 4};
    auto out = aggregate(in, o);
    for (const Evidence& e : in)
      EXPECT_TRUE(std::any_of(out.begin(), out.end(), [&](const Prefix& p) {
        return p.cidr.contains(e.addr.family, e.addr.addr.data());
      })) << "an address is not covered";
    std::set<classify::LearnedAddress> distinct;
    for (const Evidence& e : in) distinct.insert(e.addr);
    size_t counted = 0;
    for (const Prefix& p : out) {
      EXPECT_GE(p.cidr.prefix_length, p.cidr.family == 4 ? o.v4_prefix : o.v6_prefix);
      counted += p.addresses;
    }
    EXPECT_EQ(counted, distinct.size()) << "each address stands in exactly one prefix";
    auto shuffled = in;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_EQ(cidr_texts(aggregate(shuffled, o)), cidr_texts(out));
  }
}

TEST(LearnAggregate, OptionsAreParsedWithTheirBounds) {
  std::string err;
  auto o = parse_aggregate("min=3,v6=56", err);
  ASSERT_TRUE(o) << err;
  EXPECT_EQ(o->v4_prefix, 24);
  EXPECT_EQ(o->v6_prefix, 56);
  EXPECT_EQ(o->min_addresses, 3u);
  for (const char* bad : {"v4=7", "v6=129", "min=0", "v4=", "v5=24", "v4=24x"}) {
    EXPECT_FALSE(parse_aggregate(bad, err)) << bad;
    EXPECT_NE(err.find("--aggregate"), std::string::npos);
  }
}

const std::string kPolicy = R"(version: 1
name: learn-test
peer_sets:
  clients:
    cidrs: [0.0.0.0/0, ::/0]
  devices:
    cidrs:
      - 0.0.0.0/0
      - ::/0
  ldap:
    cidrs: [0.0.0.0/0, ::/0]
  quiet:
    cidrs: [0.0.0.0/0, ::/0]
  admins:
    cidrs: [10.0.0.0/8]
rules:
  - {id: https, protocol: tcp, local_port: [443], peers: clients, initiator: remote,
     flow: bidirectional, section: s, row: r, purpose: p, secured: true}
  - {id: traps, protocol: udp, local_port: [162], peers: devices, initiator: remote,
     flow: receive-only, section: s, row: r, purpose: p, secured: false}
  - {id: snmp-poll, protocol: udp, remote_port: [161], peers: devices, initiator: local,
     flow: bidirectional, section: s, row: r, purpose: p, secured: false}
  - {id: ldap, protocol: tcp, remote_port: [389], peers: ldap, initiator: local,
     flow: bidirectional, section: s, row: r, purpose: p, secured: false}
  - {id: quiet-8443, protocol: tcp, local_port: [8443], peers: quiet, initiator: remote,
     flow: bidirectional, section: s, row: r, purpose: p, secured: true}
  - {id: ssh, protocol: tcp, local_port: [22], peers: admins, initiator: remote,
     flow: bidirectional, section: s, row: r, purpose: p, secured: true}
)";

Observations sample() {
  Observations o;
  o.sightings = {{"https", addr("198.51.100.10"), 40, 1000, 2000},
                 {"https", addr("198.51.100.11"), 12, 1100, 1900},
                 {"https", addr("2001:db8:5::7"), 9, 1200, 1300},
                 {"https", addr("203.0.113.5"), 1, 1500, 1500},  // a scan: never answered
                 {"traps", addr("192.0.2.50"), 30, 1000, 2000},
                 {"snmp-poll", addr("192.0.2.50"), 60, 1000, 2000},
                 {"traps", addr("192.0.2.60"), 5, 1000, 2000},  // traps only
                 {"ldap", addr("10.20.0.5"), 8, 1000, 1800},
                 {"ssh", addr("172.16.0.9"), 4, 1700, 1750}};  // audit would-drop
  o.confirmed = {{addr("198.51.100.10"), XDPG_CONFIRM_TCP_ESTABLISHED},
                 {addr("198.51.100.11"), XDPG_CONFIRM_TCP_ESTABLISHED},
                 {addr("2001:db8:5::7"), XDPG_CONFIRM_TCP_ESTABLISHED},
                 {addr("192.0.2.50"), XDPG_CONFIRM_HOST_OPENED},
                 {addr("10.20.0.5"), XDPG_CONFIRM_HOST_OPENED | XDPG_CONFIRM_TCP_ESTABLISHED},
                 {addr("172.16.0.9"), XDPG_CONFIRM_TCP_ESTABLISHED}};
  o.overflow = {{"https", 3}};
  return o;
}

struct Proposed {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
};

Proposed parse_selected(const std::string& text) {
  auto r = policy::parse_policy_text(text, "p.yaml", "");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string()) << "\n" << text;
  if (!r.ok()) return {};
  Proposed out{std::make_unique<policy::Policy>(std::move(*r.policy)), {}};
  out.rules = std::get<policy::RuleSet>(policy::select_rules(*out.policy, ""));
  return out;
}

const SetReport& set_report(const Proposal& p, const std::string& name) {
  auto it = std::find_if(p.sets.begin(), p.sets.end(), [&](const auto& s) { return s.name == name; });
  EXPECT_NE(it, p.sets.end()) << name;
  return *it;
}

std::vector<std::string> set_cidrs(const Proposed& p, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& c : p.policy->find_peer_set(name)->cidrs) out.push_back(c.to_string());
  return out;
}

TEST(LearnProposal, ProposesConfirmedPeersOnlyAndProvesItByReplay) {
  Proposed before = parse_selected(kPolicy);
  ProposeOptions o;
  o.generated = "for the test";
  Proposal p = propose(*before.policy, kPolicy, before.rules, sample(), o);
  Proposed after = parse_selected(p.text);
  ASSERT_TRUE(after.policy);

  EXPECT_EQ(set_cidrs(after, "clients"),
            (std::vector<std::string>{"198.51.100.0/24", "2001:db8:5::7/128"}));
  EXPECT_EQ(set_cidrs(after, "devices"), (std::vector<std::string>{"192.0.2.50/32"}));
  EXPECT_EQ(set_cidrs(after, "ldap"), (std::vector<std::string>{"10.20.0.5/32"}));
  EXPECT_EQ(set_cidrs(after, "admins"), (std::vector<std::string>{"10.0.0.0/8", "172.16.0.9/32"}));
  EXPECT_EQ(set_cidrs(after, "quiet"), (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
  EXPECT_TRUE(set_report(p, "quiet").no_traffic);
  EXPECT_NE(p.text.find("# xdpguard learn: no rule of this set saw a peer"), std::string::npos);
  EXPECT_NE(p.text.find("\"198.51.100.0/24\"  # 2 addresses, 52 packets"), std::string::npos)
      << p.text;

  const SetReport& clients = set_report(p, "clients");
  ASSERT_EQ(clients.unconfirmed.size(), 1u);
  EXPECT_EQ(address_text(clients.unconfirmed[0].addr), "203.0.113.5");
  const SetReport& devices = set_report(p, "devices");
  ASSERT_EQ(devices.unconfirmable.size(), 1u);
  EXPECT_EQ(address_text(devices.unconfirmable[0].addr), "192.0.2.60");
  EXPECT_EQ(p.rules[0].overflow, 3u);
  EXPECT_EQ(p.rules[0].peers, 4u);
  EXPECT_EQ(p.rules[0].confirmed, 3u);

  PreviewReport pv = preview(after.rules, sample(), p);
  EXPECT_EQ(pv.replayed, 7u);  // every sighting of a proposed peer
  EXPECT_EQ(pv.admitted, pv.replayed);
  EXPECT_TRUE(pv.refused.empty()) << pv.refused.front();
  EXPECT_EQ(pv.unproposed, 2u);
  EXPECT_EQ(pv.unproposed_outcomes["https peer_not_in_set"], 1u);
  EXPECT_EQ(pv.unproposed_outcomes["traps peer_not_in_set"], 1u);
}

TEST(LearnProposal, ConfirmableRulesAreTcpOrOpenedByTheHost) {
  Proposed p = parse_selected(kPolicy);
  std::map<std::string, bool> got;
  for (const auto& e : p.rules.rules) got[e.rule->id] = confirmable(*e.rule);
  EXPECT_TRUE(got["https"]);       // TCP: the handshake
  EXPECT_FALSE(got["traps"]);      // receive-only: never answered
  EXPECT_TRUE(got["snmp-poll"]);   // UDP the host opens
  EXPECT_TRUE(got["ldap"]);
  policy::Rule udp_served;
  udp_served.protocol = policy::Protocol::Udp;
  udp_served.initiator = policy::Initiator::Remote;
  EXPECT_FALSE(confirmable(udp_served));  // the host's answer reaches a spoofer too
  udp_served.initiator = policy::Initiator::Both;
  EXPECT_TRUE(confirmable(udp_served));
}

TEST(LearnProposal, UnseenSetsAreEmptiedOnlyWhenAsked) {
  Proposed before = parse_selected(kPolicy);
  ProposeOptions o;
  o.empty_unseen = true;
  Proposal p = propose(*before.policy, kPolicy, before.rules, sample(), o);
  Proposed after = parse_selected(p.text);
  ASSERT_TRUE(after.policy);
  EXPECT_TRUE(set_cidrs(after, "quiet").empty());
  EXPECT_TRUE(set_report(p, "quiet").no_traffic);
  EXPECT_NE(p.text.find("emptied (--empty-unseen)"), std::string::npos);
  // Sets that saw traffic are proposed as without the option.
  EXPECT_EQ(set_cidrs(after, "devices"), (std::vector<std::string>{"192.0.2.50/32"}));
}

TEST(LearnProposal, UnconfirmablePeersAreIncludedOnlyWhenAsked) {
  Proposed before = parse_selected(kPolicy);
  ProposeOptions o;
  o.include_unconfirmable = true;
  Proposal p = propose(*before.policy, kPolicy, before.rules, sample(), o);
  Proposed after = parse_selected(p.text);
  ASSERT_TRUE(after.policy);
  // Two addresses of one /24: aggregated (min 2).
  EXPECT_EQ(set_cidrs(after, "devices"), (std::vector<std::string>{"192.0.2.0/24"}));
  // The scan on 443 is still not proposed: it could have confirmed and did not.
  EXPECT_EQ(set_cidrs(after, "clients").size(), 2u);
  PreviewReport pv = preview(after.rules, sample(), p);
  EXPECT_EQ(pv.admitted, 8u);
  EXPECT_EQ(pv.unproposed, 1u);
}

TEST(LearnProposal, SameObservationsInAnotherOrderGiveTheSameFile) {
  Proposed before = parse_selected(kPolicy);
  Observations a = sample(), b = sample();
  std::reverse(b.sightings.begin(), b.sightings.end());
  EXPECT_EQ(propose(*before.policy, kPolicy, before.rules, a, {}).text,
            propose(*before.policy, kPolicy, before.rules, b, {}).text);
}

TEST(LearnProposal, SinceLeavesOutWhatWasLastSeenBefore) {
  Proposed before = parse_selected(kPolicy);
  ProposeOptions o;
  o.since = 1950;  // only sightings last seen at 1950 or later
  Proposal p = propose(*before.policy, kPolicy, before.rules, sample(), o);
  Proposed after = parse_selected(p.text);
  ASSERT_TRUE(after.policy);
  EXPECT_EQ(set_cidrs(after, "clients"), (std::vector<std::string>{"198.51.100.10/32"}));
  EXPECT_TRUE(set_report(p, "ldap").no_traffic);
}

TEST(LearnObservations, TextFormRoundTripsAndMergeAddsUp) {
  Observations o = sample();
  Observations back;
  std::string err;
  ASSERT_TRUE(from_text(to_text(o), back, err)) << err;
  EXPECT_EQ(to_text(back), to_text(o));
  merge(back, o);
  EXPECT_EQ(back.sightings.size(), o.sightings.size());
  EXPECT_EQ(back.sightings[0].packets, 80u);
  EXPECT_EQ(back.overflow["https"], 6u);
  EXPECT_FALSE(from_text("sighting https not-an-address 1 2 3\n", back, err));
  EXPECT_NE(err.find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace xdpguard::learn
