#include "classify/reference.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <optional>

namespace xdpguard::classify {
namespace {

// Bounds-checked reads over one header and what follows it. Every read is
// preceded by need(): that is "Need N bytes" of docs/datapath.md.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool need(size_t n) const { return n <= bytes_.size(); }
  size_t size() const { return bytes_.size(); }
  uint8_t u8(size_t at) const {
    assert(at < bytes_.size());
    return bytes_[at];
  }
  uint16_t be16(size_t at) const { return static_cast<uint16_t>(u8(at) << 8 | u8(at + 1)); }
  uint32_t be32(size_t at) const { return static_cast<uint32_t>(be16(at)) << 16 | be16(at + 2); }
  template <size_t N>
  std::array<uint8_t, 16> addr(size_t at) const {  // N bytes, zero-padded to 16
    assert(at + N <= bytes_.size());
    std::array<uint8_t, 16> a{};
    std::copy_n(bytes_.begin() + at, N, a.begin());
    return a;
  }
  std::span<const uint8_t> from(size_t at) const { return bytes_.subspan(at); }
  std::span<const uint8_t> first(size_t n) const { return bytes_.first(n); }

 private:
  std::span<const uint8_t> bytes_;
};

constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86DD;
constexpr uint8_t kIpIcmp = 1, kIpTcp = 6, kIpUdp = 17, kIpIcmpv6 = 58;
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10,
                  kTcpUrg = 0x20;

bool is_vlan(uint16_t ethertype) { return ethertype == 0x8100 || ethertype == 0x88A8; }

bool is_ipv6_ext(uint8_t nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60; }

bool bad_tcp_flags(uint8_t f) {
  bool syn = f & kTcpSyn, fin = f & kTcpFin, rst = f & kTcpRst;
  return (syn && fin) || (syn && rst) || (f & 0x3F) == 0 || (fin && (f & kTcpPsh) && (f & kTcpUrg));
}

std::string tcp_flag_letters(uint8_t f) {
  std::string s;
  for (auto [bit, letter] : {std::pair{kTcpFin, 'F'},
                             {kTcpSyn, 'S'},
                             {kTcpRst, 'R'},
                             {kTcpPsh, 'P'},
                             {kTcpAck, 'A'},
                             {kTcpUrg, 'U'}})
    if (f & bit) s += letter;
  return s.empty() ? "none" : s;
}

std::string addr_text(int family, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof buf);
  return buf;
}

Decision pass(uint32_t rule) { return {Verdict::Pass, rule, DropReason::None}; }
Decision drop(DropReason r, std::optional<uint32_t> rule = std::nullopt) {
  return {Verdict::Drop, rule, r};
}

}  // namespace

const char* to_string(MatchKind k) {
  switch (k) {
    case MatchKind::None: return "none";
    case MatchKind::LocalPort: return "local port";
    case MatchKind::RemotePort: return "remote port";
    case MatchKind::IcmpType: return "icmp type";
    case MatchKind::Icmpv6Type: return "icmpv6 type";
    case MatchKind::Ethertype: return "ethertype";
  }
  return "?";
}

// What the walk learned about one packet, and what to record at the exit.
struct ReferenceClassifier::Walk {
  enum class L4 { Other, Tcp, Udp, Icmp, Icmpv6 };

  Explanation* ex = nullptr;  // null: no steps are written
  int family = 0;             // 4, 6, or 0 for a non-IP frame
  uint16_t ethertype = 0;
  std::array<uint8_t, 16> saddr{}, daddr{};
  L4 l4 = L4::Other;
  uint16_t sport = 0, dport = 0;
  uint8_t icmp_type = 0;
  bool syn_without_ack = false;         // a new TCP connection: remote ports do not apply
  std::optional<FragKey> record_under;  // set for a first fragment

  template <typename... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    if (ex) ex->steps.push_back(fmt::format(f, std::forward<Args>(args)...));
  }
  Decision malformed(std::string_view why) {
    note("malformed: {}", why);
    return drop(DropReason::Malformed);
  }
};

ReferenceClassifier::ReferenceClassifier(const policy::RuleSet& rules) : rules_(rules) {}

