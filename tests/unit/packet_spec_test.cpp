// The packet text form and the frame builder.
// - every documented text form parses to the intended fields and round-trips
//   through describe()
// - bad tokens are rejected with a message that names the token
// - build_frame puts each field at its wire offset, with valid checksums
#include "classify/packet_spec.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace xdpguard::classify {
namespace {

using L4 = PacketSpec::L4;

PacketSpec parse_ok(std::string_view text) {
  auto r = parse_packet_spec(text);
  if (auto* err = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << "'" << text << "': " << *err;
    return {};
  }
  return std::get<PacketSpec>(r);
}

std::string parse_error(std::string_view text) {
  auto r = parse_packet_spec(text);
  if (auto* err = std::get_if<std::string>(&r)) return *err;
  ADD_FAILURE() << "'" << text << "' parsed, expected an error";
  return {};
}

std::array<uint8_t, 16> addr(const char* text) {
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET, text, a.data()) != 1) {
    EXPECT_EQ(inet_pton(AF_INET6, text, a.data()), 1) << text;
  }
  return a;
}

uint16_t be16(const std::vector<uint8_t>& f, size_t at) {
  return static_cast<uint16_t>(f[at] << 8 | f[at + 1]);
}

// One's-complement sum over bytes, for checking checksums (0xFFFF = valid).
uint32_t sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
  return s;
}
uint16_t folded(uint32_t s) {
  while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  return static_cast<uint16_t>(s);
}

TEST(PacketSpecText, TcpIpv4) {
  PacketSpec s = parse_ok("tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags S");
  EXPECT_EQ(s.family, 4);
  EXPECT_EQ(s.l4, L4::Tcp);
  EXPECT_EQ(s.src, addr("192.0.2.7"));
  EXPECT_EQ(s.dst, addr("198.51.100.10"));
  EXPECT_EQ(s.sport, 51515);
  EXPECT_EQ(s.dport, 443);
  EXPECT_EQ(s.tcp_flags, 0x02);
  EXPECT_EQ(parse_ok("tcp 192.0.2.7:1 -> 198.51.100.10:2").tcp_flags, 0x02);  // default S
  EXPECT_EQ(parse_ok("tcp 192.0.2.7:1 -> 198.51.100.10:2 flags AS").tcp_flags, 0x12);
  EXPECT_EQ(parse_ok("tcp 192.0.2.7:1 -> 198.51.100.10:2 flags ufrpas").tcp_flags, 0x3F);
  EXPECT_EQ(parse_ok("tcp 192.0.2.7:1 -> 198.51.100.10:2 flags none").tcp_flags, 0);
}

TEST(PacketSpecText, UdpIpv6WithBrackets) {
  PacketSpec s = parse_ok("udp [2001:db8::7]:5000 -> [2001:db8::1]:5060");
  EXPECT_EQ(s.family, 6);
  EXPECT_EQ(s.l4, L4::Udp);
  EXPECT_EQ(s.src, addr("2001:db8::7"));
  EXPECT_EQ(s.dst, addr("2001:db8::1"));
  EXPECT_EQ(s.sport, 5000);
  EXPECT_EQ(s.dport, 5060);
}

TEST(PacketSpecText, IcmpAndIcmpv6) {
  PacketSpec s = parse_ok("icmp 192.0.2.7 -> 198.51.100.10 type 3 code 4");
  EXPECT_EQ(s.l4, L4::Icmp);
  EXPECT_EQ(s.family, 4);
  EXPECT_EQ(s.icmp_type, 3);
  EXPECT_EQ(s.icmp_code, 4);
  s = parse_ok("icmpv6 fe80::1 -> ff02::1 type 134");
  EXPECT_EQ(s.l4, L4::Icmpv6);
  EXPECT_EQ(s.family, 6);
  EXPECT_EQ(s.icmp_type, 134);
  EXPECT_EQ(s.icmp_code, 0);
  EXPECT_EQ(parse_ok("icmpv6 [fe80::1] -> [ff02::1] type 134"), s);
  EXPECT_EQ(parse_ok("icmp 192.0.2.7 -> 198.51.100.10").icmp_type, 8);  // echo request
}

