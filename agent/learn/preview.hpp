// The proof of a proposal (docs/learn.md): every sighting of a proposed peer,
// replayed as a packet of its rule through the reference classifier against
// the proposed policy, must still be admitted; the sightings of peers not
// proposed are replayed too, and the report says what becomes of them.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "learn/observations.hpp"
#include "learn/proposal.hpp"
#include "policy/model.hpp"

namespace xdpguard::learn {

struct PreviewReport {
  size_t replayed = 0;                // sightings of proposed peers
  size_t admitted = 0;
  std::vector<std::string> refused;   // "rule peer: decision", should stay empty
  size_t unproposed = 0;              // sightings of peers not proposed
  // "rule-id reason" (or "rule-id still admitted") -> sightings of unproposed peers
  std::map<std::string, size_t> unproposed_outcomes;
  size_t not_replayable = 0;          // rules without a port or type to build a packet from
};

PreviewReport preview(const policy::RuleSet& proposed, const Observations& seen,
                      const Proposal& proposal);

}  // namespace xdpguard::learn
