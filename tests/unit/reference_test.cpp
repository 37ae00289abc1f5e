// The reference classifier against docs/datapath.md, section by section.
// - 1: VLAN 0..2 tags pass through, a third is malformed; non-IP frames by ethertype
// - 2: IPv4 header checks (version, IHL, tot_len both ways, options), fragments
// - 3: IPv6 header checks, extension header walk up to 6, IPv6 fragments
// - 4: TCP/UDP/ICMP/ICMPv6 truncation, bad TCP flags, SYN-without-ACK
// - 5: first match by port/type AND peer; peer_not_in_set attributed to the
//      first rule that covers the port; no_rule otherwise
// - every truncation of a valid frame is malformed
// - 5 (egress off): remote ports admit replies statelessly; a local-port hit
//   wins over a remote-port hit
// - 5, 8, 9 (egress track/enforce, FlowTest): egress opens flows (UDP, bare
//   SYN) under host-initiated rules and refreshes them; ingress admits replies
//   only to live flows and refreshes them; timeouts by protocol and TCP state
//   with the injected clock; a bare SYN resets a reused tuple; receive-only
//   ports send nothing; ICMP errors quoting live flows pass on the flow's rule;
//   fragments are per direction; track mode counts drops but sends
#include "classify/reference.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <ostream>
#include <random>

#include "classify/packet_spec.hpp"

namespace xdpguard {
void PrintTo(const Decision& d, std::ostream* os) { *os << to_string(d); }
}  // namespace xdpguard

namespace xdpguard::classify {
namespace {

using policy::Cidr;
using policy::Initiator;
using policy::PortRange;
using policy::Protocol;
using policy::Rule;
using L4 = PacketSpec::L4;

Cidr cidr(int family, const char* addr, uint8_t len) {
  Cidr c;
  c.family = family;
  inet_pton(family == 4 ? AF_INET : AF_INET6, addr, c.address.data());
  c.prefix_length = len;
  return c;
}

Decision Pass(uint32_t rule) { return {Verdict::Pass, rule, DropReason::None}; }
Decision Drop(DropReason r, std::optional<uint32_t> rule = std::nullopt) {
  return {Verdict::Drop, rule, r};
}
const Decision kMalformed = Drop(DropReason::Malformed);
const Decision kNoRule = Drop(DropReason::NoRule);
const Decision kOrphan = Drop(DropReason::FragmentOrphan);
const Decision kBadFlags = Drop(DropReason::BadTcpFlags);

// Rule indexes of the test policy.
enum : uint32_t {
  kSsh = 0,         // tcp local 22, mgmt
  kWebMgmt = 1,     // tcp local 443, mgmt
  kWebLab = 2,      // tcp local 443-444, lab
  kLdapClient = 3,  // tcp remote 636 (host opens), lab
  kDnsClient = 4,   // udp remote 53 (host opens), any
  kSnmp = 5,        // udp local 161, mgmt
  kEcho = 6,        // icmp 8, 0, any
  kNd = 7,          // icmpv6 133-136, any
  kArp = 8,         // ethertype 0x0806
  kSip = 9,         // tcp local 5060 and remote 5060 (both), lab
  kTrap = 10,       // udp local 162, receive-only, mgmt
  kSyslog = 11,     // udp local 514 (bidirectional), mgmt
};

class ReferenceTest : public ::testing::Test {
 protected:
  ReferenceTest() {
    add_set("mgmt", {cidr(4, "192.0.2.0", 24), cidr(6, "2001:db8:1::", 48)});
    add_set("lab", {cidr(4, "198.51.100.0", 24), cidr(6, "2001:db8:2::", 48)});
    add_set("any", {cidr(4, "0.0.0.0", 0), cidr(6, "::", 0)});

    add(ports("ssh", Protocol::Tcp, "mgmt", Initiator::Remote, {{22, 22}}, {}));
    add(ports("web-mgmt", Protocol::Tcp, "mgmt", Initiator::Remote, {{443, 443}}, {}));
    add(ports("web-lab", Protocol::Tcp, "lab", Initiator::Remote, {{443, 444}}, {}));
    add(ports("ldap-client", Protocol::Tcp, "lab", Initiator::Local, {}, {{636, 636}}));
    add(ports("dns-client", Protocol::Udp, "any", Initiator::Local, {}, {{53, 53}}));
    add(ports("snmp", Protocol::Udp, "mgmt", Initiator::Remote, {{161, 161}}, {}));
    Rule echo = named("echo", Protocol::Icmp, "any");
    echo.icmp_types = {8, 0};
    add(echo);
    Rule nd = named("nd", Protocol::Icmpv6, "any");
    nd.icmp_types = {133, 134, 135, 136};
    add(nd);
    Rule arp = named("arp", Protocol::Ethertype, "");
    arp.ethertypes = {0x0806};
    add(arp);
    add(ports("sip", Protocol::Tcp, "lab", Initiator::Both, {{5060, 5060}}, {{5060, 5060}}));
    Rule trap = ports("trap", Protocol::Udp, "mgmt", Initiator::Remote, {{162, 162}}, {});
    trap.flow = policy::Flow::ReceiveOnly;
    add(trap);
    add(ports("syslog", Protocol::Udp, "mgmt", Initiator::Remote, {{514, 514}}, {}));
    rules_.policy = &policy_;
  }

  static Rule named(std::string id, Protocol p, std::string peers) {
    Rule r;
    r.id = std::move(id);
    r.protocol = p;
    r.peers = std::move(peers);
    return r;
  }
  static Rule ports(std::string id, Protocol p, std::string peers, Initiator who,
                    std::vector<PortRange> local, std::vector<PortRange> remote) {
    Rule r = named(std::move(id), p, std::move(peers));
    r.initiator = who;
    r.local_ports = std::move(local);
    r.remote_ports = std::move(remote);
    return r;
  }
  void add_set(std::string name, std::vector<Cidr> cidrs) {
    policy::PeerSet s;
    s.name = std::move(name);
    s.cidrs = std::move(cidrs);
    policy_.peer_sets.push_back(std::move(s));
  }
  void add(Rule r) {
    policy_.rules.push_back(std::move(r));
    const Rule& stored = policy_.rules.back();
    const policy::PeerSet* peers =
        stored.protocol == Protocol::Ethertype ? nullptr : policy_.find_peer_set(stored.peers);
    ASSERT_TRUE(stored.protocol == Protocol::Ethertype || peers) << stored.peers;
    rules_.rules.push_back({&stored, peers});
  }

  static PacketSpec spec(std::string_view text) {
    auto parsed = parse_packet_spec(text);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      ADD_FAILURE() << "bad packet text '" << text << "': " << *err;
      return {};
    }
    return std::get<PacketSpec>(parsed);
  }
  Decision run(std::string_view text) { return run(spec(text)); }
  Decision run(const PacketSpec& s) { return run(build_frame(s)); }
  Decision run(const std::vector<uint8_t>& frame) { return classifier_.classify(frame); }

