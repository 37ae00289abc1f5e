// Policy -> the contents of the BPF maps (include/xdpguard/maps.h).
// Pure: no kernel calls, so it is unit-tested and benchmarked without root.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "policy/model.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::compile {

// One family's peer sets as the datapath looks them up (maps.h, xdpg_peer_*_key;
// docs/datapath.md 5.4).
template <typename Key>
struct PeerTable {
  // Every prefix but /0, ascending by (address, length), with the mask of
  // every rule whose set contains it, covering prefixes folded in.
  std::vector<std::pair<Key, uint64_t>> entries;
  // The distinct prefix lengths of `entries`, longest first: one hash probe each.
  std::vector<uint8_t> lengths;
  // The folded mask of /0: the members of an address no entry matches.
  uint64_t default_mask = 0;
};
using PeerTableV4 = PeerTable<xdpg_peer_v4_key>;
using PeerTableV6 = PeerTable<xdpg_peer_v6_key>;

// A table from prefixes already folded and sorted (ascending by address, then
// length): /0 becomes the default mask, the lengths are collected. Tests
// that write map contents by hand build their tables with it too.
template <typename Key>
PeerTable<Key> peer_table(std::vector<std::pair<Key, uint64_t>> folded);

// The rodata probe for `length` (maps.h): the length and its netmask.
xdpg_peer_v4_probe peer_probe_v4(uint8_t length);
xdpg_peer_v6_probe peer_probe_v6(uint8_t length);

struct CompiledPolicy {
  // Nonzero slots of port_table (index = kind << 16 | port), ascending.
  std::vector<std::pair<uint32_t, uint64_t>> port_entries;
  PeerTableV4 peers_v4;
  PeerTableV6 peers_v6;
  // rule_flags map: entry f = mask of rules with enum xdpg_rule_flag f.
  std::array<uint64_t, XDPG_RULE_FLAG_COUNT> rule_flags{};
  std::vector<xdpg_rule_meta> rule_meta;  // index = rule index
  // Rules whose peer set is still to be filled in (PeerSet::to_fill_in), by
  // rule index: what learning observes (rodata learn_slots, by slot).
  uint64_t learn_rules = 0;
  xdpg_info info{};
};

constexpr uint32_t port_table_index(xdpg_port_kind kind, uint16_t value) {
  return (static_cast<uint32_t>(kind) << 16) | value;
}

// ICMP types the host may send because of a rule admitting inbound `type`
// (docs/datapath.md 9.3): the answer to a request, the request of an answer,
// MLD reports for a query, and the type itself for errors and NDP.
std::vector<uint8_t> icmp_out_types(int family, uint8_t type);

// Above this many distinct prefix lengths in one family, `check` warns: each
// costs a hash lookup per packet from outside the longer prefixes.
inline constexpr size_t kManyPrefixLengths = 8;
// One line per family whose peer table has more than kManyPrefixLengths lengths.
std::vector<std::string> peer_length_warnings(const CompiledPolicy& compiled);

// `rules` must come from policy::select_rules (at most XDPG_MAX_RULES).
CompiledPolicy compile(const policy::RuleSet& rules);

}  // namespace xdpguard::compile
