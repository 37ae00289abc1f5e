// libFuzzer target: arbitrary bytes as Ethernet frames for the reference
// classifier (docs/datapath.md), under the default policy with a few peer
// sets narrowed so that peer matching can both hit and miss.
//
// Input: one or more frames, each a big-endian 16-bit length and that many
// bytes; a last frame shorter than its length takes what is left. Several
// frames per input let a first fragment and its later fragments meet; the
// fragment table starts empty for every input, so runs are reproducible.
//
// Invariants, checked for every frame (a broken one traps):
// - pass: a rule, below the rule count, reason none;
// - drop: a reason other than none and within the counters; a rule only for
//   peer_not_in_set (fragments repeat a recorded decision, so the same holds);
// - a pass decided on this frame (not repeated from a first fragment) is on a
//   rule of the matching kind whose peer set holds the source address, read
//   here independently of the classifier;
// - classify() and explain() agree, and keep fragment tables of the same size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "classify/reference.hpp"
#include "policy/cidr.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace {

using namespace xdpguard;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// The default policy ships every peer set open; narrow a few so that a source
// address decides between pass and peer_not_in_set.
struct Fixture {
  policy::Policy policy;
  policy::RuleSet rules;

  Fixture() {
    policy::ParseResult r =
        policy::parse_policy_text(kDefaultPolicyYaml, "<embedded default>", "");
    check(r.ok());
    policy = std::move(*r.policy);
    narrow("admin-hosts", {"192.0.2.0/24", "2001:db8:1::/48"});
    narrow("managed-devices", {"10.0.0.0/8", "10.1.2.3/32", "2001:db8::/32"});
    narrow("ovoc-clients", {"198.51.100.0/24", "fd00::/8"});
    narrow("ldap-servers", {});  // admits nobody
    narrow("dns-resolvers", {"203.0.113.53/32", "2001:db8:53::53/128"});
    auto selected = policy::select_rules(policy, "");
    check(std::holds_alternative<policy::RuleSet>(selected));
    rules = std::get<policy::RuleSet>(std::move(selected));
    check(!rules.rules.empty());
  }

  void narrow(const char* set_name, std::initializer_list<const char*> cidrs) {
    for (auto& set : policy.peer_sets) {
      if (set.name != set_name) continue;
      set.cidrs.clear();
      for (const char* text : cidrs) {
        auto c = policy::parse_cidr(text);
        check(std::holds_alternative<policy::Cidr>(c));
        set.cidrs.push_back(std::get<policy::Cidr>(c));
      }
      return;
    }
    check(false);  // the default policy lost a set this fuzzer relies on
  }
};

void check_decision(const Decision& d, size_t rule_count) {
  if (d.verdict == Verdict::Pass) {
    check(d.rule.has_value() && *d.rule < rule_count);
    check(d.reason == DropReason::None);
    return;
  }
  check(d.verdict == Verdict::Drop);
  check(d.reason != DropReason::None && static_cast<int>(d.reason) < kDropReasonCount);
  check(drop_reason_name(d.reason) != nullptr);
  // Drops attributed to a rule: the port matched it but the peer did not, or
  // it was a reply without a flow, or a receive-only rule would answer.
  if (d.reason == DropReason::PeerNotInSet || d.reason == DropReason::NoFlow ||
      d.reason == DropReason::ReceiveOnly)
    check(d.rule.has_value() && *d.rule < rule_count);
  else
    check(!d.rule.has_value());
}

// Where the source address is, after up to two VLAN tags; family 0 if not IP.
struct Source {
  int family = 0;
  const uint8_t* addr = nullptr;
};

Source source_of(std::span<const uint8_t> frame) {
  size_t at = 12;
  for (int tags = 0; tags <= 2 && frame.size() >= at + 2; ++tags) {
    const uint16_t type = static_cast<uint16_t>(frame[at] << 8 | frame[at + 1]);
    if (type == 0x8100 || type == 0x88A8) {
      at += 4;
      continue;
    }
    const size_t ip = at + 2;
    if (type == 0x0800 && frame.size() >= ip + 16) return {4, frame.data() + ip + 12};
    if (type == 0x86DD && frame.size() >= ip + 24) return {6, frame.data() + ip + 8};
    return {};
  }
  return {};
}

void check_pass(const policy::RuleSet::Entry& e, classify::MatchKind kind,
                std::span<const uint8_t> frame) {
  using classify::MatchKind;
  using policy::Protocol;
  const Source src = source_of(frame);
  const Protocol p = e.rule->protocol;
  switch (kind) {
    case MatchKind::Ethertype:
      check(p == Protocol::Ethertype && src.family == 0);
      return;
    case MatchKind::IcmpType: check(p == Protocol::Icmp && src.family == 4); break;
    case MatchKind::Icmpv6Type: check(p == Protocol::Icmpv6 && src.family == 6); break;
    case MatchKind::LocalPort:
    case MatchKind::RemotePort: check(p == Protocol::Tcp || p == Protocol::Udp); break;
    case MatchKind::QuotedFlow:
      // An ICMP error admitted because it quotes a flow the host opened: the
      // flow, not the peer set, admits it.
      check(p == Protocol::Tcp || p == Protocol::Udp);
      check(src.family != 0);
      return;
    case MatchKind::None: check(false);
  }
  check(src.family != 0 && e.peers != nullptr && e.peers->contains(src.family, src.addr));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  const size_t rule_count = fixture.rules.rules.size();
  // Two classifiers in lockstep: one plain, one explaining.
  classify::ReferenceClassifier plain(fixture.rules);
  classify::ReferenceClassifier explaining(fixture.rules);

  std::span<const uint8_t> rest(data, size);
  while (rest.size() >= 2) {
    const size_t want = static_cast<size_t>(rest[0]) << 8 | rest[1];
    rest = rest.subspan(2);
    const std::span<const uint8_t> frame = rest.first(std::min(want, rest.size()));
    rest = rest.subspan(frame.size());

    const Decision d = plain.classify(frame);
    const classify::Explanation ex = explaining.explain(frame);
    check(d == ex.decision);
    check(plain.fragment_entries() == explaining.fragment_entries());
    check(!ex.steps.empty());
    check_decision(d, rule_count);
    if (ex.kind != classify::MatchKind::None) {
      check(d.verdict == Verdict::Pass || d.reason == DropReason::PeerNotInSet ||
            d.reason == DropReason::NoFlow);
      if (d.verdict == Verdict::Pass) check_pass(fixture.rules.rules[*d.rule], ex.kind, frame);
    } else if (d.rule.has_value()) {
      check(plain.fragment_entries() > 0);  // only a recorded decision carries a rule here
    }
    check(!to_string(d).empty());
    // To see what the seeds exercise: XDPGUARD_FUZZ_PRINT=1 ./fuzz_reference FILE...
    static const bool print = std::getenv("XDPGUARD_FUZZ_PRINT") != nullptr;
    if (print) std::fprintf(stderr, "%zu bytes: %s\n", frame.size(), to_string(d).c_str());
  }
  return 0;
}