Decision ReferenceClassifier::classify(std::span<const uint8_t> frame) {
  return decide(frame, nullptr);
}

Explanation ReferenceClassifier::explain(std::span<const uint8_t> frame) {
  Explanation ex;
  ex.decision = decide(frame, &ex);
  return ex;
}

// Section 1, and the single exit where a first fragment's decision is recorded.
Decision ReferenceClassifier::decide(std::span<const uint8_t> frame, Explanation* ex) {
  Walk w;
  w.ex = ex;
  Decision d = [&]() -> Decision {
    Reader eth(frame);
    if (!eth.need(14))
      return w.malformed(fmt::format("frame of {} bytes, Ethernet needs 14", frame.size()));
    uint16_t ethertype = eth.be16(12);
    size_t offset = 14;
    for (int tags = 0; is_vlan(ethertype) && tags < XDPG_MAX_VLAN_TAGS; ++tags) {
      Reader tag(frame.subspan(offset));
      if (!tag.need(4)) return w.malformed("truncated VLAN tag");
      w.note("vlan {} (tpid 0x{:04x})", tag.be16(0) & 0x0FFF, ethertype);
      ethertype = tag.be16(2);
      offset += 4;
    }
    if (is_vlan(ethertype)) return w.malformed("more than 2 VLAN tags");

    if (ethertype == kEthIpv4) {
      w.family = 4;
      return decide_ipv4(w, frame.subspan(offset));
    }
    if (ethertype == kEthIpv6) {
      w.family = 6;
      return decide_ipv6(w, frame.subspan(offset));
    }
    w.ethertype = ethertype;
    w.note("non-IP frame, ethertype 0x{:04x}", ethertype);
    return choose_rule(w);
  }();

  if (w.record_under) {
    frags_[*w.record_under] = d;
    w.note("first fragment: decision recorded for the later fragments");
  }
  return d;
}

// Section 2.
Decision ReferenceClassifier::decide_ipv4(Walk& w, std::span<const uint8_t> packet) {
  Reader ip(packet);
  if (!ip.need(20)) return w.malformed("IPv4 header truncated");
  if (ip.u8(0) >> 4 != 4) return w.malformed("IPv4 version field is not 4");
  size_t header_len = (ip.u8(0) & 0x0F) * 4u;
  if (header_len < 20) return w.malformed("IPv4 IHL < 5");
  if (!ip.need(header_len)) return w.malformed("IPv4 options truncated");
  size_t tot_len = ip.be16(2);
  if (tot_len < header_len) return w.malformed("IPv4 tot_len shorter than its header");
  if (tot_len > ip.size()) return w.malformed("IPv4 tot_len longer than the frame");
  Reader l3(ip.first(tot_len));  // Ethernet padding after tot_len is ignored

  uint8_t protocol = l3.u8(9);
  uint16_t id = l3.be16(4);
  uint16_t frag_off = l3.be16(6);
  uint32_t offset = frag_off & 0x1FFF;
  bool more_fragments = frag_off & 0x2000;
  w.saddr = l3.addr<4>(12);
  w.daddr = l3.addr<4>(16);
  if (w.ex)
    w.note("ipv4 {} -> {} protocol {} tot_len {}", addr_text(4, w.saddr), addr_text(4, w.daddr),
           protocol, tot_len);

  FragKey key{4, protocol, id, w.saddr, w.daddr};
  if (offset != 0) return decide_non_first_fragment(w, key, protocol, offset);
  if (more_fragments) {
    w.note("first fragment, id {}", id);
    w.record_under = key;
  }
  return decide_transport(w, protocol, l3.from(header_len));
}