  policy::Policy policy_ = [] {
    policy::Policy p;
    p.peer_sets.reserve(16);  // RuleSet entries point into these vectors
    p.rules.reserve(16);
    return p;
  }();
  policy::RuleSet rules_;
  // Stateless replies, as before flow tracking: sections 1-5 without flows.
  static ReferenceOptions egress_off() {
    ReferenceOptions o;
    o.egress_mode = XDPG_EGRESS_OFF;
    return o;
  }
  ReferenceClassifier classifier_{rules_, egress_off()};
};

// ---- section 5: rule choice -------------------------------------------------

TEST_F(ReferenceTest, LocalPortFromPeerInSetPasses) {
  EXPECT_EQ(run("tcp 192.0.2.7:51515 -> 203.0.113.1:22 flags S"), Pass(kSsh));
  EXPECT_EQ(run("tcp [2001:db8:1::7]:51515 -> [2001:db8::1]:22 flags S"), Pass(kSsh));
  EXPECT_EQ(run("tcp 192.0.2.7:51515 -> 203.0.113.1:22 flags A len 100"), Pass(kSsh));
}

TEST_F(ReferenceTest, OutsidePeerSetIsAttributedToTheCoveringRule) {
  EXPECT_EQ(run("tcp 203.0.113.9:51515 -> 203.0.113.1:22 flags S"),
            Drop(DropReason::PeerNotInSet, kSsh));
  EXPECT_EQ(run("tcp [2001:db8:2::7]:51515 -> [2001:db8::1]:22"),
            Drop(DropReason::PeerNotInSet, kSsh));
  // The v4 half of a set does not admit v6 sources and vice versa.
  EXPECT_EQ(run("tcp [::ffff:192.0.2.7]:51515 -> [2001:db8::1]:22"),
            Drop(DropReason::PeerNotInSet, kSsh));
}

TEST_F(ReferenceTest, FirstMatchingRuleWinsAndFirstCoveringRuleIsBlamed) {
  EXPECT_EQ(run("tcp 192.0.2.7:1 -> 203.0.113.1:443"), Pass(kWebMgmt));
  EXPECT_EQ(run("tcp 198.51.100.7:1 -> 203.0.113.1:443"), Pass(kWebLab));
  EXPECT_EQ(run("tcp 203.0.113.9:1 -> 203.0.113.1:443"), Drop(DropReason::PeerNotInSet, kWebMgmt));
  EXPECT_EQ(run("tcp 192.0.2.7:1 -> 203.0.113.1:444"), Drop(DropReason::PeerNotInSet, kWebLab));
  EXPECT_EQ(run("tcp 198.51.100.7:1 -> 203.0.113.1:444"), Pass(kWebLab));
}

TEST_F(ReferenceTest, NoCoveringRuleIsNoRule) {
  EXPECT_EQ(run("tcp 192.0.2.7:1 -> 203.0.113.1:23"), kNoRule);
  EXPECT_EQ(run("udp 192.0.2.7:1 -> 203.0.113.1:22"), kNoRule);  // tcp rule, udp packet
  EXPECT_EQ(run("udp 192.0.2.7:1 -> 203.0.113.1:9999"), kNoRule);
  EXPECT_EQ(run("proto 50 192.0.2.7 -> 203.0.113.1 len 40"), kNoRule);  // ESP
  PacketSpec none = spec("proto 59 [2001:db8:1::7] -> [2001:db8::1] len 8");
  none.l4 = L4::None;
  EXPECT_EQ(run(none), kNoRule);
  none.payload_len = 0;  // payload_len 0 reads as a jumbogram
  EXPECT_EQ(run(none), kMalformed);
}

TEST_F(ReferenceTest, RemotePortsAdmitRepliesButNeverANewConnection) {
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags SA"), Pass(kLdapClient));
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags A"), Pass(kLdapClient));
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags FA"), Pass(kLdapClient));
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags R"), Pass(kLdapClient));
  EXPECT_EQ(run("tcp 192.0.2.7:636 -> 203.0.113.1:40000 flags SA"),
            Drop(DropReason::PeerNotInSet, kLdapClient));
  // SYN without ACK: the remote-port rule does not cover it at all (no_rule,
  // not peer_not_in_set), whoever sends it.
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags S"), kNoRule);
  EXPECT_EQ(run("tcp 203.0.113.9:636 -> 203.0.113.1:40000 flags S"), kNoRule);
  // ...but local ports still apply to it.
  EXPECT_EQ(run("tcp 192.0.2.7:636 -> 203.0.113.1:22 flags S"), Pass(kSsh));
  // A local-initiator rule does not open its remote port as a local port.
  EXPECT_EQ(run("tcp 198.51.100.7:40000 -> 203.0.113.1:636 flags S"), kNoRule);
}

TEST_F(ReferenceTest, InitiatorBothUsesBothPortLists) {
  EXPECT_EQ(run("tcp 198.51.100.7:40000 -> 203.0.113.1:5060 flags S"), Pass(kSip));
  EXPECT_EQ(run("tcp 198.51.100.7:5060 -> 203.0.113.1:40000 flags SA"), Pass(kSip));
  EXPECT_EQ(run("tcp 198.51.100.7:5060 -> 203.0.113.1:40000 flags S"), kNoRule);
  EXPECT_EQ(run("tcp 192.0.2.7:5060 -> 203.0.113.1:40000 flags A"),
            Drop(DropReason::PeerNotInSet, kSip));
}

TEST_F(ReferenceTest, LocalPortHitWinsOverRemotePortHit) {
  // Destination 5060 is sip's local port (rule 9), source 636 ldap-client's
  // remote port (rule 3): the lower index does not win, the local port does.
  EXPECT_EQ(run("tcp 198.51.100.7:636 -> 203.0.113.1:5060 flags A"), Pass(kSip));
  // Outside both sets: blame the lowest covering rule of either kind.
  EXPECT_EQ(run("tcp 192.0.2.7:636 -> 203.0.113.1:5060 flags A"),
            Drop(DropReason::PeerNotInSet, kLdapClient));
}

TEST_F(ReferenceTest, Udp) {
  EXPECT_EQ(run("udp 203.0.113.53:53 -> 203.0.113.1:40000"), Pass(kDnsClient));
  EXPECT_EQ(run("udp [2001:db8:9::53]:53 -> [2001:db8::1]:40000"), Pass(kDnsClient));
  EXPECT_EQ(run("udp 192.0.2.7:40000 -> 203.0.113.1:161 len 30"), Pass(kSnmp));
  EXPECT_EQ(run("udp 198.51.100.7:40000 -> 203.0.113.1:161"),
            Drop(DropReason::PeerNotInSet, kSnmp));
  // A local-initiator rule: its remote port is not a local port.
  EXPECT_EQ(run("udp 192.0.2.7:40000 -> 203.0.113.1:53"), kNoRule);
}

TEST_F(ReferenceTest, IcmpAndIcmpv6ByType) {
  EXPECT_EQ(run("icmp 203.0.113.9 -> 203.0.113.1 type 8"), Pass(kEcho));
  EXPECT_EQ(run("icmp 203.0.113.9 -> 203.0.113.1 type 0"), Pass(kEcho));
  EXPECT_EQ(run("icmp 203.0.113.9 -> 203.0.113.1 type 3 code 4"), kNoRule);
  EXPECT_EQ(run("icmpv6 fe80::1 -> ff02::1 type 134"), Pass(kNd));
  EXPECT_EQ(run("icmpv6 fe80::1 -> ff02::1 type 128"), kNoRule);
  // ICMP over IPv6 and ICMPv6 over IPv4 are "any other protocol".
  EXPECT_EQ(run("icmp fe80::1 -> ff02::1 type 8"), kNoRule);
  EXPECT_EQ(run("icmpv6 203.0.113.9 -> 203.0.113.1 type 134"), kNoRule);
  // ...and so are not checked for length either.
  PacketSpec bare = spec("proto 1 fe80::1 -> ff02::1 len 1");
  EXPECT_EQ(run(bare), kNoRule);
}

// ---- section 1: link layer --------------------------------------------------

TEST_F(ReferenceTest, NonIpFramesByEthertype) {
  EXPECT_EQ(run("arp"), Pass(kArp));
  EXPECT_EQ(run("arp vlan 7"), Pass(kArp));
  EXPECT_EQ(run("ethertype 0x88cc"), kNoRule);
  EXPECT_EQ(run("ethertype 0x0806 len 28"), Pass(kArp));
  // Only the 14-byte Ethernet header is needed.
  std::vector<uint8_t> frame = build_frame(spec("arp"));
  ASSERT_EQ(frame.size(), 14u);
  EXPECT_EQ(run(frame), Pass(kArp));
}

TEST_F(ReferenceTest, VlanTags) {
  const std::string tcp = "tcp 192.0.2.7:51515 -> 203.0.113.1:22";
  EXPECT_EQ(run(tcp), Pass(kSsh));
  EXPECT_EQ(run(tcp + " vlan 100"), Pass(kSsh));
  EXPECT_EQ(run(tcp + " vlan 100 200"), Pass(kSsh));
  EXPECT_EQ(run(tcp + " vlan 100 200 300"), kMalformed);
  EXPECT_EQ(run("arp vlan 1 2 3"), kMalformed);

  // 802.1ad outer tag counts the same.
  std::vector<uint8_t> qinq = build_frame(spec(tcp + " vlan 100 200"));
  qinq[12] = 0x88;
  qinq[13] = 0xA8;
  EXPECT_EQ(run(qinq), Pass(kSsh));
  qinq[16] = 0x88;  // inner type of the first tag: 0x8100 -> 0x88A8
  qinq[17] = 0xA8;
  EXPECT_EQ(run(qinq), Pass(kSsh));

  // A tag cut short.
  std::vector<uint8_t> cut = build_frame(spec("arp vlan 5"));
  for (size_t n = 14; n < 18; ++n)
    EXPECT_EQ(run(std::vector<uint8_t>(cut.begin(), cut.begin() + n)), kMalformed) << n;
}

// ---- section 2: IPv4 --------------------------------------------------------

TEST_F(ReferenceTest, Ipv4HeaderChecks) {
  const PacketSpec good = spec("tcp 192.0.2.7:51515 -> 203.0.113.1:22 len 20");
  const FrameLayout l = frame_layout(good);
  const std::vector<uint8_t> base = build_frame(good);
  ASSERT_EQ(run(base), Pass(kSsh));

  auto with = [&](size_t at, uint8_t value) {
    std::vector<uint8_t> f = base;
    f[at] = value;
    return run(f);
  };
  auto with_tot_len = [&](size_t tot_len) {
    std::vector<uint8_t> f = base;
    f[l.l3 + 2] = static_cast<uint8_t>(tot_len >> 8);
    f[l.l3 + 3] = static_cast<uint8_t>(tot_len);
    return run(f);
  };
  EXPECT_EQ(with(l.l3, 0x55), kMalformed);  // version 5
  EXPECT_EQ(with(l.l3, 0x65), kMalformed);  // version 6 in an IPv4 ethertype
  for (uint8_t ihl = 0; ihl < 5; ++ihl) EXPECT_EQ(with(l.l3, 0x40 | ihl), kMalformed) << +ihl;
  // IHL 15: 60 header bytes (present in the frame) leave no room for TCP.
  EXPECT_EQ(with(l.l3, 0x4F), kMalformed);

  const size_t real = l.l3_end - l.l3;  // 20 + 20 + 20
  EXPECT_EQ(with_tot_len(real), Pass(kSsh));
  EXPECT_EQ(with_tot_len(real + 1), kMalformed);  // longer than the frame
  EXPECT_EQ(with_tot_len(0xFFFF), kMalformed);
  EXPECT_EQ(with_tot_len(19), kMalformed);  // shorter than the header
  EXPECT_EQ(with_tot_len(0), kMalformed);
  EXPECT_EQ(with_tot_len(40), Pass(kSsh));  // the rest is padding
  EXPECT_EQ(with_tot_len(39), kMalformed);  // TCP header no longer fits
  EXPECT_EQ(with_tot_len(20), kMalformed);  // no TCP header at all
}

TEST_F(ReferenceTest, EthernetPaddingAfterTotLenIsIgnored) {
  PacketSpec s = spec("udp 192.0.2.7:1 -> 203.0.113.1:161");
  s.eth_padding = 18;  // a 42-byte UDP frame padded to the 60-byte minimum
  EXPECT_EQ(run(s), Pass(kSnmp));
}

TEST_F(ReferenceTest, Ipv4OptionsAreSkipped) {
  PacketSpec s = spec("tcp 192.0.2.7:51515 -> 203.0.113.1:22");
  for (size_t opt : {4u, 8u, 20u, 40u}) {
    s.ipv4_options_len = opt;
    EXPECT_EQ(run(s), Pass(kSsh)) << opt;
  }
  // Options running past the frame: need IHL*4 fails.
  s.ipv4_options_len = 40;
  s.l4 = L4::Other;
  s.ip_protocol = 6;
  std::vector<uint8_t> f = build_frame(s);
  f.resize(frame_layout(s).l3 + 59);
  EXPECT_EQ(run(f), kMalformed);
}

// Every proper prefix of a valid frame is malformed: tot_len (or payload_len)
// still claims the full length, so no truncation yields a shorter valid packet.
TEST_F(ReferenceTest, EveryTruncationIsMalformed) {
  for (const char* text :
       {"tcp 192.0.2.7:51515 -> 203.0.113.1:22",
        "tcp 192.0.2.7:51515 -> 203.0.113.1:22 vlan 4 len 7",
        "udp [2001:db8:1::7]:1 -> [2001:db8::1]:161 vlan 9",
        "icmp 203.0.113.9 -> 203.0.113.1 type 8 len 3", "icmpv6 fe80::1 -> ff02::1 type 135"}) {
    const std::vector<uint8_t> frame = build_frame(spec(text));
    ASSERT_NE(run(frame).verdict, Verdict::Drop) << text;
    for (size_t n = 0; n < frame.size(); ++n)
      EXPECT_EQ(run(std::vector<uint8_t>(frame.begin(), frame.begin() + n)), kMalformed)
          << text << " cut to " << n;
  }
}

TEST_F(ReferenceTest, TcpHeaderChecks) {
  const PacketSpec s = spec("tcp 192.0.2.7:51515 -> 203.0.113.1:22 len 40");
  const FrameLayout l = frame_layout(s);
  std::vector<uint8_t> f = build_frame(s);
  for (uint8_t doff = 0; doff < 5; ++doff) {
    f[l.l4 + 12] = static_cast<uint8_t>(doff << 4);
    EXPECT_EQ(run(f), kMalformed) << +doff;
  }
  f[l.l4 + 12] = 15 << 4;  // 60 bytes: 20 + 40 payload fits exactly
  EXPECT_EQ(run(f), Pass(kSsh));
  PacketSpec shorter = s;
  shorter.payload_len = 39;
  f = build_frame(shorter);
  f[l.l4 + 12] = 15 << 4;
  EXPECT_EQ(run(f), kMalformed);
}

// ---- section 4: TCP flags ---------------------------------------------------

TEST_F(ReferenceTest, BadTcpFlagCombinationsAreDroppedWithoutRule) {
  for (const char* flags : {"SF", "SR", "SRF", "none", "FPU", "FPUA", "FSRPAU"}) {
    EXPECT_EQ(run(std::string("tcp 192.0.2.7:1 -> 203.0.113.1:22 flags ") + flags), kBadFlags)
        << flags;
  }
  // ECE/CWR alone are "none of the six".
  PacketSpec ecn = spec("tcp 192.0.2.7:1 -> 203.0.113.1:22");
  ecn.tcp_flags = 0xC0;
  EXPECT_EQ(run(ecn), kBadFlags);
  ecn.tcp_flags = 0xC2;  // SYN with ECE+CWR: a normal ECN SYN
  EXPECT_EQ(run(ecn), Pass(kSsh));
  // Checked before rule choice: also where no rule would cover the packet.
  EXPECT_EQ(run("tcp 203.0.113.9:1 -> 203.0.113.1:9 flags SF"), kBadFlags);
  for (const char* flags : {"S", "SA", "A", "FA", "R", "RA", "PA", "FP", "PU", "FPA", "U"})
    EXPECT_EQ(run(std::string("tcp 192.0.2.7:1 -> 203.0.113.1:22 flags ") + flags), Pass(kSsh))
        << flags;
}

// ---- section 2.2: IPv4 fragments --------------------------------------------

class FragmentTest : public ReferenceTest {
 protected:
  static PacketSpec first(std::string_view text, uint32_t id) {
    PacketSpec s = spec(text);
    s.frag_id = id;
    s.more_fragments = true;
    return s;
  }
  static PacketSpec later(PacketSpec s, uint16_t offset, bool more = false) {
    s.frag_offset = offset;
    s.more_fragments = more;
    s.payload_len = 64;
    return s;
  }
};

TEST_F(FragmentTest, LaterFragmentsTakeTheFirstFragmentsDecision) {
  PacketSpec ok = first("tcp 192.0.2.7:51515 -> 203.0.113.1:22 len 40", 77);
  EXPECT_EQ(run(later(ok, 100)), kOrphan);  // out of order: before its first fragment
  EXPECT_EQ(classifier_.fragment_entries(), 0u);
  EXPECT_EQ(run(ok), Pass(kSsh));
  EXPECT_EQ(classifier_.fragment_entries(), 1u);
  EXPECT_EQ(run(later(ok, 100, true)), Pass(kSsh));
  EXPECT_EQ(run(later(ok, 200)), Pass(kSsh));     // last fragment
  EXPECT_EQ(run(later(ok, 0x1000)), Pass(kSsh));  // all 13 offset bits count
  EXPECT_EQ(classifier_.fragment_entries(), 1u);  // later fragments do not add entries

  PacketSpec refused = first("tcp 203.0.113.9:51515 -> 203.0.113.1:22 len 40", 78);
  EXPECT_EQ(run(refused), Drop(DropReason::PeerNotInSet, kSsh));
  EXPECT_EQ(run(later(refused, 5)), Drop(DropReason::PeerNotInSet, kSsh));

  // The key is {family, protocol, id, saddr, daddr}: change any part -> orphan.
  PacketSpec other_id = later(ok, 100);
  other_id.frag_id = 79;
  EXPECT_EQ(run(other_id), kOrphan);
  PacketSpec other_proto = later(ok, 100);
  other_proto.l4 = L4::Udp;
  EXPECT_EQ(run(other_proto), kOrphan);
  PacketSpec other_src = later(ok, 100);
  other_src.src[3] = 8;
  EXPECT_EQ(run(other_src), kOrphan);
  PacketSpec other_dst = later(ok, 100);
  other_dst.dst[3] = 2;
  EXPECT_EQ(run(other_dst), kOrphan);
  // Ports are not part of the key (later fragments have none).
  PacketSpec other_ports = later(ok, 100);
  other_ports.dport = 9;
  EXPECT_EQ(run(other_ports), Pass(kSsh));

  classifier_.reset_fragments();
  EXPECT_EQ(run(later(ok, 100)), kOrphan);
}

TEST_F(FragmentTest, FirstFragmentOverwritesAndRecordsDrops) {
  PacketSpec f = first("udp 192.0.2.7:1 -> 203.0.113.1:161 len 100", 5);
  EXPECT_EQ(run(f), Pass(kSnmp));
  PacketSpec again = f;
  again.dport = 9999;  // same datagram key, different decision
  EXPECT_EQ(run(again), kNoRule);
  EXPECT_EQ(run(later(f, 10)), kNoRule);

  // A first fragment too short for its transport header: malformed, recorded.
  PacketSpec tiny = first("proto 6 192.0.2.7 -> 203.0.113.1 len 8", 6);
  EXPECT_EQ(run(tiny), kMalformed);
  PacketSpec tiny_later = later(tiny, 3);
  EXPECT_EQ(run(tiny_later), kMalformed);

  // Bad flags in a first fragment: recorded too.
  PacketSpec bad = first("tcp 192.0.2.7:1 -> 203.0.113.1:22 flags SF len 8", 7);
  EXPECT_EQ(run(bad), kBadFlags);
  EXPECT_EQ(run(later(bad, 3)), kBadFlags);

  // Not a fragment (offset 0, no MF) records nothing.
  classifier_.reset_fragments();
  PacketSpec whole = f;
  whole.more_fragments = false;
  EXPECT_EQ(run(whole), Pass(kSnmp));
  EXPECT_EQ(classifier_.fragment_entries(), 0u);
  // DF does not matter.
  whole.dont_fragment = true;
  EXPECT_EQ(run(whole), Pass(kSnmp));
}

TEST_F(FragmentTest, TcpFragmentAtOffsetOneIsMalformed) {
  PacketSpec ok = first("tcp 192.0.2.7:51515 -> 203.0.113.1:22 len 40", 9);
  EXPECT_EQ(run(ok), Pass(kSsh));
  EXPECT_EQ(run(later(ok, 1)), kMalformed);  // even though the first fragment passed
  EXPECT_EQ(run(later(ok, 2)), Pass(kSsh));
  PacketSpec udp = first("udp 192.0.2.7:1 -> 203.0.113.1:161 len 40", 9);
  EXPECT_EQ(run(udp), Pass(kSnmp));
  EXPECT_EQ(run(later(udp, 1)), Pass(kSnmp));  // the rule is TCP-only
}

// ---- section 3: IPv6 --------------------------------------------------------

TEST_F(ReferenceTest, Ipv6HeaderChecks) {
  const PacketSpec s = spec("udp [2001:db8:1::7]:1 -> [2001:db8::1]:161 len 10");
  const FrameLayout l = frame_layout(s);
  const std::vector<uint8_t> base = build_frame(s);
  ASSERT_EQ(run(base), Pass(kSnmp));
  auto with_payload_len = [&](size_t n) {
    std::vector<uint8_t> f = base;
    f[l.l3 + 4] = static_cast<uint8_t>(n >> 8);
    f[l.l3 + 5] = static_cast<uint8_t>(n);
    return run(f);
  };
  EXPECT_EQ(with_payload_len(18), Pass(kSnmp));
  EXPECT_EQ(with_payload_len(8), Pass(kSnmp));  // payload shorter: padding ignored
  EXPECT_EQ(with_payload_len(7), kMalformed);   // UDP header no longer fits
  EXPECT_EQ(with_payload_len(19), kMalformed);  // longer than the frame
  EXPECT_EQ(with_payload_len(0), kMalformed);   // jumbogram
  std::vector<uint8_t> v4 = base;
  v4[l.l3] = 0x40;
  EXPECT_EQ(run(v4), kMalformed);
}

TEST_F(ReferenceTest, Ipv6ExtensionHeaderWalk) {
  PacketSpec s = spec("tcp [2001:db8:1::7]:51515 -> [2001:db8::1]:22");
  s.ipv6_ext_headers = {0};
  EXPECT_EQ(run(s), Pass(kSsh));
  s.ipv6_ext_headers = {0, 60, 43, 51, 60, 60};  // exactly the limit
  EXPECT_EQ(run(s), Pass(kSsh));
  s.ipv6_ext_headers = {0, 60, 43, 51, 60, 60, 60};  // one more
  EXPECT_EQ(run(s), Drop(DropReason::ExtHdrLimit));
  s.ipv6_ext_headers = {60, 60, 60, 60, 60, 60, 51};
  EXPECT_EQ(run(s), Drop(DropReason::ExtHdrLimit));
  // After six headers, a non-extension next header ends the walk normally.
  s.ipv6_ext_headers = {60, 60, 60, 60, 60, 60};
  s.l4 = L4::None;
  s.payload_len = 1;
  EXPECT_EQ(run(s), kNoRule);

  // Header lengths come from hdrlen: a Destination Options header claiming 16
  // bytes walks on into the UDP header, one claiming 32 runs past the L3 end.
  PacketSpec t = spec("udp [2001:db8:1::7]:1 -> [2001:db8::1]:161 len 8");
  t.ipv6_ext_headers = {60};
  FrameLayout l = frame_layout(t);
  std::vector<uint8_t> f = build_frame(t);
  f[l.l3 + 40 + 1] = 1;  // 16 bytes: the "UDP header" is now the zero payload
  EXPECT_EQ(run(f), kNoRule);
  f[l.l3 + 40 + 1] = 3;  // 32 bytes > 8 + 8 + 8
  EXPECT_EQ(run(f), kMalformed);
  t.ipv6_ext_headers = {51};
  f = build_frame(t);
  EXPECT_EQ(run(f), Pass(kSnmp));
  l = frame_layout(t);
  f[l.l3 + 40 + 1] = 9;  // (9 + 2) * 4 = 44 > 24 + 8
  EXPECT_EQ(run(f), kMalformed);
}

TEST_F(FragmentTest, Ipv6Fragments) {
  PacketSpec ok = first("tcp [2001:db8:1::7]:51515 -> [2001:db8::1]:22 len 40", 0xDEADBEEF);
  ok.ipv6_ext_headers = {44};
  EXPECT_EQ(run(later(ok, 100)), kOrphan);
  EXPECT_EQ(run(ok), Pass(kSsh));
  EXPECT_EQ(run(later(ok, 100, true)), Pass(kSsh));
  EXPECT_EQ(run(later(ok, 1)), kMalformed);  // TCP at offset 1
  PacketSpec other_id = later(ok, 100);
  other_id.frag_id = 0xDEADBEEE;
  EXPECT_EQ(run(other_id), kOrphan);

  // The key's protocol is the Fragment header's next header, here 60.
  PacketSpec behind = first("udp [2001:db8:1::7]:1 -> [2001:db8::1]:161", 12);
  behind.ipv6_ext_headers = {0, 44, 60};
  EXPECT_EQ(run(behind), Pass(kSnmp));
  PacketSpec rest = later(behind, 50);
  rest.ipv6_ext_headers = {44};
  rest.l4 = L4::Other;
  rest.ip_protocol = 60;
  EXPECT_EQ(run(rest), Pass(kSnmp));
  rest.ip_protocol = 17;
  EXPECT_EQ(run(rest), kOrphan);

  // Two Fragment headers: a later-fragment header makes the packet a later
  // fragment (looked up, nothing recorded) even after a first-fragment header.
  classifier_.reset_fragments();
  PacketSpec twice = first("udp [2001:db8:1::7]:1 -> [2001:db8::1]:161", 14);
  twice.ipv6_ext_headers = {44, 44};
  const FrameLayout tl = frame_layout(twice);
  std::vector<uint8_t> both_first = build_frame(twice);
  // Recorded under the last first-fragment header (nexthdr 17).
  EXPECT_EQ(run(both_first), Pass(kSnmp));
  EXPECT_EQ(classifier_.fragment_entries(), 1u);
  std::vector<uint8_t> then_later = both_first;
  then_later[tl.l3 + 48 + 3] = 5 << 3;  // second header: offset 5
  classifier_.reset_fragments();
  EXPECT_EQ(run(then_later), kOrphan);
  EXPECT_EQ(classifier_.fragment_entries(), 0u);
  EXPECT_EQ(run(both_first), Pass(kSnmp));
  EXPECT_EQ(run(then_later), Pass(kSnmp));  // same key: {6, 17, 14, saddr, daddr}

  // Atomic fragment: decided normally, not recorded.
  classifier_.reset_fragments();
  PacketSpec atomic = ok;
  atomic.more_fragments = false;
  EXPECT_EQ(run(atomic), Pass(kSsh));
  EXPECT_EQ(classifier_.fragment_entries(), 0u);

  // A first fragment whose chain is too long: ext_hdr_limit, recorded.
  PacketSpec long_chain = first("udp [2001:db8:1::7]:1 -> [2001:db8::1]:161", 13);
  long_chain.ipv6_ext_headers = {44, 60, 60, 60, 60, 60, 60};
  EXPECT_EQ(run(long_chain), Drop(DropReason::ExtHdrLimit));
  PacketSpec its_rest = later(long_chain, 20);
  its_rest.ipv6_ext_headers = {44};
  its_rest.l4 = L4::Other;
  its_rest.ip_protocol = 60;
  EXPECT_EQ(run(its_rest), Drop(DropReason::ExtHdrLimit));
}

TEST_F(ReferenceTest, ExplainNamesTheMatchAndTheSteps) {
  Explanation ex =
      classifier_.explain(build_frame(spec("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags SA")));
  EXPECT_EQ(ex.decision, Pass(kLdapClient));
  EXPECT_EQ(ex.kind, MatchKind::RemotePort);
  ASSERT_FALSE(ex.steps.empty());
  EXPECT_NE(ex.steps.back().find("ldap-client"), std::string::npos) << ex.steps.back();

  ex = classifier_.explain(build_frame(spec("tcp 203.0.113.9:1 -> 203.0.113.1:443")));
  EXPECT_EQ(ex.decision, Drop(DropReason::PeerNotInSet, kWebMgmt));
  EXPECT_EQ(ex.kind, MatchKind::LocalPort);

  ex = classifier_.explain(build_frame(spec("tcp 203.0.113.9:1 -> 203.0.113.1:9")));
  EXPECT_EQ(ex.decision, kNoRule);
  EXPECT_EQ(ex.kind, MatchKind::None);
  // explain and classify agree.
  for (const char* text : {"arp", "icmp 203.0.113.9 -> 203.0.113.1 type 8",
                           "tcp 192.0.2.7:1 -> 203.0.113.1:22 flags SF vlan 1 2 3"}) {
    std::vector<uint8_t> f = build_frame(spec(text));
    EXPECT_EQ(classifier_.explain(f).decision, classifier_.classify(f)) << text;
  }
}

// Corrupted and truncated frames: every read stays inside the frame (the
// Reader asserts; run under ASan too), and explain() decides as classify().
TEST_F(ReferenceTest, MutatedFramesDecideTheSameWithAndWithoutSteps) {
  ReferenceClassifier plain(rules_, egress_off());
  std::mt19937 rng(1234);
  const char* texts[] = {"tcp 192.0.2.7:51515 -> 203.0.113.1:22 flags S vlan 3 len 12",
                         "udp [2001:db8:1::7]:1 -> [2001:db8::1]:161 len 9",
                         "icmp 203.0.113.9 -> 203.0.113.1 type 8",
                         "icmpv6 fe80::1 -> ff02::1 type 135 vlan 1 2"};
  std::vector<uint8_t> frame;
  int verdicts[2] = {0, 0};
  for (int n = 0; n < 20000; ++n) {
    PacketSpec s = spec(texts[n % 4]);
    if (s.family == 6 && n % 3 == 0) s.ipv6_ext_headers = {0, 44, 60};
    if (s.family == 4 && n % 3 == 0) s.ipv4_options_len = 4;
    s.more_fragments = n % 5 == 0;
    s.frag_offset = n % 7 == 0 ? 1 + n % 3 : 0;
    s.frag_id = n % 11;
    build_frame_into(s, frame);
    for (int k = rng() % 4; k > 0; --k) frame[rng() % frame.size()] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) frame.resize(rng() % (frame.size() + 1));
    Decision d = plain.classify(frame);
    ASSERT_EQ(classifier_.explain(frame).decision, d) << n;
    ++verdicts[d.verdict == Verdict::Pass];
  }
  EXPECT_GT(verdicts[0], 1000);  // the mutations reach both outcomes
  EXPECT_GT(verdicts[1], 1000);
}

