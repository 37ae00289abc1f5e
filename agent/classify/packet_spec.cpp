#include "classify/packet_spec.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace xdpguard::classify {
namespace {

constexpr size_t kEthLen = 14, kVlanLen = 4, kIpv4Len = 20, kIpv6Len = 40;
constexpr size_t kAhLen = 24;  // (hdrlen 4 + 2) * 4: AH with a 12-byte ICV

uint8_t protocol_number(const PacketSpec& s) {
  switch (s.l4) {
    case PacketSpec::L4::Tcp: return 6;
    case PacketSpec::L4::Udp: return 17;
    case PacketSpec::L4::Icmp: return 1;
    case PacketSpec::L4::Icmpv6: return 58;
    case PacketSpec::L4::Other: return s.ip_protocol;
    case PacketSpec::L4::None: return 59;
  }
  return s.ip_protocol;
}

size_t ext_header_len(uint8_t nh) { return nh == 51 ? kAhLen : 8; }

bool is_non_first_fragment(const PacketSpec& s) {
  if (s.frag_offset == 0) return false;
  if (s.family == 4) return true;
  return std::find(s.ipv6_ext_headers.begin(), s.ipv6_ext_headers.end(), 44) !=
         s.ipv6_ext_headers.end();
}

size_t transport_header_len(const PacketSpec& s) {
  if (is_non_first_fragment(s)) return 0;
  switch (s.l4) {
    case PacketSpec::L4::Tcp: return 20;
    case PacketSpec::L4::Udp:
    case PacketSpec::L4::Icmp:
    case PacketSpec::L4::Icmpv6: return 8;
    case PacketSpec::L4::Other:
    case PacketSpec::L4::None: return 0;
  }
  return 0;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// RFC 1071 one's-complement sum, folded at the end.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

FrameLayout frame_layout(const PacketSpec& s) {
  FrameLayout l;
  l.l3 = kEthLen + kVlanLen * s.vlan_ids.size();
  if (s.family == 4) {
    l.l4 = l.l3 + kIpv4Len + s.ipv4_options_len;
  } else if (s.family == 6) {
    l.l4 = l.l3 + kIpv6Len;
    for (uint8_t nh : s.ipv6_ext_headers) l.l4 += ext_header_len(nh);
  } else {
    l.l4 = l.l3;
  }
  l.payload = l.l4 + (s.family == 0 ? 0 : transport_header_len(s));
  l.l3_end = l.payload + s.payload_len;
  l.size = l.l3_end + s.eth_padding;
  return l;
}

std::vector<uint8_t> build_frame(const PacketSpec& s) {
  std::vector<uint8_t> out;
  build_frame_into(s, out);
  return out;
}

void build_frame_into(const PacketSpec& s, std::vector<uint8_t>& out) {
  const FrameLayout l = frame_layout(s);
  out.assign(l.size, 0);
  uint8_t* f = out.data();

  // Ethernet: locally administered MACs, then the tags, then the type.
  static constexpr uint8_t kDstMac[6] = {0x02, 0, 0, 0, 0, 0x02};
  static constexpr uint8_t kSrcMac[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::copy_n(kDstMac, 6, f);
  std::copy_n(kSrcMac, 6, f + 6);
  size_t at = 12;
  for (uint16_t id : s.vlan_ids) {
    put16(f + at, 0x8100);
    put16(f + at + 2, id & 0x0FFF);
    at += kVlanLen;
  }
  uint16_t ethertype = s.family == 4 ? 0x0800 : s.family == 6 ? 0x86DD : s.ethertype;
  put16(f + at, ethertype);
  if (s.family == 0) return;  // payload bytes are zero

  const uint8_t protocol = protocol_number(s);
  const size_t l4_len = l.l3_end - l.l4;  // transport header + payload
  uint8_t* ip = f + l.l3;
  uint32_t pseudo = 0;  // pseudo-header sum for TCP/UDP/ICMPv6 checksums
  if (s.family == 4) {
    size_t ihl = (kIpv4Len + s.ipv4_options_len) / 4;
    ip[0] = static_cast<uint8_t>(0x40 | (ihl & 0x0F));
    put16(ip + 2, static_cast<uint16_t>(l.l3_end - l.l3));
    put16(ip + 4, static_cast<uint16_t>(s.frag_id));
    put16(ip + 6,
          static_cast<uint16_t>((s.dont_fragment ? 0x4000 : 0) | (s.more_fragments ? 0x2000 : 0) |
                                (s.frag_offset & 0x1FFF)));
    ip[8] = 64;
    ip[9] = protocol;
    std::copy_n(s.src.begin(), 4, ip + 12);
    std::copy_n(s.dst.begin(), 4, ip + 16);
    std::fill_n(ip + kIpv4Len, s.ipv4_options_len, uint8_t{1});  // NOP options
    put16(ip + 10, fold(sum16(ip, kIpv4Len + s.ipv4_options_len)));
    pseudo = sum16(ip + 12, 8) + protocol + static_cast<uint32_t>(l4_len);
  } else {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint16_t>(l.l3_end - l.l3 - kIpv6Len));
    ip[7] = 64;
    std::copy_n(s.src.begin(), 16, ip + 8);
    std::copy_n(s.dst.begin(), 16, ip + 24);
    uint8_t* next_field = ip + 6;  // where the following header's number goes
    size_t ext = l.l3 + kIpv6Len;
    for (uint8_t nh : s.ipv6_ext_headers) {
      *next_field = nh;
      uint8_t* h = f + ext;
      next_field = h;
      if (nh == 44) {
        put16(h + 2,
              static_cast<uint16_t>((s.frag_offset & 0x1FFF) << 3 | (s.more_fragments ? 1 : 0)));
        put32(h + 4, s.frag_id);
      } else if (nh == 51) {
        h[1] = kAhLen / 4 - 2;
      } else {
        h[1] = 0;                   // (0 + 1) * 8 bytes
        if (nh == 0 || nh == 60) {  // one PadN option filling the 6 bytes
          h[2] = 1;
          h[3] = 4;
        }
      }
      ext += ext_header_len(nh);
    }
    *next_field = protocol;
    pseudo = sum16(ip + 8, 32) + protocol + static_cast<uint32_t>(l4_len);
  }

  if (transport_header_len(s) == 0) return;
  uint8_t* t = f + l.l4;
  size_t csum_at = 0;
  bool with_pseudo = true;
  switch (s.l4) {
    case PacketSpec::L4::Tcp:
      put16(t, s.sport);
      put16(t + 2, s.dport);
      put32(t + 4, 1);                           // seq
      put32(t + 8, s.tcp_flags & 0x10 ? 1 : 0);  // ack
      t[12] = 5 << 4;
      t[13] = s.tcp_flags;
      put16(t + 14, 65535);
      csum_at = 16;
      break;
    case PacketSpec::L4::Udp:
      put16(t, s.sport);
      put16(t + 2, s.dport);
      put16(t + 4, static_cast<uint16_t>(l4_len));
      csum_at = 6;
      break;
    case PacketSpec::L4::Icmp:
    case PacketSpec::L4::Icmpv6:
      t[0] = s.icmp_type;
      t[1] = s.icmp_code;
      csum_at = 2;
      // ICMPv4 has no pseudo-header; ICMPv6 over IPv6 does.
      with_pseudo = s.l4 == PacketSpec::L4::Icmpv6 && s.family == 6;
      break;
    default: return;
  }
  uint16_t csum = fold(sum16(t, l4_len, with_pseudo ? pseudo : 0));
  if (s.l4 == PacketSpec::L4::Udp && csum == 0) csum = 0xFFFF;
  put16(t + csum_at, csum);
}

// ---- text form --------------------------------------------------------------

namespace {

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  return tokens;
}

// Decimal, or hexadecimal with 0x.
std::optional<uint32_t> parse_number(std::string_view t, uint32_t max) {
  int base = 10;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    base = 16;
    t.remove_prefix(2);
  }
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base);
  if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v > max) return std::nullopt;
  return v;
}