// Section 3.
Decision ReferenceClassifier::decide_ipv6(Walk& w, std::span<const uint8_t> packet) {
  Reader ip(packet);
  if (!ip.need(40)) return w.malformed("IPv6 header truncated");
  if (ip.u8(0) >> 4 != 6) return w.malformed("IPv6 version field is not 6");
  size_t payload_len = ip.be16(4);
  if (payload_len == 0) return w.malformed("IPv6 payload_len 0 (jumbogram)");
  if (40 + payload_len > ip.size()) return w.malformed("IPv6 payload_len longer than the frame");
  Reader l3(ip.first(40 + payload_len));

  w.saddr = l3.addr<16>(8);
  w.daddr = l3.addr<16>(24);
  uint8_t next = l3.u8(6);
  if (w.ex)
    w.note("ipv6 {} -> {} next header {} payload_len {}", addr_text(6, w.saddr),
           addr_text(6, w.daddr), next, payload_len);

  size_t at = 40;  // start of the current extension header within the L3 packet
  for (int walked = 0; walked < XDPG_MAX_EXT_HDRS && is_ipv6_ext(next); ++walked) {
    Reader h(l3.from(at));
    if (!h.need(8)) return w.malformed(fmt::format("extension header {} truncated", next));
    size_t len = 8;
    if (next == 0 || next == 43 || next == 60) {
      len = (h.u8(1) + 1u) * 8;
    } else if (next == 51) {
      len = (h.u8(1) + 2u) * 4;
    } else {  // 44, Fragment
      uint16_t frag_off = h.be16(2);
      uint32_t offset = frag_off >> 3;
      bool more = frag_off & 1;
      FragKey key{6, h.u8(0), h.be32(4), w.saddr, w.daddr};
      if (offset != 0) return decide_non_first_fragment(w, key, h.u8(0), offset);
      if (more) {
        w.note("first fragment, id 0x{:08x}", h.be32(4));
        w.record_under = key;
      } else {
        w.note("atomic fragment (not recorded)");
      }
    }
    if (!h.need(len)) return w.malformed(fmt::format("extension header {} truncated", next));
    w.note("extension header {} ({} bytes)", next, len);
    next = h.u8(0);
    at += len;
  }
  if (is_ipv6_ext(next)) {
    w.note("more than {} extension headers", XDPG_MAX_EXT_HDRS);
    return drop(DropReason::ExtHdrLimit);
  }
  return decide_transport(w, next, l3.from(at));
}

// Sections 2.2 / 3.2: a fragment that carries no transport header.
Decision ReferenceClassifier::decide_non_first_fragment(Walk& w, const FragKey& key,
                                                        uint8_t protocol, uint32_t offset) {
  // Non-first fragments never create or change entries, even when an earlier
  // Fragment header of the same packet claimed to be a first fragment.
  w.record_under.reset();
  w.note("non-first fragment, offset {} x 8 bytes", offset);
  if (protocol == kIpTcp && offset == 1)
    return w.malformed("TCP fragment at offset 1 (RFC 1858 overlap)");
  auto it = frags_.find(key);
  if (it == frags_.end()) {
    w.note("no first fragment seen for this datagram");
    return drop(DropReason::FragmentOrphan);
  }
  w.note("takes the first fragment's decision: {}", to_string(it->second));
  return it->second;
}

// Section 4. `l4` ends at the L3 end.
Decision ReferenceClassifier::decide_transport(Walk& w, uint8_t protocol,
                                               std::span<const uint8_t> l4) {
  Reader h(l4);
  if (protocol == kIpTcp) {
    if (!h.need(20)) return w.malformed("TCP header truncated");
    size_t header_len = (h.u8(12) >> 4) * 4u;
    if (header_len < 20) return w.malformed("TCP data offset < 5");
    if (!h.need(header_len)) return w.malformed("TCP options truncated");
    uint8_t flags = h.u8(13);
    w.l4 = Walk::L4::Tcp;
    w.sport = h.be16(0);
    w.dport = h.be16(2);
    if (w.ex) w.note("tcp {} -> {} flags {}", w.sport, w.dport, tcp_flag_letters(flags));
    if (bad_tcp_flags(flags)) {
      w.note("flag combination never sent by a correct stack");
      return drop(DropReason::BadTcpFlags);
    }
    w.syn_without_ack = (flags & kTcpSyn) && !(flags & kTcpAck);
    if (w.syn_without_ack) w.note("SYN without ACK: remote ports do not apply");
  } else if (protocol == kIpUdp) {
    if (!h.need(8)) return w.malformed("UDP header truncated");
    w.l4 = Walk::L4::Udp;
    w.sport = h.be16(0);
    w.dport = h.be16(2);
    w.note("udp {} -> {}", w.sport, w.dport);
  } else if (protocol == kIpIcmp && w.family == 4) {
    if (!h.need(8)) return w.malformed("ICMP header truncated");
    w.l4 = Walk::L4::Icmp;
    w.icmp_type = h.u8(0);
    w.note("icmp type {} code {}", w.icmp_type, h.u8(1));
  } else if (protocol == kIpIcmpv6 && w.family == 6) {
    if (!h.need(8)) return w.malformed("ICMPv6 header truncated");
    w.l4 = Walk::L4::Icmpv6;
    w.icmp_type = h.u8(0);
    w.note("icmpv6 type {} code {}", w.icmp_type, h.u8(1));
  } else {
    w.note("protocol {} over IPv{}: no rule kind covers it", protocol, w.family);
  }
  return choose_rule(w);
}