// ---- sections 5, 8, 9: flows ------------------------------------------------

class FlowTest : public ReferenceTest {
 protected:
  static constexpr uint64_t kSecond = 1'000'000'000ULL;
  FlowTest() { flows_.set_now(1000 * kSecond); }

  static ReferenceOptions mode(uint8_t m) {
    ReferenceOptions o;
    o.egress_mode = m;
    o.udp_timeout_ns = 60 * kSecond;
    o.tcp_established_timeout_ns = 3600 * kSecond;
    o.tcp_closing_timeout_ns = 30 * kSecond;
    return o;
  }
  Decision in(std::string_view text) { return flows_.classify(build_frame(spec(text))); }
  Decision in(const std::vector<uint8_t>& frame) { return flows_.classify(frame); }
  Decision out(std::string_view text) { return out(build_frame(spec(text))); }
  Decision out(const std::vector<uint8_t>& frame) {
    EgressDecision e = flows_.classify_egress(frame);
    EXPECT_TRUE(e.decision.has_value());
    if (!e.decision) return {};
    // Enforce: sent exactly when passed.
    EXPECT_EQ(e.sent, e.decision->verdict == Verdict::Pass);
    return *e.decision;
  }
  void advance(uint64_t ns) {
    now_ += ns;
    flows_.set_now(now_);
  }
  // An ICMP error from `router` whose body quotes the packet `quoted` (the host's own).
  static std::vector<uint8_t> icmp_error(std::string_view error, std::string_view quoted) {
    std::vector<uint8_t> inner = build_frame(spec(quoted));
    inner.erase(inner.begin(), inner.begin() + 14);  // the IP packet, without Ethernet
    PacketSpec e = spec(error);
    e.payload_len = inner.size();
    std::vector<uint8_t> frame = build_frame(e);
    std::copy(inner.begin(), inner.end(), frame.begin() + frame_layout(e).payload);
    return frame;
  }
  const FlowState* flow(std::string_view host_packet) {
    PacketSpec s = spec(host_packet);
    FlowKey k{static_cast<uint8_t>(s.family), s.l4 == L4::Tcp ? uint8_t{6} : uint8_t{17},
              s.sport, s.dport, s.src, s.dst};
    auto it = flows_.flows().find(k);
    return it == flows_.flows().end() ? nullptr : &it->second;
  }

