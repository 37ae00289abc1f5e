#include "compile/compiler.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace xdpguard::compile {
namespace {

using policy::Protocol;

void copy_truncated(char* dst, size_t cap, const std::string& src) {
  size_t n = std::min(cap - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

void fill_port_table(const policy::RuleSet& rules, std::vector<uint64_t>& slots) {
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const policy::Rule& r = *rules.rules[i].rule;
    const uint64_t bit = 1ULL << i;
    auto set_ranges = [&](xdpg_port_kind kind, const std::vector<policy::PortRange>& ranges) {
      for (const auto& range : ranges)
        for (uint32_t p = range.first; p <= range.last; ++p)
          slots[port_table_index(kind, static_cast<uint16_t>(p))] |= bit;
    };
    switch (r.protocol) {
      case Protocol::Tcp:
        set_ranges(XDPG_KIND_TCP_LOCAL, r.local_ports);
        set_ranges(XDPG_KIND_TCP_REMOTE, r.remote_ports);
        break;
      case Protocol::Udp:
        set_ranges(XDPG_KIND_UDP_LOCAL, r.local_ports);
        set_ranges(XDPG_KIND_UDP_REMOTE, r.remote_ports);
        break;
      case Protocol::Icmp:
        for (uint8_t t : r.icmp_types) {
          slots[port_table_index(XDPG_KIND_ICMP, t)] |= bit;
          for (uint8_t o : icmp_out_types(4, t)) slots[port_table_index(XDPG_KIND_ICMP_OUT, o)] |= bit;
        }
        break;
      case Protocol::Icmpv6:
        for (uint8_t t : r.icmp_types) {
          slots[port_table_index(XDPG_KIND_ICMPV6, t)] |= bit;
          for (uint8_t o : icmp_out_types(6, t))
            slots[port_table_index(XDPG_KIND_ICMPV6_OUT, o)] |= bit;
        }
        break;
      case Protocol::Ethertype:
        for (uint16_t e : r.ethertypes) slots[port_table_index(XDPG_KIND_ETHERTYPE, e)] |= bit;
        break;
    }
  }
}

std::array<uint64_t, XDPG_RULE_FLAG_COUNT> rule_flag_masks(const policy::RuleSet& rules) {
  std::array<uint64_t, XDPG_RULE_FLAG_COUNT> masks{};
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const policy::Rule& r = *rules.rules[i].rule;
    const uint64_t bit = 1ULL << i;
    if (r.flow == policy::Flow::ReceiveOnly) masks[XDPG_RULE_RECEIVE_ONLY] |= bit;
    if (r.flow == policy::Flow::SendOnly) masks[XDPG_RULE_SEND_ONLY] |= bit;
    if (r.initiator != policy::Initiator::Remote) masks[XDPG_RULE_LOCAL_INIT] |= bit;
    if (r.initiator != policy::Initiator::Local) masks[XDPG_RULE_REMOTE_INIT] |= bit;
  }
  return masks;
}

// One address family's prefixes, merged across sets, then folded so that each
// prefix also carries the masks of every shorter prefix that covers it.
// Sorted by (address, length), an ancestor always precedes its descendants,
// so a stack of open ancestors does the fold in O(n log n).
struct Prefix {
  std::array<uint8_t, 16> address;
  uint8_t length;
  auto operator<=>(const Prefix&) const = default;
};

bool covers(const Prefix& outer, const Prefix& inner) {
  if (outer.length > inner.length) return false;
  size_t full = outer.length / 8;
  if (std::memcmp(outer.address.data(), inner.address.data(), full) != 0) return false;
  unsigned rest = outer.length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (outer.address[full] & mask) == (inner.address[full] & mask);
}

void clear_host_bits(std::array<uint8_t, 16>& address, unsigned length) {
  for (unsigned i = 0; i < address.size(); ++i) {
    unsigned kept = length > 8 * i ? length - 8 * i : 0;  // bits of byte i in the prefix
    if (kept < 8) address[i] &= static_cast<uint8_t>(0xFF00 >> kept);
  }
}

// Host bits cleared: the datapath looks up the address masked to the length.
Prefix network(const policy::Cidr& cidr) {
  Prefix p{cidr.address, cidr.prefix_length};
  clear_host_bits(p.address, p.length);
  return p;
}

std::array<uint8_t, 16> netmask(unsigned length) {
  std::array<uint8_t, 16> mask;
  mask.fill(0xFF);
  clear_host_bits(mask, length);
  return mask;
}

std::vector<std::pair<Prefix, uint64_t>> folded_prefixes(const policy::RuleSet& rules, int family) {
  // Many rules share a set: each set's prefixes are read once, with the
  // mask of all its rules.
  std::vector<std::pair<const policy::PeerSet*, uint64_t>> sets;
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const policy::PeerSet* set = rules.rules[i].peers;
    if (!set) continue;
    auto it = std::find_if(sets.begin(), sets.end(), [&](const auto& s) { return s.first == set; });
    if (it == sets.end()) it = sets.insert(sets.end(), {set, 0});
    it->second |= 1ULL << i;
  }
  std::vector<std::pair<Prefix, uint64_t>> all;
  size_t total = 0;
  for (const auto& entry : sets) total += entry.first->cidrs.size();
  all.reserve(total);
  for (const auto& [set, mask] : sets)
    for (const auto& cidr : set->cidrs)
      if (cidr.family == family) all.push_back({network(cidr), mask});
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  std::vector<std::pair<Prefix, uint64_t>> out;
  out.reserve(all.size());
  for (const auto& entry : all) {
    if (!out.empty() && out.back().first == entry.first)
      out.back().second |= entry.second;
    else
      out.push_back(entry);
  }
  std::vector<size_t> ancestors;
  for (size_t k = 0; k < out.size(); ++k) {
    while (!ancestors.empty() && !covers(out[ancestors.back()].first, out[k].first))
      ancestors.pop_back();
    if (!ancestors.empty()) out[k].second |= out[ancestors.back()].second;
    ancestors.push_back(k);
  }
  return out;
}

