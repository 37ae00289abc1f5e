#include "learn/preview.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"

namespace xdpguard::learn {
namespace {

using classify::PacketSpec;

// Documentation addresses (RFC 5737, RFC 3849) for the host's side: the
// policy never matches the host's own address.
classify::LearnedAddress host_address(int family) {
  classify::LearnedAddress a{static_cast<uint8_t>(family), {}};
  if (family == 4) {
    a.addr[0] = 192, a.addr[1] = 0, a.addr[2] = 2, a.addr[3] = 1;
  } else {
    a.addr[0] = 0x20, a.addr[1] = 0x01, a.addr[2] = 0x0d, a.addr[3] = 0xb8, a.addr[15] = 1;
  }
  return a;
}

struct Replay {
  bool egress = false;
  PacketSpec spec;
};

// A packet that uses `rule` with `peer`: what the peer opens (its first local
// port, or first ICMP type), else what the host opens (its first remote port).
std::optional<Replay> replay_of(const policy::Rule& rule, const classify::LearnedAddress& peer) {
  Replay r;
  r.spec.family = peer.family;
  const auto host = host_address(peer.family).addr;
  switch (rule.protocol) {
    case policy::Protocol::Tcp:
    case policy::Protocol::Udp:
      r.spec.l4 = rule.protocol == policy::Protocol::Tcp ? PacketSpec::L4::Tcp : PacketSpec::L4::Udp;
      r.spec.tcp_flags = 0x02;  // SYN: opens
      if (rule.initiator != policy::Initiator::Local && !rule.local_ports.empty()) {
        r.spec.src = peer.addr, r.spec.dst = host;
        r.spec.sport = 40000, r.spec.dport = rule.local_ports.front().first;
        return r;
      }
      if (rule.initiator != policy::Initiator::Remote && !rule.remote_ports.empty()) {
        r.egress = true;
        r.spec.src = host, r.spec.dst = peer.addr;
        r.spec.sport = 40000, r.spec.dport = rule.remote_ports.front().first;
        return r;
      }
      return std::nullopt;
    case policy::Protocol::Icmp:
    case policy::Protocol::Icmpv6: {
      const bool v6 = rule.protocol == policy::Protocol::Icmpv6;
      if (rule.icmp_types.empty() || peer.family != (v6 ? 6 : 4)) return std::nullopt;
      r.spec.l4 = v6 ? PacketSpec::L4::Icmpv6 : PacketSpec::L4::Icmp;
      r.spec.icmp_type = rule.icmp_types.front();
      r.spec.src = peer.addr, r.spec.dst = host;
      return r;
    }
    case policy::Protocol::Ethertype: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

PreviewReport preview(const policy::RuleSet& proposed, const Observations& seen,
                      const Proposal& proposal) {
  std::set<std::pair<std::string, classify::LearnedAddress>> kept;  // (set, peer) proposed
  for (const SetReport& s : proposal.sets)
    for (const Prefix& p : s.proposed)
      for (const auto& group : {s.confirmed, s.unconfirmable})
        for (const Evidence& e : group)
          if (p.cidr.contains(e.addr.family, e.addr.addr.data())) kept.insert({s.name, e.addr});
  std::map<std::string, const policy::RuleSet::Entry*> entry_of;
  for (const auto& e : proposed.rules) entry_of[e.rule->id] = &e;

  PreviewReport out;
  for (const Sighting& s : seen.sightings) {
    auto it = entry_of.find(s.rule);
    if (it == entry_of.end()) continue;
    const auto& entry = *it->second;
    auto replay = replay_of(*entry.rule, s.peer);
    if (!replay) {
      ++out.not_replayable;
      continue;
    }
    // A set left as it was (open, from a file) admits what it admitted.
    const std::string set = entry.peers ? entry.peers->name : "";
    const bool expected = kept.count({set, s.peer}) > 0;
    const bool unchanged = std::none_of(proposal.sets.begin(), proposal.sets.end(),
                                        [&](const SetReport& r) {
                                          return r.name == set && !r.no_traffic && !r.from_file;
                                        });
    classify::ReferenceClassifier reference(proposed);
    const auto frame = classify::build_frame(replay->spec);
    Decision d = replay->egress ? reference.classify_egress(frame).decision.value_or(Decision{})
                                : reference.classify(frame);
    const bool admitted = d.verdict == Verdict::Pass;
    if (expected || unchanged) {
      ++out.replayed;
      if (admitted)
        ++out.admitted;
      else
        out.refused.push_back(s.rule + " " + address_text(s.peer) + ": " + to_string(d));
      continue;
    }
    ++out.unproposed;
    ++out.unproposed_outcomes[s.rule + " " +
                              (admitted ? std::string("still admitted")
                                        : std::string(drop_reason_name(d.reason)))];
  }
  return out;
}

}  // namespace xdpguard::learn
