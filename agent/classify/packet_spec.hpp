// Packets described by fields, built into Ethernet frames. Used by the unit
// and differential tests (build_frame, then byte-level mutations) and by
// `xdpguard explain --packet "tcp 192.0.2.7:51515 -> 198.51.100.10:443"`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace xdpguard::classify {

struct PacketSpec {
  // Other: `ip_protocol` with no transport header (payload bytes only).
  // None: IPv6/IPv4 "No Next Header" (59), no transport header.
  enum class L4 { Tcp, Udp, Icmp, Icmpv6, Other, None };

  int family = 4;                        // 4, 6, or 0 for non-IP (then `ethertype`)
  uint16_t ethertype = 0;                // non-IP frames only
  std::vector<uint16_t> vlan_ids;        // one 802.1Q (0x8100) tag each, outermost first
  std::array<uint8_t, 16> src{}, dst{};  // network order; IPv4 uses the first 4 bytes
  L4 l4 = L4::Tcp;
  uint8_t ip_protocol = 6;  // for L4::Other
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0x02;  // FIN 01 SYN 02 RST 04 PSH 08 ACK 10 URG 20
  uint8_t icmp_type = 0, icmp_code = 0;
  size_t payload_len = 0;  // bytes after the transport header
  size_t eth_padding = 0;  // bytes after the L3 end (not counted in tot_len)

  size_t ipv4_options_len = 0;  // multiple of 4, at most 40 (NOP-filled)
  // IPv6 extension headers in order, as next-header numbers: 0, 43, 60 (8 bytes
  // each), 51 (AH, 24 bytes), 44 (Fragment, from the fields below).
  std::vector<uint8_t> ipv6_ext_headers;

  // IPv4: always written into id / frag_off. IPv6: used by each 44 in
  // ipv6_ext_headers. A non-first fragment (frag_offset != 0) carries no
  // transport header: only payload_len bytes follow the IP headers.
  bool more_fragments = false;
  uint16_t frag_offset = 0;    // units of 8 bytes, 13 bits
  uint32_t frag_id = 0;        // IPv4 uses the low 16 bits
  bool dont_fragment = false;  // IPv4 DF

  bool operator==(const PacketSpec&) const = default;
};

// Where the headers of a built frame start, for tests that corrupt fields.
struct FrameLayout {
  size_t l3 = 0;       // IP header (or non-IP payload)
  size_t l4 = 0;       // transport header (== payload when there is none)
  size_t payload = 0;  // after the transport header
  size_t l3_end = 0;   // end of the IP packet; padding follows
  size_t size = 0;     // whole frame
};
FrameLayout frame_layout(const PacketSpec&);

std::vector<uint8_t> build_frame(const PacketSpec&);
// Same, reusing `out`'s storage (for generating many frames).
void build_frame_into(const PacketSpec&, std::vector<uint8_t>& out);

// The text form:
//   tcp 192.0.2.7:51515 -> 198.51.100.10:443 [flags SA]   (F S R P A U or "none"; default S)
//   udp [2001:db8::7]:5000 -> [2001:db8::1]:5060
//   icmp 192.0.2.7 -> 198.51.100.10 type 3 [code 4]
//   icmpv6 fe80::1 -> ff02::1 type 134
//   proto 50 192.0.2.7 -> 198.51.100.10
//   arp | ethertype 0x88cc
// followed by any of: vlan ID [ID...], len N (payload bytes).
// Returns the spec, or an error message naming the offending token.
std::variant<PacketSpec, std::string> parse_packet_spec(std::string_view text);
// Back to the text form (parse_packet_spec(describe(s)) == s for specs the text
// form can express).
std::string describe(const PacketSpec&);

}  // namespace xdpguard::classify