  uint64_t now_ = 1000 * kSecond;
  ReferenceClassifier flows_{rules_, mode(XDPG_EGRESS_ENFORCE)};
};

TEST_F(FlowTest, RepliesNeedAFlowTheHostOpened) {
  const char* reply = "tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags SA";
  EXPECT_EQ(in(reply), Drop(DropReason::NoFlow, kLdapClient));
  EXPECT_EQ(out("tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S"), Pass(kLdapClient));
  EXPECT_EQ(flows_.flow_inserts(), 1u);
  ASSERT_NE(flow("tcp 203.0.113.1:40000 -> 198.51.100.7:636"), nullptr);
  EXPECT_EQ(flow("tcp 203.0.113.1:40000 -> 198.51.100.7:636")->flags, 0);
  advance(kSecond);
  EXPECT_EQ(in(reply), Pass(kLdapClient));
  const FlowState* f = flow("tcp 203.0.113.1:40000 -> 198.51.100.7:636");
  EXPECT_EQ(f->flags, XDPG_FLOW_REPLIED);
  EXPECT_EQ(f->last_seen_ns, now_);
  EXPECT_EQ(f->created_ns, now_ - kSecond);
  EXPECT_EQ(f->rule, kLdapClient);
  // Wrong port, wrong peer, other family: no flow.
  EXPECT_EQ(in("tcp 198.51.100.7:636 -> 203.0.113.1:40001 flags A"),
            Drop(DropReason::NoFlow, kLdapClient));
  EXPECT_EQ(in("tcp 198.51.100.8:636 -> 203.0.113.1:40000 flags A"),
            Drop(DropReason::NoFlow, kLdapClient));
  // A bare SYN from the remote port is no reply at all.
  EXPECT_EQ(in("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags S"), kNoRule);
  // Only a SYN opens a TCP flow; an ACK to an unknown tuple records nothing.
  EXPECT_EQ(out("tcp 203.0.113.1:40002 -> 198.51.100.7:636 flags A"), Pass(kLdapClient));
  EXPECT_EQ(flows_.flows().size(), 1u);
  // Outside the peer set: refused by policy, no flow looked at or made.
  EXPECT_EQ(out("tcp 203.0.113.1:40003 -> 192.0.2.7:636 flags S"),
            Drop(DropReason::PeerNotInSet, kLdapClient));
  EXPECT_EQ(in("tcp 192.0.2.7:636 -> 203.0.113.1:40003 flags SA"),
            Drop(DropReason::PeerNotInSet, kLdapClient));
  EXPECT_EQ(flows_.flow_inserts(), 1u);
}