struct Endpoint {
  int family = 0;
  std::array<uint8_t, 16> addr{};
  std::optional<uint16_t> port;
};

// "192.0.2.7", "192.0.2.7:80", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80".
std::optional<Endpoint> parse_endpoint(std::string_view t) {
  Endpoint e;
  std::string_view host = t, port;
  if (!t.empty() && t[0] == '[') {
    size_t close = t.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = t.substr(1, close - 1);
    std::string_view rest = t.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':' || rest.size() == 1) return std::nullopt;
      port = rest.substr(1);
    }
  } else if (std::count(t.begin(), t.end(), ':') == 1) {
    size_t colon = t.find(':');
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  }
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), e.addr.data()) == 1) {
    e.family = 4;
  } else if (inet_pton(AF_INET6, h.c_str(), e.addr.data()) == 1) {
    e.family = 6;
  } else {
    return std::nullopt;
  }
  if (!port.empty()) {
    auto p = parse_number(port, 65535);
    if (!p) return std::nullopt;
    e.port = static_cast<uint16_t>(*p);
  }
  return e;
}

std::optional<uint8_t> parse_flags(std::string_view t) {
  if (t == "none") return uint8_t{0};
  uint8_t flags = 0;
  for (char c : t) {
    switch (std::toupper(static_cast<unsigned char>(c))) {
      case 'F': flags |= 0x01; break;
      case 'S': flags |= 0x02; break;
      case 'R': flags |= 0x04; break;
      case 'P': flags |= 0x08; break;
      case 'A': flags |= 0x10; break;
      case 'U': flags |= 0x20; break;
      default: return std::nullopt;
    }
  }
  return t.empty() ? std::nullopt : std::optional<uint8_t>(flags);
}

