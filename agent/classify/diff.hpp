// `xdpguard diff OLD NEW`: what changes for traffic between two rule sets,
// not for their text: which packets become admitted or refused, and which
// are counted on another rule. Decided cell by cell by the reference
// classifier over the packet space of both sets (classify/coverage.hpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "classify/coverage.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

struct Change {
  enum class Kind {
    Admitted,   // refused by OLD, admitted by NEW
    Refused,    // admitted by OLD, refused by NEW
    Recounted,  // admitted by both, counted on rules of different ids
    // To a local port, admitted by both; the host's answers from that port:
    RepliesRefused,  // sent under OLD, dropped receive_only under NEW
    RepliesSent,     // the reverse
  };
  Kind kind = Kind::Admitted;
  policy::Protocol protocol = policy::Protocol::Tcp;
  Side side = Side::LocalPort;
  CellGroup cells;  // merged ranges; address classes of DiffReport::space
  const policy::Rule* before = nullptr;  // the rule OLD counts them on; null when refused
  const policy::Rule* after = nullptr;   // the rule NEW counts them on; null when refused
};
const char* to_string(Change::Kind);

struct DiffReport {
  std::vector<Change> changes;  // by protocol, side, kind, rules
  PacketSpace space;
  std::string addresses(const Change& c) const { return describe_addresses(space, c.cells.classes); }
};

DiffReport diff(const policy::RuleSet& before, const policy::RuleSet& after);

}  // namespace xdpguard::classify