TEST(PacketSpecText, NonIpAndSuffixes) {
  PacketSpec arp = parse_ok("arp");
  EXPECT_EQ(arp.family, 0);
  EXPECT_EQ(arp.ethertype, 0x0806);
  PacketSpec lldp = parse_ok("ethertype 0x88cc vlan 100 200 len 46");
  EXPECT_EQ(lldp.family, 0);
  EXPECT_EQ(lldp.ethertype, 0x88CC);
  EXPECT_EQ(lldp.vlan_ids, (std::vector<uint16_t>{100, 200}));
  EXPECT_EQ(lldp.payload_len, 46u);
  PacketSpec tagged = parse_ok("udp 192.0.2.7:1 -> 198.51.100.10:2 len 1200 vlan 1 2 3 4");
  EXPECT_EQ(tagged.vlan_ids.size(), 4u);
  EXPECT_EQ(tagged.payload_len, 1200u);
  PacketSpec esp = parse_ok("proto 50 192.0.2.7 -> 198.51.100.10");
  EXPECT_EQ(esp.l4, L4::Other);
  EXPECT_EQ(esp.ip_protocol, 50);
}

TEST(PacketSpecText, RoundTripsThroughDescribe) {
  for (const char* text : {
           "tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags S",
           "tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags FSRPAU",
           "tcp 192.0.2.7:1 -> 198.51.100.10:2 flags none",
           "tcp [2001:db8::7]:1 -> [2001:db8::1]:22 flags SA vlan 10 len 5",
           "udp [2001:db8::7]:5000 -> [2001:db8::1]:5060",
           "udp 192.0.2.7:0 -> 198.51.100.10:65535 vlan 100 200 len 1200",
           "icmp 192.0.2.7 -> 198.51.100.10 type 3 code 4",
           "icmpv6 fe80::1 -> ff02::1 type 134",
           "proto 50 192.0.2.7 -> 198.51.100.10 len 40",
           "arp",
           "arp vlan 7",
           "ethertype 0x88cc",
       }) {
    PacketSpec s = parse_ok(text);
    EXPECT_EQ(describe(s), text);
    EXPECT_EQ(parse_ok(describe(s)), s) << text;
  }
  // Non-canonical spellings describe canonically.
  EXPECT_EQ(describe(parse_ok("  tcp   192.0.2.7:1 ->   198.51.100.10:2 flags AS ")),
            "tcp 192.0.2.7:1 -> 198.51.100.10:2 flags SA");
  EXPECT_EQ(describe(parse_ok("ethertype 2054")), "arp");
  EXPECT_EQ(describe(parse_ok("icmp 192.0.2.7 -> 198.51.100.10 type 0x0b")),
            "icmp 192.0.2.7 -> 198.51.100.10 type 11");
}

