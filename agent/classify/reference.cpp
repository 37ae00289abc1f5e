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

constexpr uint8_t kIngress = 0, kEgress = 1;  // xdpg_frag_key.direction

// ICMP errors that quote the offending packet (section 5.2).
bool icmp_is_error(int family, uint8_t type) {
  if (family == 6) return type >= 1 && type <= 4;
  return type == 3 || type == 11 || type == 12;
}

// Section 9.3: what a rule admitting inbound type `t` lets the host send.
std::vector<uint8_t> icmp_out_types(int family, uint8_t t) {
  if (family == 4) {
    if (t == 8) return {0};
    if (t == 0) return {8};
    if (t == 13) return {14};
    if (t == 14) return {13};
    return {t};
  }
  if (t == 128) return {129};
  if (t == 129) return {128};
  if (t == 130) return {131, 132, 143};
  return {t};
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
    case MatchKind::QuotedFlow: return "icmp error quoting a tracked flow";
  }
  return "?";
}

// What the walk learned about one packet, and what to record at the exit.
struct ReferenceClassifier::Walk {
  enum class L4 { Other, Tcp, Udp, Icmp, Icmpv6 };

  Explanation* ex = nullptr;  // null: no steps are written
  uint8_t direction = kIngress;
  uint64_t now = 0;           // read once per packet
  int family = 0;             // 4, 6, or 0 for a non-IP frame
  uint16_t ethertype = 0;
  std::array<uint8_t, 16> saddr{}, daddr{};
  L4 l4 = L4::Other;
  std::span<const uint8_t> l4_bytes;  // transport header to the L3 end (ICMP quotes)
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  bool bare_syn = false;                // SYN without ACK: a new TCP connection
  bool host_opened = false;             // egress: passed on a rule's remote port
  std::optional<FragKey> record_under;  // set for a first fragment

  template <typename... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    if (ex) ex->steps.push_back(fmt::format(f, std::forward<Args>(args)...));
  }
  Decision malformed(std::string_view why) {
    note("malformed: {}", why);
    return drop(DropReason::Malformed);
  }
  uint8_t protocol() const { return l4 == L4::Tcp ? kIpTcp : kIpUdp; }
};

ReferenceClassifier::ReferenceClassifier(const policy::RuleSet& rules, ReferenceOptions options)
    : rules_(rules), options_(std::move(options)) {}

Decision ReferenceClassifier::classify(std::span<const uint8_t> frame) {
  return decide(frame, kIngress, nullptr);
}

Explanation ReferenceClassifier::explain(std::span<const uint8_t> frame) {
  Explanation ex;
  ex.decision = decide(frame, kIngress, &ex);
  return ex;
}

EgressDecision ReferenceClassifier::classify_egress(std::span<const uint8_t> frame) {
  if (options_.egress_mode == XDPG_EGRESS_OFF) return {};  // TC_ACT_OK at once, nothing counted
  Decision d = decide(frame, kEgress, nullptr);
  bool sent = d.verdict == Verdict::Pass || options_.egress_mode != XDPG_EGRESS_ENFORCE;
  return {d, sent};
}

bool ReferenceClassifier::live(const FlowKey& key, const FlowState& flow, uint64_t now) const {
  uint64_t timeout = key.protocol == kIpUdp ? options_.udp_timeout_ns
                     : flow.tcp_state      ? options_.tcp_closing_timeout_ns
                                           : options_.tcp_established_timeout_ns;
  return now < flow.last_seen_ns || now - flow.last_seen_ns < timeout;
}

// Section 1, and the single exit where a first fragment's decision is recorded.
Decision ReferenceClassifier::decide(std::span<const uint8_t> frame, uint8_t direction,
                                     Explanation* ex) {
  Walk w;
  w.ex = ex;
  w.direction = direction;
  w.now = options_.clock ? options_.clock() : now_;
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
    return choose_ethertype(w);
  }();

  if (w.record_under) {
    frags_[*w.record_under] = {d, w.now};
    w.note("first fragment: decision recorded for the later fragments");
  }
  last_ = PacketFacts{w.family, w.saddr, w.daddr, w.l4 == Walk::L4::Tcp, w.tcp_flags,
                      w.host_opened};
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

  FragKey key{4, protocol, w.direction, id, w.saddr, w.daddr};
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
      FragKey key{6, h.u8(0), w.direction, h.be32(4), w.saddr, w.daddr};
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
  if (w.now - it->second.seen_ns >= options_.frag_timeout_ns) {
    w.note("the first fragment's decision has expired");
    return drop(DropReason::FragmentOrphan);
  }
  w.note("takes the first fragment's decision: {}", to_string(it->second.decision));
  return it->second.decision;
}