std::string quoted(std::string_view t) { return fmt::format("'{}'", t); }

}  // namespace

std::variant<PacketSpec, std::string> parse_packet_spec(std::string_view text) {
  const std::vector<std::string_view> tok = split(text);
  if (tok.empty()) return std::string("empty packet description");
  size_t i = 0;
  auto next = [&]() -> std::optional<std::string_view> {
    if (i < tok.size()) return tok[i++];
    return std::nullopt;
  };
  auto missing = [&](std::string_view what) {
    return fmt::format("missing {} after {}", what, quoted(tok[i - 1]));
  };

  PacketSpec s;
  std::string_view kind = tok[i++];
  if (kind == "arp" || kind == "ethertype") {
    s.family = 0;
    s.l4 = PacketSpec::L4::None;
    s.ip_protocol = 0;
    s.ethertype = 0x0806;
    if (kind == "ethertype") {
      auto t = next();
      if (!t) return missing("an ethertype");
      auto v = parse_number(*t, 0xFFFF);
      if (!v) return fmt::format("bad ethertype {}", quoted(*t));
      s.ethertype = static_cast<uint16_t>(*v);
    }
  } else {
    bool with_ports = kind == "tcp" || kind == "udp";
    if (kind == "tcp") {
      s.l4 = PacketSpec::L4::Tcp;
    } else if (kind == "udp") {
      s.l4 = PacketSpec::L4::Udp;
    } else if (kind == "icmp") {
      s.l4 = PacketSpec::L4::Icmp;
    } else if (kind == "icmpv6") {
      s.l4 = PacketSpec::L4::Icmpv6;
    } else if (kind == "proto") {
      s.l4 = PacketSpec::L4::Other;
      auto t = next();
      if (!t) return missing("a protocol number");
      auto v = parse_number(*t, 255);
      if (!v) return fmt::format("bad protocol number {}", quoted(*t));
      s.ip_protocol = static_cast<uint8_t>(*v);
    } else {
      return fmt::format("unknown packet kind {} (tcp, udp, icmp, icmpv6, proto, arp, ethertype)",
                         quoted(kind));
    }
    if (s.l4 != PacketSpec::L4::Other) s.ip_protocol = protocol_number(s);
    if (s.l4 == PacketSpec::L4::Icmp) s.icmp_type = 8;      // echo request
    if (s.l4 == PacketSpec::L4::Icmpv6) s.icmp_type = 128;  // echo request

    std::optional<Endpoint> ends[2];
    for (int side = 0; side < 2; ++side) {
      if (side == 1) {
        auto arrow = next();
        if (!arrow) return missing("'->'");
        if (*arrow != "->") return fmt::format("expected '->' instead of {}", quoted(*arrow));
      }
      auto t = next();
      if (!t) return missing(side == 0 ? "a source address" : "a destination address");
      ends[side] = parse_endpoint(*t);
      if (!ends[side]) return fmt::format("bad address {}", quoted(*t));
      if (with_ports && !ends[side]->port)
        return fmt::format("{} needs a port (ADDR:PORT, or [V6ADDR]:PORT)", quoted(*t));
      if (!with_ports && ends[side]->port)
        return fmt::format("{}: {} has no ports", quoted(*t), kind);
      if (side == 1 && ends[1]->family != ends[0]->family)
        return fmt::format("{} is not the same address family as {}", quoted(*t),
                           quoted(tok[i - 3]));
    }
    s.family = ends[0]->family;
    s.src = ends[0]->addr;
    s.dst = ends[1]->addr;
    s.sport = ends[0]->port.value_or(0);
    s.dport = ends[1]->port.value_or(0);
    if (s.l4 != PacketSpec::L4::Tcp) s.tcp_flags = 0;
  }

  bool is_icmp = s.l4 == PacketSpec::L4::Icmp || s.l4 == PacketSpec::L4::Icmpv6;
  while (i < tok.size()) {
    std::string_view word = tok[i++];
    if (word == "flags" && s.l4 == PacketSpec::L4::Tcp && s.family != 0) {
      auto t = next();
      if (!t) return missing("TCP flag letters (F S R P A U, or none)");
      auto f = parse_flags(*t);
      if (!f) return fmt::format("bad TCP flags {} (letters F S R P A U, or none)", quoted(*t));
      s.tcp_flags = *f;
    } else if ((word == "type" || word == "code") && is_icmp && s.family != 0) {
      auto t = next();
      if (!t) return missing("a number");
      auto v = parse_number(*t, 255);
      if (!v) return fmt::format("bad ICMP {} {}", word, quoted(*t));
      (word == "type" ? s.icmp_type : s.icmp_code) = static_cast<uint8_t>(*v);
    } else if (word == "vlan") {
      size_t before = s.vlan_ids.size();
      while (i < tok.size()) {
        auto v = parse_number(tok[i], 4095);
        if (!v) break;
        s.vlan_ids.push_back(static_cast<uint16_t>(*v));
        ++i;
      }
      if (s.vlan_ids.size() == before) {
        if (i < tok.size()) return fmt::format("bad VLAN id {} (0-4095)", quoted(tok[i]));
        return missing("a VLAN id");
      }
    } else if (word == "len") {
      auto t = next();
      if (!t) return missing("a payload length");
      auto v = parse_number(*t, 9000);
      if (!v) return fmt::format("bad payload length {} (0-9000)", quoted(*t));
      s.payload_len = *v;
    } else {
      return fmt::format("unexpected {}", quoted(word));
    }
  }
  return s;
}