TEST(PacketSpecText, ErrorsNameTheToken) {
  struct Case {
    const char* text;
    const char* token;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "empty"},
           {"sctp 192.0.2.7:1 -> 198.51.100.10:2", "'sctp'"},
           {"tcp 192.0.2.777:1 -> 198.51.100.10:2", "'192.0.2.777:1'"},
           {"tcp 192.0.2.7 -> 198.51.100.10:2", "'192.0.2.7'"},
           {"tcp 192.0.2.7:1 => 198.51.100.10:2", "'=>'"},
           {"tcp 192.0.2.7:1 -> 198.51.100.10:65536", "'198.51.100.10:65536'"},
           {"tcp 192.0.2.7:1 -> [2001:db8::1]:2", "'[2001:db8::1]:2'"},
           {"tcp 192.0.2.7:1 -> 198.51.100.10:2 flags SX", "'SX'"},
           {"tcp 192.0.2.7:1 -> 198.51.100.10:2 flags", "'flags'"},
           {"tcp 192.0.2.7:1 -> 198.51.100.10:2 type 3", "'type'"},
           {"tcp 192.0.2.7:1 -> 198.51.100.10:2 bogus", "'bogus'"},
           {"tcp 192.0.2.7:1 ->", "'->'"},
           {"udp [2001:db8::7:5000 -> [2001:db8::1]:5060", "'[2001:db8::7:5000'"},
           {"icmp 192.0.2.7:5 -> 198.51.100.10", "'192.0.2.7:5'"},
           {"icmp 192.0.2.7 -> 198.51.100.10 type 256", "'256'"},
           {"icmpv6 fe80::1 -> ff02::1 code x", "'x'"},
           {"udp 192.0.2.7:1 -> 198.51.100.10:2 flags S", "'flags'"},
           {"arp vlan 4096", "'4096'"},
           {"arp vlan", "'vlan'"},
           {"arp len -1", "'-1'"},
           {"ethertype 0x1ffff", "'0x1ffff'"},
           {"ethertype", "'ethertype'"},
           {"proto tcp 192.0.2.7 -> 198.51.100.10", "'tcp'"},
       }) {
    std::string err = parse_error(c.text);
    EXPECT_NE(err.find(c.token), std::string::npos) << c.text << " -> " << err;
  }
}

TEST(BuildFrame, Ipv4TcpLayout) {
  PacketSpec s = parse_ok("tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags SA vlan 100 len 10");
  s.frag_id = 0x1234;
  std::vector<uint8_t> f = build_frame(s);
  FrameLayout l = frame_layout(s);
  EXPECT_EQ(l.l3, 18u);
  EXPECT_EQ(l.l4, 38u);
  EXPECT_EQ(l.payload, 58u);
  EXPECT_EQ(l.l3_end, 68u);
  ASSERT_EQ(f.size(), 68u);
  EXPECT_EQ(be16(f, 12), 0x8100);
  EXPECT_EQ(be16(f, 14), 100);
  EXPECT_EQ(be16(f, 16), 0x0800);
  EXPECT_EQ(f[18], 0x45);
  EXPECT_EQ(be16(f, 18 + 2), 50);  // tot_len
  EXPECT_EQ(be16(f, 18 + 4), 0x1234);
  EXPECT_EQ(be16(f, 18 + 6), 0);
  EXPECT_EQ(f[18 + 9], 6);
  EXPECT_EQ(std::vector<uint8_t>(f.begin() + 30, f.begin() + 34),
            (std::vector<uint8_t>{192, 0, 2, 7}));
  EXPECT_EQ(std::vector<uint8_t>(f.begin() + 34, f.begin() + 38),
            (std::vector<uint8_t>{198, 51, 100, 10}));
  EXPECT_EQ(folded(sum(&f[18], 20)), 0xFFFF);  // IPv4 header checksum
  EXPECT_EQ(be16(f, 38), 51515);
  EXPECT_EQ(be16(f, 40), 443);
  EXPECT_EQ(f[38 + 12], 0x50);
  EXPECT_EQ(f[38 + 13], 0x12);
  // TCP checksum over the pseudo-header and the segment.
  uint32_t pseudo = sum(&f[30], 8) + 6 + 30;
  EXPECT_EQ(folded(sum(&f[38], 30, pseudo)), 0xFFFF);
}

TEST(BuildFrame, Ipv4OptionsAndFragments) {
  PacketSpec s = parse_ok("udp 192.0.2.7:1 -> 198.51.100.10:2 len 16");
  s.ipv4_options_len = 8;
  s.more_fragments = true;
  s.dont_fragment = false;
  std::vector<uint8_t> f = build_frame(s);
  EXPECT_EQ(f[14], 0x47);
  EXPECT_EQ(be16(f, 14 + 6), 0x2000);
  EXPECT_EQ(folded(sum(&f[14], 28)), 0xFFFF);
  EXPECT_EQ(be16(f, 14 + 28 + 4), 24);  // UDP length

  s.frag_offset = 185;
  s.more_fragments = false;
  f = build_frame(s);
  EXPECT_EQ(be16(f, 14 + 6), 185);
  // A non-first fragment has no transport header: 28 + payload.
  EXPECT_EQ(be16(f, 14 + 2), 28 + 16);
  EXPECT_EQ(f.size(), 14u + 28 + 16);
}