// Section 4. `l4` ends at the L3 end.
Decision ReferenceClassifier::decide_transport(Walk& w, uint8_t protocol,
                                               std::span<const uint8_t> l4) {
  Reader h(l4);
  w.l4_bytes = l4;
  if (protocol == kIpTcp) {
    if (!h.need(20)) return w.malformed("TCP header truncated");
    size_t header_len = (h.u8(12) >> 4) * 4u;
    if (header_len < 20) return w.malformed("TCP data offset < 5");
    if (!h.need(header_len)) return w.malformed("TCP options truncated");
    uint8_t flags = h.u8(13);
    w.l4 = Walk::L4::Tcp;
    w.sport = h.be16(0);
    w.dport = h.be16(2);
    w.tcp_flags = flags;
    if (w.ex) w.note("tcp {} -> {} flags {}", w.sport, w.dport, tcp_flag_letters(flags));
    if (bad_tcp_flags(flags)) {
      w.note("flag combination never sent by a correct stack");
      return drop(DropReason::BadTcpFlags);
    }
    w.bare_syn = (flags & kTcpSyn) && !(flags & kTcpAck);
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
    return drop(DropReason::NoRule);
  }
  return w.direction == kEgress ? choose_egress(w) : choose_ingress(w);
}

namespace {

using policy::Initiator;
using policy::Protocol;

bool any_contains(const std::vector<policy::PortRange>& ranges, uint16_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const policy::PortRange& r) { return r.contains(port); });
}

template <typename T>
bool has(const std::vector<T>& values, T v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// Section 7: which port list of a rule is in force.
bool peers_open(const policy::Rule& r) {
  return r.initiator == Initiator::Remote || r.initiator == Initiator::Both;
}
bool host_opens(const policy::Rule& r) {
  return r.initiator == Initiator::Local || r.initiator == Initiator::Both;
}

// An IP rule without a peer set compiles into no LPM prefix, so admits none.
bool in_peer_set(const policy::RuleSet::Entry& e, int family, const std::array<uint8_t, 16>& a) {
  return e.peers != nullptr && e.peers->contains(family, a.data());
}

std::string set_name(const policy::RuleSet::Entry& e) {
  return e.peers ? " '" + e.peers->name + "'" : std::string();
}

// The first rule index with a property, as lowest_bit() of a mask.
struct First {
  std::optional<uint32_t> index;
  void offer(uint32_t i) {
    if (!index) index = i;
  }
};

}  // namespace

// Sections 1.3 and 9.4: non-IP frames have no address, ethertype rules admit
// any sender, the same way in both directions.
Decision ReferenceClassifier::choose_ethertype(Walk& w) {
  for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
    const policy::Rule& r = *rules_.rules[i].rule;
    if (r.protocol == Protocol::Ethertype && has(r.ethertypes, w.ethertype)) {
      w.note("rule {} '{}' admits ethertype 0x{:04x}", i, r.id, w.ethertype);
      if (w.ex) w.ex->kind = MatchKind::Ethertype;
      return pass(i);
    }
  }
  w.note("no rule covers it");
  return drop(DropReason::NoRule);
}