std::string describe(const PacketSpec& s) {
  std::string out;
  auto addr = [&](const std::array<uint8_t, 16>& a, std::optional<uint16_t> port) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(s.family == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof buf);
    if (!port) return std::string(buf);
    return s.family == 6 ? fmt::format("[{}]:{}", buf, *port) : fmt::format("{}:{}", buf, *port);
  };
  if (s.family == 0) {
    out = s.ethertype == 0x0806 ? "arp" : fmt::format("ethertype 0x{:04x}", s.ethertype);
  } else {
    bool ports = s.l4 == PacketSpec::L4::Tcp || s.l4 == PacketSpec::L4::Udp;
    std::optional<uint16_t> sp, dp;
    if (ports) {
      sp = s.sport;
      dp = s.dport;
    }
    switch (s.l4) {
      case PacketSpec::L4::Tcp: out = "tcp"; break;
      case PacketSpec::L4::Udp: out = "udp"; break;
      case PacketSpec::L4::Icmp: out = "icmp"; break;
      case PacketSpec::L4::Icmpv6: out = "icmpv6"; break;
      case PacketSpec::L4::Other:
      case PacketSpec::L4::None: out = fmt::format("proto {}", protocol_number(s)); break;
    }
    out += fmt::format(" {} -> {}", addr(s.src, sp), addr(s.dst, dp));
    if (s.l4 == PacketSpec::L4::Tcp) {
      std::string letters;
      for (auto [bit, c] :
           {std::pair{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'}, {0x08, 'P'}, {0x10, 'A'}, {0x20, 'U'}})
        if (s.tcp_flags & bit) letters += c;
      out += " flags " + (letters.empty() ? std::string("none") : letters);
    }
    if (s.l4 == PacketSpec::L4::Icmp || s.l4 == PacketSpec::L4::Icmpv6) {
      out += fmt::format(" type {}", s.icmp_type);
      if (s.icmp_code) out += fmt::format(" code {}", s.icmp_code);
    }
  }
  if (!s.vlan_ids.empty()) {
    out += " vlan";
    for (uint16_t id : s.vlan_ids) out += fmt::format(" {}", id);
  }
  if (s.payload_len) out += fmt::format(" len {}", s.payload_len);
  return out;
}

}  // namespace xdpguard::classify
