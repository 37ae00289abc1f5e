// Policy -> the contents of the BPF maps (include/xdpguard/maps.h).
// Pure: no kernel calls, so it is unit-tested and benchmarked without root.
#pragma once

#include <array>
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
  // rule_flags map: entry f = mask of rules with enum xdpg_rule_flag f.
  std::array<uint64_t, XDPG_RULE_FLAG_COUNT> rule_flags{};
  std::vector<xdpg_rule_meta> rule_meta;  // index = rule index
  xdpg_info info{};
};

constexpr uint32_t port_table_index(xdpg_port_kind kind, uint16_t value) {
  return (static_cast<uint32_t>(kind) << 16) | value;
}

// ICMP types the host may send because of a rule admitting inbound `type`
// (docs/datapath.md 9.3): the answer to a request, the request of an answer,
// MLD reports for a query, and the type itself for errors and NDP.
std::vector<uint8_t> icmp_out_types(int family, uint8_t type);

// `rules` must come from policy::select_rules (at most XDPG_MAX_RULES).
CompiledPolicy compile(const policy::RuleSet& rules);

}  // namespace xdpguard::compile
