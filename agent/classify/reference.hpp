// The reference classifier: docs/datapath.md written as plainly as possible.
//
// It is the definition of what a policy means. It walks the rules in policy
// order and tests each one directly against the packet (ports, types,
// ethertypes, PeerSet::contains), never the compiled port table or LPM masks,
// so that the differential test against the XDP program compares two
// independent implementations of the same contract.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "classify/decision.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

// How the attributed rule covered the packet (section 7 of docs/datapath.md).
enum class MatchKind { None, LocalPort, RemotePort, IcmpType, Icmpv6Type, Ethertype };
const char* to_string(MatchKind);

// A decision with the reasoning behind it, for `xdpguard explain`.
struct Explanation {
  Decision decision;
  MatchKind kind = MatchKind::None;  // how the attributed rule matched by port/type
  std::vector<std::string> steps;    // one line per header / rule step
};

class ReferenceClassifier {
 public:
  // Keeps a reference: `rules` (and the Policy behind it) must outlive this.
  explicit ReferenceClassifier(const policy::RuleSet& rules);

  // Decides one Ethernet frame exactly as docs/datapath.md says. Updates the
  // fragment table (first fragments record, later fragments look up).
  Decision classify(std::span<const uint8_t> frame);
  // The same decision (and the same fragment-table effect) with the steps.
  Explanation explain(std::span<const uint8_t> frame);

  void reset_fragments() { frags_.clear(); }
  size_t fragment_entries() const { return frags_.size(); }

 private:
  // {family, protocol, id, saddr, daddr}; IPv4 addresses use the first 4 bytes.
  using FragKey =
      std::tuple<uint8_t, uint8_t, uint32_t, std::array<uint8_t, 16>, std::array<uint8_t, 16>>;
  struct Walk;  // per-packet state, defined in reference.cpp

  Decision decide(std::span<const uint8_t> frame, Explanation* ex);
  Decision decide_ipv4(Walk& w, std::span<const uint8_t> packet);
  Decision decide_ipv6(Walk& w, std::span<const uint8_t> packet);
  Decision decide_non_first_fragment(Walk& w, const FragKey& key, uint8_t protocol,
                                     uint32_t offset);
  Decision decide_transport(Walk& w, uint8_t protocol, std::span<const uint8_t> l4);
  Decision choose_rule(Walk& w);

  const policy::RuleSet& rules_;
  // No timeout and no bound: it is a model; tests run the BPF side with the
  // maximum fragment timeout.
  std::map<FragKey, Decision> frags_;
};

}  // namespace xdpguard::classify
