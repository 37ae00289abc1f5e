// Policy -> the contents of the BPF maps (include/xdpguard/maps.h).
// Pure: no kernel calls, so it is unit-tested and benchmarked without root.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "policy/model.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::compile {

struct CompiledPolicy {
  // Nonzero slots of port_table (index = kind << 16 | port), ascending.
  std::vector<std::pair<uint32_t, uint64_t>> port_entries;
  // Peer prefixes with the mask of every rule whose set contains them,
  // covering prefixes already folded in (longest match is enough).
  std::vector<std::pair<xdpg_lpm_v4_key, uint64_t>> peers_v4;
  std::vector<std::pair<xdpg_lpm_v6_key, uint64_t>> peers_v6;
  std::vector<xdpg_rule_meta> rule_meta;  // index = rule index
  xdpg_info info{};
};

constexpr uint32_t port_table_index(xdpg_port_kind kind, uint16_t value) {
  return (static_cast<uint32_t>(kind) << 16) | value;
}

// `rules` must come from policy::select_rules (at most XDPG_MAX_RULES).
CompiledPolicy compile(const policy::RuleSet& rules);

}  // namespace xdpguard::compile
