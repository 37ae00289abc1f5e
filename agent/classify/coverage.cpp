#include "classify/coverage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"

namespace xdpguard::classify {
namespace {

using policy::Cidr;
using policy::Protocol;
using Address = std::array<uint8_t, 16>;

size_t width(int family) { return family == 4 ? 4 : 16; }

Address last_address(const Cidr& c) {
  Address a = c.address;
  for (size_t bit = c.prefix_length; bit < width(c.family) * 8; ++bit)
    a[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  return a;
}

// a + 1 within the family's width; false on wrapping past the last address.
bool increment(Address& a, int family) {
  for (size_t i = width(family); i-- > 0;)
    if (++a[i] != 0) return true;
  return false;
}

// An address of `node` outside every one of `children` (sorted, disjoint).
std::optional<Address> gap(const Cidr& node, const std::vector<Cidr>& children) {
  Address start = node.address;
  for (const Cidr& child : children) {
    if (start < child.address) return start;
    const Address end = last_address(child);
    if (end >= last_address(node)) return std::nullopt;
    if (end >= start) {
      start = end;
      increment(start, node.family);
    }
  }
  return start;
}

// Hosts' own addresses in sample packets: no rule looks at them.
Address host_address(int family) {
  if (family == 4) return {198, 51, 100, 10};
  return {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
}

bool covers(const std::vector<policy::PortRange>& ranges, uint16_t v) {
  return std::any_of(ranges.begin(), ranges.end(), [&](const auto& r) { return r.contains(v); });
}

// The values a rule lists on one side, as ranges.
std::vector<policy::PortRange> values(const policy::Rule& r, Side side) {
  switch (side) {
    case Side::LocalPort: return r.local_ports;
    case Side::RemotePort: return r.remote_ports;
    case Side::Type: {
      std::vector<policy::PortRange> out;
      for (uint8_t t : r.icmp_types) out.push_back({t, t});
      return out;
    }
    case Side::Ethertype: {
      std::vector<policy::PortRange> out;
      for (uint16_t e : r.ethertypes) out.push_back({e, e});
      return out;
    }
  }
  return {};
}

int proto_index(Protocol p) { return p == Protocol::Tcp ? 0 : 1; }

// A port no range lists, from the ephemeral range up: the far end of a sample.
uint16_t free_port(const std::vector<policy::PortRange>& ranges) {
  for (uint32_t i = 0; i < 65535; ++i) {
    const auto port = static_cast<uint16_t>(1 + (49151 + i) % 65535);
    if (!covers(ranges, port)) return port;
  }
  return 65535;  // every port listed: any will do, the rules decide alike
}

}  // namespace

std::string AddressPiece::to_string() const {
  std::string s = prefix.to_string();
  for (size_t i = 0; i < except.size(); ++i)
    s += (i == 0 ? " except " : ", ") + except[i].to_string();
  return s;
}

PacketSpace::PacketSpace(std::vector<const policy::RuleSet*> sets) : sets_(std::move(sets)) {
  std::map<const policy::PeerSet*, size_t> set_index;
  for (const auto* rs : sets_)
    for (const auto& e : rs->rules)
      if (e.peers && set_index.emplace(e.peers, peer_sets_.size()).second)
        peer_sets_.push_back(e.peers);

  // Address classes: a trie of every prefix in play. A prefix less its
  // children is one piece; pieces held by the same sets are one class.
  std::map<std::pair<int, std::vector<bool>>, size_t> class_of;
  for (int family : {4, 6}) {
    std::map<std::pair<Address, uint8_t>, std::vector<bool>> own;
    for (size_t s = 0; s < peer_sets_.size(); ++s)
      for (const Cidr& c : peer_sets_[s]->cidrs)
        if (c.family == family) {
          auto& m = own[{c.address, c.prefix_length}];
          m.resize(peer_sets_.size());
          m[s] = true;
        }
    struct Node {
      Cidr cidr;
      std::vector<bool> members;
      std::vector<Cidr> children;
    };
    std::vector<Node> nodes;
    std::vector<size_t> stack;  // ancestors of the current node
    for (const auto& [key, members] : own) {  // parents sort before their children
      Cidr c;
      c.family = family;
      c.address = key.first;
      c.prefix_length = key.second;
      while (!stack.empty() && !nodes[stack.back()].cidr.contains(family, c.address.data()))
        stack.pop_back();
      Node n{c, members, {}};
      if (!stack.empty()) {
        Node& parent = nodes[stack.back()];
        parent.children.push_back(c);
        for (size_t s = 0; s < n.members.size(); ++s) n.members[s] = n.members[s] || parent.members[s];
      }
      stack.push_back(nodes.size());
      nodes.push_back(std::move(n));
    }
    for (const Node& n : nodes) {
      auto sample = gap(n.cidr, n.children);
      if (!sample) continue;  // wholly covered by more specific prefixes
      auto [it, fresh] = class_of.emplace(std::pair{family, n.members}, classes_.size());
      if (fresh) classes_.push_back({family, n.members, {}, *sample});
      classes_[it->second].pieces.push_back({n.cidr, n.children});
    }
  }

  // Cells: per protocol and side, the runs of values between rule boundaries.
  struct Kind {
    Protocol protocol;
    Side side;
  };
  const Kind kinds[] = {{Protocol::Tcp, Side::LocalPort},   {Protocol::Tcp, Side::RemotePort},
                        {Protocol::Udp, Side::LocalPort},   {Protocol::Udp, Side::RemotePort},
                        {Protocol::Icmp, Side::Type},       {Protocol::Icmpv6, Side::Type},
                        {Protocol::Ethertype, Side::Ethertype}};
  for (const Kind& k : kinds) {
    struct Listed {
      std::vector<policy::PortRange> ranges;
      const policy::PeerSet* peers;
    };
    std::vector<Listed> rules;
    std::set<uint32_t> cuts;
    std::vector<policy::PortRange> all;
    for (const auto* rs : sets_)
      for (const auto& e : rs->rules)
        if (e.rule->protocol == k.protocol) {
          auto v = values(*e.rule, k.side);
          for (const auto& r : v) {
            cuts.insert(r.first);
            cuts.insert(r.last + 1u);
            all.push_back(r);
          }
          rules.push_back({std::move(v), e.peers});
        }
    if (k.protocol == Protocol::Tcp || k.protocol == Protocol::Udp)
      (k.side == Side::LocalPort ? free_local_ : free_remote_)[proto_index(k.protocol)] = free_port(all);
    for (auto it = cuts.begin(); it != cuts.end() && std::next(it) != cuts.end(); ++it) {
      const auto first = static_cast<uint16_t>(*it);
      const auto last = static_cast<uint16_t>(*std::next(it) - 1);
      std::vector<const Listed*> covering;
      for (const auto& l : rules)
        if (covers(l.ranges, first)) covering.push_back(&l);
      if (covering.empty()) continue;
      if (k.side == Side::Ethertype) {
        cells_.push_back({k.protocol, k.side, first, last, -1});
        continue;
      }
      const int family = k.protocol == Protocol::Icmp ? 4 : k.protocol == Protocol::Icmpv6 ? 6 : 0;
      for (size_t c = 0; c < classes_.size(); ++c) {
        if (family && classes_[c].family != family) continue;
        const bool held = std::any_of(covering.begin(), covering.end(), [&](const Listed* l) {
          return l->peers && classes_[c].members[set_index.at(l->peers)];
        });
        if (held) cells_.push_back({k.protocol, k.side, first, last, static_cast<int>(c)});
      }
    }
  }
}

PacketSpec PacketSpace::sample(const Cell& cell) const {
  PacketSpec p;
  if (cell.side == Side::Ethertype) {
    p.family = 0;
    p.ethertype = cell.first;
    return p;
  }
  const AddressClass& c = classes_[cell.address_class];
  p.family = c.family;
  p.src = c.sample;
  p.dst = host_address(c.family);
  switch (cell.protocol) {
    case Protocol::Icmp:
    case Protocol::Icmpv6:
      p.l4 = cell.protocol == Protocol::Icmp ? PacketSpec::L4::Icmp : PacketSpec::L4::Icmpv6;
      p.icmp_type = static_cast<uint8_t>(cell.first);
      break;
    default:
      p.l4 = cell.protocol == Protocol::Tcp ? PacketSpec::L4::Tcp : PacketSpec::L4::Udp;
      // A connection to a local port starts with a bare SYN, which no remote
      // port admits; a reply from a remote port is any other segment, sent to
      // a port of the host no rule serves.
      const int proto = proto_index(cell.protocol);
      const bool local = cell.side == Side::LocalPort;
      p.sport = local ? free_remote_[proto] : cell.first;
      p.dport = local ? cell.first : free_local_[proto];
      p.tcp_flags = local ? 0x02 : 0x10;
  }
  return p;
}

Decision PacketSpace::decide(const policy::RuleSet& rules, const Cell& cell) const {
  return classify(rules, sample(cell));
}

Decision PacketSpace::decide_ports(const policy::RuleSet& rules, const Cell& cell,
                                   uint16_t sport, uint16_t dport) const {
  PacketSpec p = sample(cell);
  p.sport = sport;
  p.dport = dport;
  p.tcp_flags = 0x10;
  return classify(rules, p);
}

Decision PacketSpace::decide_reply(const policy::RuleSet& rules, const Cell& cell) const {
  PacketSpec p = sample(cell);
  std::swap(p.src, p.dst);
  std::swap(p.sport, p.dport);
  p.tcp_flags = 0x10;
  ReferenceClassifier reference(rules);  // egress enforced
  return *reference.classify_egress(build_frame(p)).decision;
}

Decision PacketSpace::classify(const policy::RuleSet& rules, const PacketSpec& packet) {
  ReferenceOptions off;
  off.egress_mode = XDPG_EGRESS_OFF;
  ReferenceClassifier reference(rules, off);
  return reference.classify(build_frame(packet));
}

bool PacketSpace::admits(const policy::RuleSet& rules, size_t index, const Cell& cell) const {
  policy::RuleSet alone{rules.policy, rules.profile, rules.iface, {rules.rules[index]}};
  return decide(alone, cell).verdict == Verdict::Pass;
}

void CellGroup::add(uint16_t first, uint16_t last, int address_class) {
  values.emplace_back(first, last);
  if (std::find(classes.begin(), classes.end(), address_class) == classes.end())
    classes.push_back(address_class);
}

std::vector<std::pair<uint16_t, uint16_t>> merge_ranges(
    std::vector<std::pair<uint16_t, uint16_t>> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (const auto& r : ranges) {
    if (!out.empty() && r.first <= static_cast<uint32_t>(out.back().second) + 1)
      out.back().second = std::max(out.back().second, r.second);
    else
      out.push_back(r);
  }
  return out;
}

std::string describe_values(Protocol protocol, Side side,
                            const std::vector<std::pair<uint16_t, uint16_t>>& ranges) {
  std::string list;
  const auto merged = merge_ranges(ranges);
  bool plural = merged.size() > 1;
  for (const auto& [first, last] : merged) {
    if (!list.empty()) list += ", ";
    plural = plural || first != last;
    const char* f = side == Side::Ethertype ? "0x{:04x}" : "{}";
    list += fmt::format(fmt::runtime(f), first);
    if (first != last) list += "-" + fmt::format(fmt::runtime(f), last);
  }
  const char* s = plural ? "s" : "";
  switch (side) {
    case Side::LocalPort:
      return fmt::format("{} to local port{} {}", policy::to_string(protocol), s, list);
    case Side::RemotePort:
      return fmt::format("{} from remote port{} {}", policy::to_string(protocol), s, list);
    case Side::Type: return fmt::format("{} type{} {}", policy::to_string(protocol), s, list);
    case Side::Ethertype: return fmt::format("ethertype{} {}", s, list);
  }
  return list;
}

std::string describe_addresses(const PacketSpace& space, const std::vector<int>& classes,
                               size_t limit) {
  // Each piece belongs to one class: no duplicates to remove.
  std::string out;
  size_t shown = 0, total = 0;
  for (int c : classes) {
    if (c < 0) continue;
    total += space.classes()[c].pieces.size();
    for (const auto& p : space.classes()[c].pieces)
      if (shown < limit) out += (shown++ ? ", " : "") + p.to_string();
  }
  if (total > limit) out += fmt::format(" and {} more", total - limit);
  return out;
}

}  // namespace xdpguard::classify
