// What learning saw, in the agent's terms: rule ids instead of slots, wall
// time (Unix seconds) instead of the datapath's clock. Read from the pins
// (cli/learn.cpp) or from a saved file, merged across a learning window.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "classify/learn_model.hpp"

namespace xdpguard::learn {

using classify::LearnedAddress;

// One peer seen on one rule.
struct Sighting {
  std::string rule;  // rule id
  LearnedAddress peer;
  uint64_t packets = 0;
  int64_t first_seen = 0, last_seen = 0;  // Unix seconds
};

struct Observations {
  std::vector<Sighting> sightings;
  std::map<LearnedAddress, uint32_t> confirmed;  // XDPG_CONFIRM_* bits
  std::map<std::string, uint64_t> overflow;      // rule id -> peers not recorded (table full)
  uint64_t confirm_overflow = 0;                 // confirmations not recorded
};

// `more` added to `into`: packets add up, first/last widen, confirmations
// and overflow accumulate.
void merge(Observations& into, const Observations& more);

// A text form, one record per line, for keeping a window across restarts:
//   sighting RULE ADDRESS PACKETS FIRST LAST
//   confirmed ADDRESS HOW
//   overflow RULE COUNT   |   confirm_overflow COUNT
std::string to_text(const Observations&);
// Parses to_text's output; on error, the message names the line.
bool from_text(const std::string& text, Observations& out, std::string& error);

std::string address_text(const LearnedAddress&);

}  // namespace xdpguard::learn