TEST_F(FlowTest, UdpFlowsExpireAndAnyOutboundDatagramRevives) {
  EXPECT_EQ(out("udp 203.0.113.1:5353 -> 203.0.113.53:53"), Pass(kDnsClient));
  advance(59 * kSecond);
  EXPECT_EQ(in("udp 203.0.113.53:53 -> 203.0.113.1:5353"), Pass(kDnsClient));  // refreshes
  advance(59 * kSecond);
  EXPECT_EQ(in("udp 203.0.113.53:53 -> 203.0.113.1:5353"), Pass(kDnsClient));
  advance(60 * kSecond);
  EXPECT_EQ(in("udp 203.0.113.53:53 -> 203.0.113.1:5353"), Drop(DropReason::NoFlow, kDnsClient));
  EXPECT_EQ(flows_.flows().size(), 1u);  // expired, not deleted
  EXPECT_EQ(out("udp 203.0.113.1:5353 -> 203.0.113.53:53"), Pass(kDnsClient));
  EXPECT_EQ(flows_.flow_inserts(), 1u);  // the existing key is revived, not inserted
  EXPECT_EQ(in("udp 203.0.113.53:53 -> 203.0.113.1:5353"), Pass(kDnsClient));
  EXPECT_EQ(in("udp [2001:db8:9::53]:53 -> [2001:db8::1]:5353"),
            Drop(DropReason::NoFlow, kDnsClient));
}