namespace {

bool any_contains(const std::vector<policy::PortRange>& ranges, uint16_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const policy::PortRange& r) { return r.contains(port); });
}

template <typename T>
bool has(const std::vector<T>& values, T v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

}  // namespace

// Section 5, by testing each rule directly (section 7 says what a rule covers).
Decision ReferenceClassifier::choose_rule(Walk& w) {
  using policy::Initiator;
  using policy::Protocol;

  auto port_match = [&](const policy::Rule& r) -> MatchKind {
    bool peers_open = r.initiator == Initiator::Remote || r.initiator == Initiator::Both;
    bool host_opens = r.initiator == Initiator::Local || r.initiator == Initiator::Both;
    auto by_ports = [&]() {
      if (peers_open && any_contains(r.local_ports, w.dport)) return MatchKind::LocalPort;
      if (host_opens && !w.syn_without_ack && any_contains(r.remote_ports, w.sport))
        return MatchKind::RemotePort;
      return MatchKind::None;
    };
    switch (r.protocol) {
      case Protocol::Tcp: return w.l4 == Walk::L4::Tcp ? by_ports() : MatchKind::None;
      case Protocol::Udp: return w.l4 == Walk::L4::Udp ? by_ports() : MatchKind::None;
      case Protocol::Icmp:
        return w.l4 == Walk::L4::Icmp && has(r.icmp_types, w.icmp_type) ? MatchKind::IcmpType
                                                                        : MatchKind::None;
      case Protocol::Icmpv6:
        return w.l4 == Walk::L4::Icmpv6 && has(r.icmp_types, w.icmp_type) ? MatchKind::Icmpv6Type
                                                                          : MatchKind::None;
      case Protocol::Ethertype:
        return w.family == 0 && has(r.ethertypes, w.ethertype) ? MatchKind::Ethertype
                                                               : MatchKind::None;
    }
    return MatchKind::None;
  };
  // Non-IP frames have no source address: ethertype rules admit any sender.
  // An IP rule without a peer set compiles into no LPM prefix, so admits none.
  auto peer_match = [&](const policy::RuleSet::Entry& e) {
    if (e.rule->protocol == Protocol::Ethertype) return true;
    return e.peers != nullptr && e.peers->contains(w.family, w.saddr.data());
  };

  std::optional<uint32_t> first_covering;
  MatchKind first_kind = MatchKind::None;
  for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
    const auto& entry = rules_.rules[i];
    MatchKind kind = port_match(*entry.rule);
    if (kind == MatchKind::None) continue;
    bool member = peer_match(entry);
    if (w.ex)
      w.note("rule {} '{}' covers it by {}; source {} its peer set{}", i, entry.rule->id,
             to_string(kind), member ? "is in" : "is not in",
             entry.peers ? " '" + entry.peers->name + "'" : std::string());
    if (!first_covering) {
      first_covering = i;
      first_kind = kind;
    }
    if (member) {
      if (w.ex) w.ex->kind = kind;
      return pass(i);
    }
  }
  if (first_covering) {
    if (w.ex) w.ex->kind = first_kind;
    return drop(DropReason::PeerNotInSet, first_covering);
  }
  w.note("no rule covers it");
  return drop(DropReason::NoRule);
}

}  // namespace xdpguard::classify