template <typename Key>
PeerTable<Key> family_table(const policy::RuleSet& rules, int family) {
  std::vector<std::pair<Key, uint64_t>> folded;
  for (const auto& [prefix, mask] : folded_prefixes(rules, family)) {
    Key key{};
    key.prefixlen = prefix.length;
    std::memcpy(key.addr, prefix.address.data(), sizeof key.addr);
    folded.emplace_back(key, mask);
  }
  return peer_table(std::move(folded));
}

}  // namespace

template <typename Key>
PeerTable<Key> peer_table(std::vector<std::pair<Key, uint64_t>> folded) {
  PeerTable<Key> t;
  auto is_default = [](const auto& entry) { return entry.first.prefixlen == 0; };
  auto zero = std::find_if(folded.begin(), folded.end(), is_default);
  if (zero != folded.end()) {
    t.default_mask = zero->second;
    folded.erase(zero);
  }
  std::array<bool, 129> present{};
  for (const auto& entry : folded) present.at(entry.first.prefixlen) = true;
  for (size_t len = present.size() - 1; len > 0; --len)
    if (present[len]) t.lengths.push_back(static_cast<uint8_t>(len));
  t.entries = std::move(folded);
  return t;
}
template PeerTableV4 peer_table(std::vector<std::pair<xdpg_peer_v4_key, uint64_t>>);
template PeerTableV6 peer_table(std::vector<std::pair<xdpg_peer_v6_key, uint64_t>>);

xdpg_peer_v4_probe peer_probe_v4(uint8_t length) {
  xdpg_peer_v4_probe probe{};
  probe.prefixlen = length;
  std::memcpy(&probe.mask, netmask(length).data(), sizeof probe.mask);
  return probe;
}

xdpg_peer_v6_probe peer_probe_v6(uint8_t length) {
  xdpg_peer_v6_probe probe{};
  probe.prefixlen = length;
  std::memcpy(probe.mask, netmask(length).data(), sizeof probe.mask);
  return probe;
}

std::vector<std::string> peer_length_warnings(const CompiledPolicy& compiled) {
  std::vector<std::string> out;
  auto check = [&](const char* family, const std::vector<uint8_t>& lengths) {
    if (lengths.size() <= kManyPrefixLengths) return;
    std::string list;
    for (uint8_t len : lengths) list += (list.empty() ? "/" : " /") + std::to_string(len);
    out.push_back(std::string("peer sets use ") + std::to_string(lengths.size()) + " distinct " +
                  family + " prefix lengths (" + list + "): the datapath tries them longest "
                  "first, one hash lookup each, on every packet until one matches; fewer "
                  "lengths are faster (docs/policy-format.md, peer sets)");
  };
  check("IPv4", compiled.peers_v4.lengths);
  check("IPv6", compiled.peers_v6.lengths);
  return out;
}

std::vector<uint8_t> icmp_out_types(int family, uint8_t type) {
  if (family == 4) {
    switch (type) {
      case 0: return {8};    // echo reply in: the host pings
      case 8: return {0};    // echo request in: the host answers
      case 13: return {14};  // timestamp
      case 14: return {13};
      default: return {type};
    }
  }
  switch (type) {
    case 128: return {129};
    case 129: return {128};
    case 130: return {131, 132, 143};  // MLD query in: v1/v2 reports and done out
    default: return {type};
  }
}

CompiledPolicy compile(const policy::RuleSet& rules) {
  if (rules.rules.size() > XDPG_MAX_RULES)
    throw std::invalid_argument("more rules than the datapath holds; use policy::select_rules");
  CompiledPolicy out;

  std::vector<uint64_t> slots(XDPG_PORT_TABLE_ENTRIES, 0);
  fill_port_table(rules, slots);
  for (uint32_t idx = 0; idx < slots.size(); ++idx)
    if (slots[idx]) out.port_entries.emplace_back(idx, slots[idx]);

  out.peers_v4 = family_table<xdpg_peer_v4_key>(rules, 4);
  out.peers_v6 = family_table<xdpg_peer_v6_key>(rules, 6);

  out.rule_flags = rule_flag_masks(rules);
  for (size_t i = 0; i < rules.rules.size(); ++i)
    if (rules.rules[i].peers && rules.rules[i].peers->to_fill_in()) out.learn_rules |= 1ULL << i;

  for (const auto& entry : rules.rules) {
    xdpg_rule_meta meta{};
    copy_truncated(meta.id, sizeof meta.id, entry.rule->id);
    copy_truncated(meta.row, sizeof meta.row,
                   entry.rule->essential ? "host essential: " + entry.rule->purpose
                                         : entry.rule->row);
    out.rule_meta.push_back(meta);
  }

  out.info.layout_version = XDPG_LAYOUT_VERSION;
  out.info.rule_count = static_cast<uint32_t>(rules.rules.size());
  if (rules.policy) {
    out.info.policy_hash = rules.policy->source_hash;
    copy_truncated(out.info.policy_name, sizeof out.info.policy_name, rules.policy->name);
  }
  copy_truncated(out.info.profile, sizeof out.info.profile, rules.profile);
  return out;
}

}  // namespace xdpguard::compile