TEST_F(FlowTest, TcpClosingTimeoutAfterFinOrRstAndReuseBySyn) {
  const char* syn = "tcp 203.0.113.1:40000 -> 198.51.100.7:5060 flags S";
  const char* reply = "tcp 198.51.100.7:5060 -> 203.0.113.1:40000 flags A";
  EXPECT_EQ(out(syn), Pass(kSip));
  advance(3000 * kSecond);
  EXPECT_EQ(in(reply), Pass(kSip));  // established: an hour
  EXPECT_EQ(in("tcp 198.51.100.7:5060 -> 203.0.113.1:40000 flags FA"), Pass(kSip));
  EXPECT_EQ(flow(syn)->tcp_state, XDPG_FLOW_FIN_REMOTE);
  advance(29 * kSecond);
  EXPECT_EQ(in(reply), Pass(kSip));
  advance(30 * kSecond);
  EXPECT_EQ(in(reply), Drop(DropReason::NoFlow, kSip));
  // The host's FIN (any outbound segment) revives it, still closing.
  EXPECT_EQ(out("tcp 203.0.113.1:40000 -> 198.51.100.7:5060 flags FA"), Pass(kSip));
  EXPECT_EQ(flow(syn)->tcp_state, XDPG_FLOW_FIN_REMOTE | XDPG_FLOW_FIN_LOCAL);
  EXPECT_EQ(in(reply), Pass(kSip));
  // A new connection on the same tuple starts over: established timeout again.
  advance(kSecond);
  EXPECT_EQ(out(syn), Pass(kSip));
  EXPECT_EQ(flow(syn)->tcp_state, 0);
  EXPECT_EQ(flow(syn)->flags, 0);
  EXPECT_EQ(flow(syn)->created_ns, now_);
  advance(100 * kSecond);
  EXPECT_EQ(in(reply), Pass(kSip));
  EXPECT_EQ(in("tcp 198.51.100.7:5060 -> 203.0.113.1:40000 flags R"), Pass(kSip));
  EXPECT_EQ(flow(syn)->tcp_state, XDPG_FLOW_RST);
  advance(30 * kSecond);
  EXPECT_EQ(in(reply), Drop(DropReason::NoFlow, kSip));
  EXPECT_EQ(flows_.flow_inserts(), 1u);
}

