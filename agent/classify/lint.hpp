// What `xdpguard check` says about a valid policy beyond its errors: rules
// that are never counted or only in part because earlier rules take their
// packets, replies that a local-port rule takes first, and, where several
// rules admit the same packets, which one is counted. Decided cell by cell
// by the reference classifier (classify/coverage.hpp).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "classify/coverage.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

// Packets admitted by several rules and the one they are counted on.
struct Overlap {
  policy::Protocol protocol = policy::Protocol::Tcp;
  Side side = Side::LocalPort;
  std::vector<std::pair<uint16_t, uint16_t>> values;  // merged ranges
  std::vector<int> classes;                           // address classes (PacketSpace)
  size_t counted = 0;                                 // rule index in the RuleSet
  std::vector<size_t> also;                           // the other rules admitting them
};

struct LintReport {
  std::vector<policy::Diagnostic> warnings;  // each at a rule, saying why
  std::vector<Overlap> overlaps;
  std::string addresses(const Overlap& o) const { return describe_addresses(space, o.classes); }
  PacketSpace space;
};

LintReport lint(const policy::RuleSet& rules);

}  // namespace xdpguard::classify