// Section 5, by testing each rule directly.
Decision ReferenceClassifier::choose_ingress(Walk& w) {
  if (w.l4 == Walk::L4::Icmp || w.l4 == Walk::L4::Icmpv6) return ingress_icmp(w);
  const Protocol proto = w.l4 == Walk::L4::Tcp ? Protocol::Tcp : Protocol::Udp;
  if (w.bare_syn) w.note("SYN without ACK: remote ports do not apply (a reply never opens)");

  First covering, local_hit, remote_hit;
  MatchKind covering_kind = MatchKind::None;
  for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
    const auto& entry = rules_.rules[i];
    const policy::Rule& r = *entry.rule;
    if (r.protocol != proto) continue;
    bool local = peers_open(r) && any_contains(r.local_ports, w.dport);
    bool remote = host_opens(r) && !w.bare_syn && any_contains(r.remote_ports, w.sport);
    if (!local && !remote) continue;
    bool member = in_peer_set(entry, w.family, w.saddr);
    if (w.ex)
      w.note("rule {} '{}' covers it by {}; source {} its peer set{}", i, r.id,
             local && remote ? "local and remote port" : local ? "local port" : "remote port",
             member ? "is in" : "is not in", set_name(entry));
    if (!covering.index) covering_kind = local ? MatchKind::LocalPort : MatchKind::RemotePort;
    covering.offer(i);
    if (member && local) local_hit.offer(i);
    if (member && remote) remote_hit.offer(i);
  }
  if (!covering.index) {
    w.note("no rule covers it");
    return drop(DropReason::NoRule);
  }
  // A local-port hit wins: peer-initiated flows are stateless.
  if (local_hit.index) {
    w.note("passes on rule {} '{}' (local port, stateless)", *local_hit.index,
           rules_.rules[*local_hit.index].rule->id);
    if (w.ex) w.ex->kind = MatchKind::LocalPort;
    return pass(*local_hit.index);
  }
  if (remote_hit.index) {
    uint32_t rule = *remote_hit.index;
    if (w.ex) w.ex->kind = MatchKind::RemotePort;
    if (options_.egress_mode == XDPG_EGRESS_OFF) {
      w.note("egress off: passes on rule {} '{}' without a flow", rule,
             rules_.rules[rule].rule->id);
      return pass(rule);
    }
    FlowKey key{static_cast<uint8_t>(w.family), w.protocol(), w.dport, w.sport, w.daddr, w.saddr};
    auto it = flows_.find(key);
    if (it == flows_.end() || !live(key, it->second, w.now)) {
      w.note("a reply from a remote port, but the host has no {} flow {}:{} -> {}:{}",
             it == flows_.end() ? "tracked" : "live", addr_text(w.family, w.daddr), w.dport,
             addr_text(w.family, w.saddr), w.sport);
      return drop(DropReason::NoFlow, rule);
    }
    FlowState& f = it->second;
    f.last_seen_ns = std::max(f.last_seen_ns, w.now);  // never backwards (8.2)
    f.flags |= XDPG_FLOW_REPLIED;
    if (w.l4 == Walk::L4::Tcp) {
      if (w.tcp_flags & kTcpFin) f.tcp_state |= XDPG_FLOW_FIN_REMOTE;
      if (w.tcp_flags & kTcpRst) f.tcp_state |= XDPG_FLOW_RST;
    }
    w.note("a reply to a live flow the host opened: passes on rule {} '{}', flow refreshed",
           rule, rules_.rules[rule].rule->id);
    return pass(rule);
  }
  if (w.ex) w.ex->kind = covering_kind;
  return drop(DropReason::PeerNotInSet, covering.index);
}

// Section 5.2.
Decision ReferenceClassifier::ingress_icmp(Walk& w) {
  const bool v6 = w.l4 == Walk::L4::Icmpv6;
  const Protocol proto = v6 ? Protocol::Icmpv6 : Protocol::Icmp;
  First covering;
  for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
    const auto& entry = rules_.rules[i];
    if (entry.rule->protocol != proto || !has(entry.rule->icmp_types, w.icmp_type)) continue;
    bool member = in_peer_set(entry, w.family, w.saddr);
    if (w.ex)
      w.note("rule {} '{}' covers type {}; source {} its peer set{}", i, entry.rule->id,
             w.icmp_type, member ? "is in" : "is not in", set_name(entry));
    covering.offer(i);
    if (member) {
      if (w.ex) w.ex->kind = v6 ? MatchKind::Icmpv6Type : MatchKind::IcmpType;
      return pass(i);
    }
  }

  if (options_.egress_mode != XDPG_EGRESS_OFF && icmp_is_error(w.family, w.icmp_type)) {
    // The quoted packet is the host's own, 8 bytes into the message.
    Reader q(w.l4_bytes.size() >= 8 ? w.l4_bytes.subspan(8) : std::span<const uint8_t>{});
    std::optional<FlowKey> key;
    if (!v6 && q.need(20) && q.u8(0) >> 4 == 4) {
      size_t ihl = (q.u8(0) & 0x0F) * 4u;
      uint8_t p = q.u8(9);
      if (ihl >= 20 && (q.be16(6) & 0x1FFF) == 0 && (p == kIpTcp || p == kIpUdp) &&
          q.need(ihl + 4))
        key = FlowKey{4, p, q.be16(ihl), q.be16(ihl + 2), q.addr<4>(12), q.addr<4>(16)};
    } else if (v6 && q.need(44) && q.u8(0) >> 4 == 6) {
      uint8_t p = q.u8(6);
      if (p == kIpTcp || p == kIpUdp)
        key = FlowKey{6, p, q.be16(40), q.be16(42), q.addr<16>(8), q.addr<16>(24)};
    }
    if (!key) {
      w.note("an error, but it quotes no TCP/UDP packet of the host");
    } else if (auto it = flows_.find(*key); it != flows_.end() && live(*key, it->second, w.now)) {
      w.note("an error quoting the live flow {}:{} -> {}:{}, opened under rule {}",
             addr_text(w.family, key->local_addr), key->local_port,
             addr_text(w.family, key->remote_addr), key->remote_port, it->second.rule);
      if (w.ex) w.ex->kind = MatchKind::QuotedFlow;
      return pass(it->second.rule);  // not refreshed
    } else {
      w.note("an error quoting a packet of no live flow");
    }
  }
  if (!covering.index) {
    w.note("no rule covers it");
    return drop(DropReason::NoRule);
  }
  if (w.ex) w.ex->kind = v6 ? MatchKind::Icmpv6Type : MatchKind::IcmpType;
  return drop(DropReason::PeerNotInSet, covering.index);
}