TEST_F(FlowTest, EgressFromLocalPortsAndReceiveOnly) {
  // Replies from served ports pass, stateless; a bare SYN from them does not.
  EXPECT_EQ(out("tcp 203.0.113.1:22 -> 192.0.2.7:51515 flags SA"), Pass(kSsh));
  EXPECT_EQ(out("tcp 203.0.113.1:22 -> 192.0.2.7:51515 flags S"), kNoRule);
  EXPECT_EQ(out("tcp 203.0.113.1:22 -> 198.51.100.7:51515 flags A"),
            Drop(DropReason::PeerNotInSet, kSsh));
  EXPECT_EQ(out("udp 203.0.113.1:514 -> 192.0.2.7:5000"), Pass(kSyslog));
  EXPECT_EQ(out("udp 203.0.113.1:162 -> 192.0.2.7:5000"), Drop(DropReason::ReceiveOnly, kTrap));
  EXPECT_EQ(out("udp 203.0.113.1:162 -> 198.51.100.7:5000"),
            Drop(DropReason::PeerNotInSet, kTrap));
  EXPECT_EQ(in("udp 192.0.2.7:5000 -> 203.0.113.1:162"), Pass(kTrap));
  // Undocumented remote port, and the remote-port hit winning over a local one.
  EXPECT_EQ(out("tcp 203.0.113.1:40000 -> 198.51.100.7:6667 flags S"), kNoRule);
  EXPECT_EQ(out("tcp 203.0.113.1:22 -> 198.51.100.7:5060 flags A"), Pass(kSip));
  EXPECT_EQ(flows_.flows().size(), 0u);  // not a SYN: nothing recorded
  EXPECT_EQ(out("proto 50 203.0.113.1 -> 198.51.100.7 len 40"), kNoRule);
  EXPECT_EQ(out("arp"), Pass(kArp));
  // Peer-initiated inbound traffic needs no flow, whatever the mode.
  EXPECT_EQ(in("tcp 192.0.2.7:51515 -> 203.0.113.1:22 flags A"), Pass(kSsh));
}

TEST_F(FlowTest, EgressIcmpByOutTypes) {
  EXPECT_EQ(out("icmp 203.0.113.1 -> 203.0.113.9 type 0"), Pass(kEcho));  // answers pings
  EXPECT_EQ(out("icmp 203.0.113.1 -> 203.0.113.9 type 8"), Pass(kEcho));  // pings
  EXPECT_EQ(out("icmp 203.0.113.1 -> 203.0.113.9 type 3"), kNoRule);
  EXPECT_EQ(out("icmpv6 2001:db8::1 -> fe80::1 type 135"), Pass(kNd));
  EXPECT_EQ(out("icmpv6 2001:db8::1 -> fe80::1 type 128"), kNoRule);
}