TEST(BuildFrame, Ipv6ExtensionHeadersAndFragment) {
  PacketSpec s = parse_ok("icmpv6 fe80::1 -> ff02::1 type 135");
  s.ipv6_ext_headers = {0, 51, 44};
  s.frag_id = 0xA1B2C3D4;
  s.more_fragments = true;
  std::vector<uint8_t> f = build_frame(s);
  FrameLayout l = frame_layout(s);
  EXPECT_EQ(l.l4, 14u + 40 + 8 + 24 + 8);
  ASSERT_EQ(f.size(), l.l4 + 8);
  EXPECT_EQ(be16(f, 12), 0x86DD);
  EXPECT_EQ(f[14] >> 4, 6);
  EXPECT_EQ(be16(f, 14 + 4), 8 + 24 + 8 + 8);  // payload_len
  EXPECT_EQ(f[14 + 6], 0);                     // IPv6 next header: Hop-by-Hop
  EXPECT_EQ(f[54], 51);                        // HbH -> AH
  EXPECT_EQ(f[55], 0);
  EXPECT_EQ(f[62], 44);       // AH -> Fragment
  EXPECT_EQ(f[63], 4);        // (4 + 2) * 4 = 24
  EXPECT_EQ(f[86], 58);       // Fragment -> ICMPv6
  EXPECT_EQ(be16(f, 88), 1);  // offset 0, M
  EXPECT_EQ(be16(f, 90), 0xA1B2);
  EXPECT_EQ(be16(f, 92), 0xC3D4);
  EXPECT_EQ(f[94], 135);

  s.frag_offset = 3;
  s.more_fragments = false;
  s.payload_len = 16;
  f = build_frame(s);
  EXPECT_EQ(be16(f, 88), 3 << 3);
  EXPECT_EQ(f.size(), 94u + 16);  // no ICMPv6 header in a later fragment
}

TEST(BuildFrame, Icmpv6ChecksumUsesPseudoHeader) {
  PacketSpec s = parse_ok("icmpv6 fe80::1 -> ff02::1 type 128 len 12");
  std::vector<uint8_t> f = build_frame(s);
  uint32_t pseudo = sum(&f[22], 32) + 58 + 20;
  EXPECT_EQ(folded(sum(&f[54], 20, pseudo)), 0xFFFF);
}

TEST(BuildFrame, NonIpAndPadding) {
  std::vector<uint8_t> f = build_frame(parse_ok("ethertype 0x88cc vlan 5 len 20"));
  ASSERT_EQ(f.size(), 14u + 4 + 20);
  EXPECT_EQ(be16(f, 12), 0x8100);
  EXPECT_EQ(be16(f, 14), 5);
  EXPECT_EQ(be16(f, 16), 0x88CC);

  PacketSpec s = parse_ok("udp 192.0.2.7:1 -> 198.51.100.10:2");
  s.eth_padding = 18;
  f = build_frame(s);
  EXPECT_EQ(f.size(), 60u);
  EXPECT_EQ(be16(f, 16), 28);  // tot_len excludes the padding
}

TEST(BuildFrame, IntoReusesTheBuffer) {
  std::vector<uint8_t> buf;
  build_frame_into(parse_ok("tcp 192.0.2.7:1 -> 198.51.100.10:2 len 1000"), buf);
  EXPECT_EQ(buf.size(), 14u + 20 + 20 + 1000);
  const uint8_t* storage = buf.data();
  PacketSpec small = parse_ok("udp 192.0.2.7:1 -> 198.51.100.10:2");
  build_frame_into(small, buf);
  EXPECT_EQ(buf, build_frame(small));
  EXPECT_EQ(buf.data(), storage);
}

}  // namespace
}  // namespace xdpguard::classify