// Section 9, by testing each rule directly; `members` is on the destination.
Decision ReferenceClassifier::choose_egress(Walk& w) {
  if (w.l4 == Walk::L4::Icmp || w.l4 == Walk::L4::Icmpv6) {
    const bool v6 = w.l4 == Walk::L4::Icmpv6;
    const Protocol proto = v6 ? Protocol::Icmpv6 : Protocol::Icmp;
    First covering;
    for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
      const auto& entry = rules_.rules[i];
      if (entry.rule->protocol != proto) continue;
      bool sends = std::any_of(
          entry.rule->icmp_types.begin(), entry.rule->icmp_types.end(),
          [&](uint8_t t) { return has(icmp_out_types(w.family, t), w.icmp_type); });
      if (!sends) continue;
      bool member = in_peer_set(entry, w.family, w.daddr);
      if (w.ex)
        w.note("rule {} '{}' lets the host send type {}; destination {} its peer set{}", i,
               entry.rule->id, w.icmp_type, member ? "is in" : "is not in", set_name(entry));
      covering.offer(i);
      if (member) return pass(i);
    }
    if (!covering.index) {
      w.note("no rule lets the host send it");
      return drop(DropReason::NoRule);
    }
    return drop(DropReason::PeerNotInSet, covering.index);
  }

  const Protocol proto = w.l4 == Walk::L4::Tcp ? Protocol::Tcp : Protocol::Udp;
  if (w.bare_syn) w.note("SYN without ACK: local ports do not apply (a server port never opens)");
  First covering, remote_hit, local_hit, local_open;
  for (uint32_t i = 0; i < rules_.rules.size(); ++i) {
    const auto& entry = rules_.rules[i];
    const policy::Rule& r = *entry.rule;
    if (r.protocol != proto) continue;
    bool remote = host_opens(r) && any_contains(r.remote_ports, w.dport);
    bool local = peers_open(r) && !w.bare_syn && any_contains(r.local_ports, w.sport);
    if (!local && !remote) continue;
    bool member = in_peer_set(entry, w.family, w.daddr);
    if (w.ex)
      w.note("rule {} '{}' covers it by {}; destination {} its peer set{}", i, r.id,
             local && remote ? "local and remote port" : local ? "local port" : "remote port",
             member ? "is in" : "is not in", set_name(entry));
    covering.offer(i);
    if (member && remote) remote_hit.offer(i);
    if (member && local) {
      local_hit.offer(i);
      if (r.flow != policy::Flow::ReceiveOnly) local_open.offer(i);
    }
  }
  if (!covering.index) {
    w.note("no rule covers it");
    return drop(DropReason::NoRule);
  }
  if (remote_hit.index) {
    w.note("a flow the host opens: passes on rule {}", *remote_hit.index);
    flow_outbound(w, *remote_hit.index);
    w.host_opened = true;
    return pass(*remote_hit.index);
  }
  if (local_open.index) {
    w.note("a reply from a port the host serves: passes on rule {}", *local_open.index);
    return pass(*local_open.index);
  }
  if (local_hit.index) {
    w.note("every rule serving this port is receive-only");
    return drop(DropReason::ReceiveOnly, local_hit.index);
  }
  return drop(DropReason::PeerNotInSet, covering.index);
}

// Section 9.2.
void ReferenceClassifier::flow_outbound(const Walk& w, uint32_t rule) {
  FlowKey key{static_cast<uint8_t>(w.family), w.protocol(), w.sport, w.dport, w.saddr, w.daddr};
  const bool tcp = w.l4 == Walk::L4::Tcp;
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (tcp && !w.bare_syn) return;  // only a SYN opens a TCP flow
    flows_[key] = FlowState{w.now, w.now, rule, 0, 0};
    ++flow_inserts_;
    return;
  }
  FlowState& f = it->second;
  if (tcp && w.bare_syn) f = FlowState{f.last_seen_ns, w.now, rule, 0, 0};  // reused tuple
  f.last_seen_ns = std::max(f.last_seen_ns, w.now);
  if (tcp) {
    if (w.tcp_flags & kTcpFin) f.tcp_state |= XDPG_FLOW_FIN_LOCAL;
    if (w.tcp_flags & kTcpRst) f.tcp_state |= XDPG_FLOW_RST;
  }
}

}  // namespace xdpguard::classify