TEST_F(FlowTest, IcmpErrorsQuotingALiveFlowPassOnItsRule) {
  const char* quoted = "tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S";
  const char* error = "icmp 203.0.113.254 -> 203.0.113.1 type 3 code 4";
  EXPECT_EQ(in(icmp_error(error, quoted)), kNoRule);  // no flow yet
  EXPECT_EQ(out(quoted), Pass(kLdapClient));
  advance(kSecond);
  EXPECT_EQ(in(icmp_error(error, quoted)), Pass(kLdapClient));
  EXPECT_EQ(flow(quoted)->last_seen_ns, now_ - kSecond);  // not refreshed
  EXPECT_EQ(flow(quoted)->flags, 0);
  EXPECT_EQ(in(icmp_error("icmp 203.0.113.254 -> 203.0.113.1 type 11", quoted)),
            Pass(kLdapClient));
  // Not an error type, or quoting another packet: type rules only.
  EXPECT_EQ(in(icmp_error("icmp 203.0.113.254 -> 203.0.113.1 type 5", quoted)), kNoRule);
  EXPECT_EQ(in(icmp_error(error, "tcp 203.0.113.1:40001 -> 198.51.100.7:636 flags S")),
            kNoRule);
  EXPECT_EQ(in(icmp_error(error, "udp 203.0.113.1:40000 -> 198.51.100.7:636")), kNoRule);
  // An error whose quote is cut short does not match.
  std::vector<uint8_t> cut = icmp_error(error, quoted);
  PacketSpec e = spec(error);
  const size_t quote_start = frame_layout(e).payload;
  cut.resize(quote_start + 23);  // 20 + 3 bytes of ports
  cut[14 + 2] = 0;
  cut[14 + 3] = static_cast<uint8_t>(cut.size() - 14);  // tot_len follows the cut
  EXPECT_EQ(in(cut), kNoRule);
  // A type rule still wins: echo replies pass on echo.
  EXPECT_EQ(in(icmp_error("icmp 203.0.113.254 -> 203.0.113.1 type 0", quoted)), Pass(kEcho));
  // IPv6: "packet too big" for a DNS flow.
  EXPECT_EQ(out("udp [2001:db8::1]:5353 -> [2001:db8:9::53]:53"), Pass(kDnsClient));
  EXPECT_EQ(in(icmp_error("icmpv6 2001:db8:ff::1 -> 2001:db8::1 type 2",
                          "udp [2001:db8::1]:5353 -> [2001:db8:9::53]:53")),
            Pass(kDnsClient));
  // Once the flow expires, the error is no longer admitted.
  advance(61 * kSecond);
  EXPECT_EQ(in(icmp_error("icmpv6 2001:db8:ff::1 -> 2001:db8::1 type 2",
                          "udp [2001:db8::1]:5353 -> [2001:db8:9::53]:53")),
            kNoRule);
}

TEST_F(FlowTest, FragmentsAreRecordedPerDirection) {
  PacketSpec first = spec("udp 203.0.113.1:5353 -> 203.0.113.53:53 len 100");
  first.frag_id = 42;
  first.more_fragments = true;
  PacketSpec rest = first;
  rest.frag_offset = 20;
  rest.more_fragments = false;
  EXPECT_EQ(out(build_frame(rest)), kOrphan);
  EXPECT_EQ(out(build_frame(first)), Pass(kDnsClient));
  EXPECT_EQ(out(build_frame(rest)), Pass(kDnsClient));
  // The same datagram key arriving on ingress has no ingress record.
  EXPECT_EQ(in(build_frame(rest)), kOrphan);
  EXPECT_EQ(flows_.fragment_entries(), 1u);
}

TEST_F(FlowTest, FragmentRecordsExpire) {
  ReferenceOptions o = mode(XDPG_EGRESS_ENFORCE);
  o.frag_timeout_ns = 30 * kSecond;
  uint64_t t = 0;
  o.clock = [&t] { return t; };
  ReferenceClassifier c(rules_, o);
  PacketSpec first = spec("udp 192.0.2.7:1 -> 203.0.113.1:161 len 100");
  first.frag_id = 3;
  first.more_fragments = true;
  PacketSpec rest = first;
  rest.frag_offset = 20;
  rest.more_fragments = false;
  EXPECT_EQ(c.classify(build_frame(first)), Pass(kSnmp));
  t = 30 * kSecond - 1;
  EXPECT_EQ(c.classify(build_frame(rest)), Pass(kSnmp));
  t = 30 * kSecond;
  EXPECT_EQ(c.classify(build_frame(rest)), kOrphan);
}

TEST_F(FlowTest, TrackModeCountsDropsButSendsAndOffDecidesNothing) {
  ReferenceClassifier track(rules_, mode(XDPG_EGRESS_TRACK));
  EgressDecision e = track.classify_egress(
      build_frame(spec("tcp 203.0.113.1:40000 -> 198.51.100.7:6667 flags S")));
  ASSERT_TRUE(e.decision);
  EXPECT_EQ(*e.decision, kNoRule);
  EXPECT_TRUE(e.sent);
  e = track.classify_egress(build_frame(spec("tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S")));
  EXPECT_EQ(*e.decision, Pass(kLdapClient));
  EXPECT_EQ(track.flow_inserts(), 1u);
  // Ingress enforces flows in track mode too.
  EXPECT_EQ(track.classify(build_frame(spec("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags SA"))),
            Pass(kLdapClient));
  EXPECT_EQ(track.classify(build_frame(spec("tcp 198.51.100.7:636 -> 203.0.113.1:40009 flags SA"))),
            Drop(DropReason::NoFlow, kLdapClient));

  ReferenceClassifier off(rules_, egress_off());
  e = off.classify_egress(build_frame(spec("tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S")));
  EXPECT_FALSE(e.decision);
  EXPECT_TRUE(e.sent);
  EXPECT_EQ(off.flows().size(), 0u);
  // Off: ICMP errors are decided by type rules only.
  EXPECT_EQ(off.classify(icmp_error("icmp 203.0.113.254 -> 203.0.113.1 type 3",
                                    "tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S")),
            kNoRule);
}

TEST_F(FlowTest, ExplainTellsAboutFlows) {
  Explanation ex =
      flows_.explain(build_frame(spec("tcp 198.51.100.7:636 -> 203.0.113.1:40000 flags SA")));
  EXPECT_EQ(ex.decision, Drop(DropReason::NoFlow, kLdapClient));
  EXPECT_EQ(ex.kind, MatchKind::RemotePort);
  ASSERT_FALSE(ex.steps.empty());
  EXPECT_NE(ex.steps.back().find("no tracked flow"), std::string::npos) << ex.steps.back();
  out("tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S");
  ex = flows_.explain(icmp_error("icmp 203.0.113.254 -> 203.0.113.1 type 3",
                                 "tcp 203.0.113.1:40000 -> 198.51.100.7:636 flags S"));
  EXPECT_EQ(ex.decision, Pass(kLdapClient));
  EXPECT_EQ(ex.kind, MatchKind::QuotedFlow);
}

}  // namespace
}  // namespace xdpguard::classify
