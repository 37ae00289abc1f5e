// A corpus of hostile and malformed frames through the real XDP program and
// the reference classifier, generated here from classify::build_frame plus
// byte edits (no files, no python).
//
// Expected behaviour, for every frame of the corpus:
// - BPF_PROG_TEST_RUN returns XDP_PASS exactly when the reference passes it;
// - after every batch each rule's and each drop reason's packet and byte
//   counters equal the sums of the reference's decisions (the right counter);
// - frames whose defect the contract names get that drop reason (IHL < 5,
//   TCP data offset < 5, lying lengths, truncation inside a header, more than
//   6 IPv6 extension headers, TCP fragments at offset 1, orphans, bad flags);
// - an independent check (a small parser written for this test, reading the
//   policy's rules directly) finds, for every passed frame, a rule of the
//   policy whose protocol, port or type and peer set admit the frame as that
//   parser reads it: nothing passes that the policy does not permit; and it
//   refuses every dropped frame (it is a third implementation, not a bound).
// Run twice: the default policy with open peer sets and egress off (replies
// admitted statelessly), and with every peer set narrowed and egress
// enforced, after the host opened two flows through the TC egress program.
// The corpus: every truncation of a set of base frames (raw, and with the IP
// length fields rewritten to match), every byte of their headers set to every
// other value, IHL 0..15, lying IPv4/IPv6 lengths, TCP
// data offsets 0..15, IPv6 extension-header chains up to 10 long (repeated
// headers, oversized lengths), overlapping, tiny and orphan fragments, all
// 256 TCP flag bytes on an allowed port and on a reply port, zero ports, and
// ICMP/ICMPv6 errors quoting garbage and quoting a real flow.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <tuple>
#include <variant>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {

using classify::PacketSpec;
using testing::Addr;
using testing::hex;

constexpr size_t kMinFrame = 14;  // BPF_PROG_TEST_RUN refuses shorter XDP input
constexpr size_t kBatch = 200;

// Ports of the default policy the corpus aims at.
constexpr uint16_t kTcpLocal = 443;    // nbif-clients-https & co: peers connect here
constexpr uint16_t kUdpLocal = 162;    // SNMP traps
constexpr uint16_t kTcpRemote = 389;   // ldap-389: the host connects to peers' 389
constexpr uint16_t kUdpRemote = 161;   // device-snmp-161: the host polls devices
constexpr uint16_t kTcpHostPort = 40000;  // the host's ports of the flows it opens
constexpr uint16_t kUdpHostPort = 40001;

Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Addr{a, b, c, d}; }
Addr v6(uint8_t first, uint8_t second, uint8_t last) {
  Addr a{};
  a[0] = first;
  a[1] = second;
  a[15] = last;
  return a;
}
Addr host(int family) { return family == 4 ? v4(192, 0, 2, 1) : v6(0x20, 0x01, 1); }
// Inside the narrowed peer sets (10.1.0.0/16, fd01::/16) and outside them.
Addr peer_in(int family) { return family == 4 ? v4(10, 1, 0, 7) : v6(0xfd, 0x01, 7); }
Addr peer_out(int family) { return family == 4 ? v4(10, 2, 0, 7) : v6(0xfd, 0x02, 7); }

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

struct Entry {
  std::string what;
  std::vector<uint8_t> frame;
  std::optional<DropReason> expect;  // the reason the contract names, if any
};

// ---- the corpus ---------------------------------------------------------------

class Corpus {
 public:
  std::vector<Entry> entries;

  void add(std::string what, std::vector<uint8_t> f, std::optional<DropReason> expect = {}) {
    if (f.size() < kMinFrame) return;
    entries.push_back({std::move(what), std::move(f), expect});
  }

  static PacketSpec tcp(int family, uint16_t sport, uint16_t dport, uint8_t flags,
                        const Addr& src) {
    PacketSpec s;
    s.family = family;
    s.l4 = PacketSpec::L4::Tcp;
    s.src = src;
    s.dst = host(family);
    s.sport = sport;
    s.dport = dport;
    s.tcp_flags = flags;
    s.payload_len = 12;
    return s;
  }
  static PacketSpec udp(int family, uint16_t sport, uint16_t dport, const Addr& src) {
    PacketSpec s = tcp(family, sport, dport, 0, src);
    s.l4 = PacketSpec::L4::Udp;
    return s;
  }
  static PacketSpec icmp(int family, uint8_t type, const Addr& src, size_t payload) {
    PacketSpec s = tcp(family, 0, 0, 0, src);
    s.l4 = family == 4 ? PacketSpec::L4::Icmp : PacketSpec::L4::Icmpv6;
    s.icmp_type = type;
    s.payload_len = payload;
    return s;
  }

  // Frames that pass, or nearly, as they are: the starting points of the
  // truncations and byte edits.
  static std::vector<std::pair<std::string, PacketSpec>> bases() {
    std::vector<std::pair<std::string, PacketSpec>> out;
    for (int family : {4, 6}) {
      const std::string f = family == 4 ? "v4 " : "v6 ";
      out.emplace_back(f + "tcp syn to 443", tcp(family, 51000, kTcpLocal, 0x02, peer_in(family)));
      out.emplace_back(f + "tcp ack reply from 389",
                       tcp(family, kTcpRemote, kTcpHostPort, 0x10, peer_in(family)));
      out.emplace_back(f + "udp to 162", udp(family, 50000, kUdpLocal, peer_in(family)));
      out.emplace_back(f + "udp reply from 161",
                       udp(family, kUdpRemote, kUdpHostPort, peer_in(family)));
      out.emplace_back(f + "echo request", icmp(family, family == 4 ? 8 : 128, peer_in(family), 16));
      PacketSpec vlan = tcp(family, 51000, kTcpLocal, 0x02, peer_in(family));
      vlan.vlan_ids = {10, 20};
      out.emplace_back(f + "tcp in two vlan tags", vlan);
    }
    PacketSpec opts = tcp(4, 51000, kTcpLocal, 0x02, peer_in(4));
    opts.ipv4_options_len = 12;
    out.emplace_back("v4 tcp with options", opts);
    PacketSpec ext = udp(6, 50000, kUdpLocal, peer_in(6));
    ext.ipv6_ext_headers = {0, 60, 43, 51};
    out.emplace_back("v6 udp behind 4 ext headers", ext);
    PacketSpec arp;
    arp.family = 0;
    arp.ethertype = 0x0806;
    arp.payload_len = 28;
    out.emplace_back("arp", arp);
    return out;
  }

  void truncations() {
    for (const auto& [name, spec] : bases()) {
      const auto full = classify::build_frame(spec);
      const auto layout = classify::frame_layout(spec);
      for (size_t cut = kMinFrame; cut < full.size(); ++cut) {
        std::vector<uint8_t> f(full.begin(), full.begin() + static_cast<long>(cut));
        // Raw: the IP length still claims the whole packet.
        add(name + " truncated raw at " + std::to_string(cut), f,
            spec.family ? std::optional(DropReason::Malformed) : std::nullopt);
        if (spec.family == 0) continue;
        // Lengths rewritten to the cut: only the header checks are left to catch it.
        const size_t l3 = layout.l3;
        if (spec.family == 4 && cut >= l3 + 4) put16(&f[l3 + 2], static_cast<uint16_t>(cut - l3));
        if (spec.family == 6 && cut >= l3 + 40) put16(&f[l3 + 4], static_cast<uint16_t>(cut - l3 - 40));
        std::optional<DropReason> expect;
        if (cut < layout.payload) expect = DropReason::Malformed;
        add(name + " truncated consistently at " + std::to_string(cut), f, expect);
      }
    }
  }

  void byte_edits() {
    for (const auto& [name, spec] : bases()) {
      const auto full = classify::build_frame(spec);
      const size_t headers = std::min(full.size(), classify::frame_layout(spec).payload + 4);
      for (size_t at = 0; at < headers; ++at)
        for (int value = 0; value < 256; ++value) {
          if (value == full[at]) continue;
          auto f = full;
          f[at] = static_cast<uint8_t>(value);
          add(name + " byte " + std::to_string(at) + " = " + std::to_string(value), f);
        }
    }
  }

  void ipv4_lengths() {
    for (size_t options : {0, 12}) {
      PacketSpec s = tcp(4, 51000, kTcpLocal, 0x02, peer_in(4));
      s.ipv4_options_len = options;
      const auto full = classify::build_frame(s);
      const size_t l3 = classify::frame_layout(s).l3;
      const size_t real_ihl = 5 + options / 4;
      for (uint8_t ihl = 0; ihl < 16; ++ihl) {
        auto f = full;
        f[l3] = static_cast<uint8_t>(0x40 | ihl);
        // IHL < 5 is malformed; beyond tot_len too; between, the TCP header is misread.
        std::optional<DropReason> expect;
        if (ihl < 5 || ihl * 4u > f.size() - l3) expect = DropReason::Malformed;
        add("v4 ihl " + std::to_string(ihl) + " (real " + std::to_string(real_ihl) + ")", f, expect);
      }
      const uint16_t real = static_cast<uint16_t>(full.size() - l3);
      const uint16_t hdr = static_cast<uint16_t>(real_ihl * 4);
      for (uint16_t tot : {uint16_t{0}, uint16_t{1}, uint16_t(hdr - 1), hdr, uint16_t(hdr + 19),
                           uint16_t(real - 1), real, uint16_t(real + 1), uint16_t{0xffff}}) {
        auto f = full;
        put16(&f[l3 + 2], tot);
        std::optional<DropReason> expect;
        if (tot < hdr + 20 || tot > real) expect = DropReason::Malformed;
        if (tot == real) expect = std::nullopt;
        add("v4 tot_len " + std::to_string(tot) + " of " + std::to_string(real), f, expect);
        // The frame longer than tot_len says: Ethernet padding, which is ignored.
        f.resize(f.size() + 30, 0xee);
        add("v4 tot_len " + std::to_string(tot) + " with 30 bytes of padding", f,
            tot < hdr + 20 || tot > real + 30 ? std::optional(DropReason::Malformed)
                                              : std::nullopt);
      }
      for (uint8_t version : {0, 5, 6, 15}) {
        auto f = full;
        f[l3] = static_cast<uint8_t>(version << 4 | (f[l3] & 0x0f));
        add("v4 version " + std::to_string(version), f, DropReason::Malformed);
      }
    }
  }

  void ipv6_lengths() {
    PacketSpec s = udp(6, 50000, kUdpLocal, peer_in(6));
    const auto full = classify::build_frame(s);
    const size_t l3 = classify::frame_layout(s).l3;
    const uint16_t real = static_cast<uint16_t>(full.size() - l3 - 40);
    for (uint16_t pl : {uint16_t{0}, uint16_t{1}, uint16_t{7}, uint16_t(real - 1), real,
                        uint16_t(real + 1), uint16_t{0xffff}}) {
      auto f = full;
      put16(&f[l3 + 4], pl);
      // Shorter than real but holding the UDP header: the rest reads as padding.
      add("v6 payload_len " + std::to_string(pl) + " of " + std::to_string(real), f,
          pl >= 8 && pl <= real ? std::nullopt : std::optional(DropReason::Malformed));
    }
    for (uint8_t version : {0, 4, 7, 15}) {
      auto f = full;
      f[l3] = static_cast<uint8_t>(version << 4);
      add("v6 version " + std::to_string(version), f, DropReason::Malformed);
    }
  }

  void ipv6_chains() {
    static const uint8_t kKinds[] = {0, 43, 60, 51};
    for (uint8_t kind : kKinds)
      for (size_t n = 1; n <= 10; ++n) {
        // The same header repeated: the closest thing to a loop the wire allows.
        PacketSpec s = udp(6, 50000, kUdpLocal, peer_in(6));
        s.ipv6_ext_headers.assign(n, kind);
        add("v6 " + std::to_string(n) + " x ext " + std::to_string(kind), classify::build_frame(s),
            n > 6 ? std::optional(DropReason::ExtHdrLimit) : std::nullopt);
      }
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200; ++i) {
      PacketSpec s = tcp(6, 51000, kTcpLocal, 0x02, peer_in(6));
      static const uint8_t kAll[] = {0, 43, 60, 51, 44};
      for (size_t k = 0, n = rng() % 11; k < n; ++k) s.ipv6_ext_headers.push_back(kAll[rng() % 5]);
      s.frag_id = 1000 + static_cast<uint32_t>(i);
      auto f = classify::build_frame(s);
      add("v6 random chain " + std::to_string(i), f);
      // Oversized length fields in each header of the chain.
      // Past the sixth header the walk stops with ext_hdr_limit first.
      size_t at = classify::frame_layout(s).l3 + 40;
      for (size_t k = 0; k < s.ipv6_ext_headers.size(); ++k) {
        const uint8_t nh = s.ipv6_ext_headers[k];
        auto g = f;
        g[at + 1] = 0xff;
        if (nh != 44)
          add("v6 random chain " + std::to_string(i) + " oversized header " + std::to_string(k),
              g, k < 6 ? std::optional(DropReason::Malformed) : std::nullopt);
        at += nh == 51 ? 24 : 8;
      }
    }
  }

  void fragments() {
    for (int family : {4, 6}) {
      const std::string fam = family == 4 ? "v4 " : "v6 ";
      auto frag = [&](PacketSpec s, uint32_t id, uint16_t offset, bool more, size_t payload) {
        s.frag_id = id;
        s.frag_offset = offset;
        s.more_fragments = more;
        s.payload_len = payload;
        if (family == 6) s.ipv6_ext_headers = {44};
        return classify::build_frame(s);
      };
      const PacketSpec allowed = tcp(family, 51000, kTcpLocal, 0x02, peer_in(family));
      const PacketSpec closed = tcp(family, 51000, 9999, 0x02, peer_in(family));
      const PacketSpec udp_allowed = udp(family, 50000, kUdpLocal, peer_in(family));
      // A datagram in order, then the RFC 1858 overlap at offset 1.
      add(fam + "first fragment to 443", frag(allowed, 1, 0, true, 16));
      add(fam + "tcp fragment at offset 1", frag(allowed, 1, 1, true, 16), DropReason::Malformed);
      add(fam + "tcp fragment at offset 3", frag(allowed, 1, 3, true, 16));
      add(fam + "last fragment", frag(allowed, 1, 200, false, 16));
      add(fam + "udp first fragment", frag(udp_allowed, 2, 0, true, 16));
      add(fam + "udp fragment at offset 1 (allowed for udp)", frag(udp_allowed, 2, 1, false, 8));
      // Orphans: nothing recorded for these ids.
      add(fam + "orphan fragment", frag(allowed, 3, 5, true, 16), DropReason::FragmentOrphan);
      add(fam + "orphan last fragment", frag(allowed, 4, 8191, false, 0), DropReason::FragmentOrphan);
      // Overlap by re-sending the first fragment: the later decision wins.
      add(fam + "first fragment allowed", frag(allowed, 5, 0, true, 16));
      add(fam + "same datagram's first fragment again, closed port", frag(closed, 5, 0, true, 16),
          DropReason::NoRule);
      add(fam + "rest after the overwrite", frag(allowed, 5, 3, false, 16), DropReason::NoRule);
      add(fam + "first fragment closed", frag(closed, 6, 0, true, 16), DropReason::NoRule);
      add(fam + "first fragment allowed over it", frag(allowed, 6, 0, true, 16));
      add(fam + "rest after the second overwrite", frag(allowed, 6, 3, false, 16));
      // Tiny first fragments: the transport header does not fit.
      for (size_t keep : {0, 1, 8, 12, 19}) {
        auto f = frag(allowed, 7 + static_cast<uint32_t>(keep), 0, true, 0);
        const size_t l3 = classify::frame_layout(allowed).l3;
        const size_t l4 = f.size() - 20;  // the TCP header is the last 20 bytes
        f.resize(l4 + keep);
        if (family == 4) put16(&f[l3 + 2], static_cast<uint16_t>(f.size() - l3));
        else put16(&f[l3 + 4], static_cast<uint16_t>(f.size() - l3 - 40));
        add(fam + "tiny first fragment, " + std::to_string(keep) + " tcp bytes", f,
            DropReason::Malformed);
        add(fam + "rest of the tiny datagram",
            frag(allowed, 7 + static_cast<uint32_t>(keep), 3, false, 32), DropReason::Malformed);
      }
      // A fragment of a datagram from outside the peer sets.
      const PacketSpec outsider = tcp(family, 51000, kTcpLocal, 0x02, peer_out(family));
      add(fam + "outsider first fragment", frag(outsider, 30, 0, true, 16));
      add(fam + "outsider rest", frag(outsider, 30, 3, false, 16));
      // Spoofed rest of an allowed datagram from another source.
      add(fam + "rest with another source", frag(outsider, 1, 3, false, 16),
          DropReason::FragmentOrphan);
      // Atomic fragment (IPv6: offset 0, no M): decided whole, nothing recorded.
      if (family == 6) {
        add("v6 atomic fragment to 443", frag(allowed, 40, 0, false, 16));
        add("v6 rest of an atomic fragment", frag(allowed, 40, 3, false, 16),
            DropReason::FragmentOrphan);
        // Two fragment headers: the first non-first one decides.
        PacketSpec two = allowed;
        two.ipv6_ext_headers = {44, 44};
        two.frag_id = 41;
        two.more_fragments = true;
        add("v6 two first-fragment headers", classify::build_frame(two));
        two.frag_offset = 3;
        two.more_fragments = false;
        add("v6 two non-first fragment headers", classify::build_frame(two));
      }
    }
  }

  void tcp_offsets() {
    for (int family : {4, 6})
      for (size_t payload : {0, 12, 40}) {
        PacketSpec s = tcp(family, 51000, kTcpLocal, 0x02, peer_in(family));
        s.payload_len = payload;
        const auto full = classify::build_frame(s);
        const size_t l4 = classify::frame_layout(s).l4;
        for (uint8_t doff = 0; doff < 16; ++doff) {
          auto f = full;
          f[l4 + 12] = static_cast<uint8_t>(doff << 4);
          std::optional<DropReason> expect;
          if (doff < 5 || doff * 4u > 20 + payload) expect = DropReason::Malformed;
          add("v" + std::to_string(family) + " tcp doff " + std::to_string(doff) + " payload " +
                  std::to_string(payload),
              f, expect);
        }
      }
  }

  static bool bad_flags(uint8_t f) {
    const bool fin = f & 0x01, syn = f & 0x02, rst = f & 0x04, psh = f & 0x08, urg = f & 0x20;
    return (syn && fin) || (syn && rst) || (f & 0x3f) == 0 || (fin && psh && urg);
  }

  void tcp_flags() {
    for (int family : {4, 6})
      for (const Addr& src : {peer_in(family), peer_out(family)})
        for (int flags = 0; flags < 256; ++flags) {
          const auto fl = static_cast<uint8_t>(flags);
          const std::optional<DropReason> expect =
              bad_flags(fl) ? std::optional(DropReason::BadTcpFlags) : std::nullopt;
          const std::string suffix = " flags " + std::to_string(flags) + " v" +
                                     std::to_string(family);
          add("to 443" + suffix, classify::build_frame(tcp(family, 51000, kTcpLocal, fl, src)),
              expect);
          add("from reply port 389" + suffix,
              classify::build_frame(tcp(family, kTcpRemote, kTcpHostPort, fl, src)), expect);
        }
  }

  void zero_ports() {
    for (int family : {4, 6}) {
      const std::string fam = "v" + std::to_string(family);
      for (auto [sp, dp] : {std::pair<uint16_t, uint16_t>{0, 0}, {0, kTcpLocal}, {51000, 0},
                            {kTcpRemote, 0}, {0, kTcpHostPort}}) {
        const std::string ports = " " + std::to_string(sp) + "->" + std::to_string(dp);
        add(fam + " tcp syn" + ports, classify::build_frame(tcp(family, sp, dp, 0x02, peer_in(family))));
        add(fam + " tcp ack" + ports, classify::build_frame(tcp(family, sp, dp, 0x10, peer_in(family))));
        add(fam + " udp" + ports, classify::build_frame(udp(family, sp, dp, peer_in(family))));
      }
      add(fam + " udp 0->162", classify::build_frame(udp(family, 0, kUdpLocal, peer_in(family))));
      add(fam + " udp 161->0", classify::build_frame(udp(family, kUdpRemote, 0, peer_in(family))));
    }
  }

  // The packet the host sent that an ICMP error quotes: host -> peer.
  static std::vector<uint8_t> quoted(int family, uint8_t proto, uint16_t sport, uint16_t dport,
                                     const Addr& peer) {
    PacketSpec q = proto == 6 ? tcp(family, sport, dport, 0x02, host(family))
                              : udp(family, sport, dport, host(family));
    q.dst = peer;
    auto f = classify::build_frame(q);
    return {f.begin() + 14, f.end()};  // without the Ethernet header
  }

  void icmp_errors() {
    std::mt19937_64 rng(11);
    for (int family : {4, 6}) {
      const std::string fam = "v" + std::to_string(family);
      const std::vector<uint8_t> types =
          family == 4 ? std::vector<uint8_t>{3, 11, 12} : std::vector<uint8_t>{1, 2, 3, 4};
      const std::vector<uint8_t> flows[] = {
          quoted(family, 6, kTcpHostPort, kTcpRemote, peer_in(family)),
          quoted(family, 17, kUdpHostPort, kUdpRemote, peer_in(family))};
      for (uint8_t type : types)
        for (const Addr& src : {peer_in(family), peer_out(family)}) {
          const std::string base = fam + " icmp error " + std::to_string(type) +
                                   (src == peer_in(family) ? " inside" : " outside");
          auto with = [&](const std::vector<uint8_t>& payload) {
            PacketSpec s = icmp(family, type, src, payload.size());
            auto f = classify::build_frame(s);
            std::copy(payload.begin(), payload.end(), f.begin() + static_cast<long>(
                                                          classify::frame_layout(s).payload));
            return f;
          };
          for (size_t len : {0, 3, 20, 28, 48, 64}) {
            std::vector<uint8_t> garbage(len);
            for (auto& b : garbage) b = static_cast<uint8_t>(rng());
            add(base + " quoting " + std::to_string(len) + " random bytes", with(garbage));
          }
          for (const auto& flow : flows) {
            add(base + " quoting a flow", with(flow));
            // The quoted header cut short at every byte, then each header byte edited.
            for (size_t cut = 0; cut < std::min<size_t>(flow.size(), family == 4 ? 28 : 48); ++cut)
              add(base + " quoting a flow cut at " + std::to_string(cut),
                  with({flow.begin(), flow.begin() + static_cast<long>(cut)}));
            for (size_t at = 0; at < (family == 4 ? 24u : 44u); ++at) {
              auto q = flow;
              q[at] ^= 0xff;
              add(base + " quoting a flow with byte " + std::to_string(at) + " flipped", with(q));
            }
          }
        }
      // The other family's ICMP number: never an ICMP error for the classifier.
      PacketSpec other = icmp(family, 3, peer_in(family), 28);
      other.l4 = family == 4 ? PacketSpec::L4::Icmpv6 : PacketSpec::L4::Icmp;
      add(fam + " icmp of the other family", classify::build_frame(other), DropReason::NoRule);
    }
  }

  void ethernet() {
    for (int tags = 0; tags <= 4; ++tags)
      for (uint16_t tpid : {0x8100, 0x88a8}) {
        PacketSpec s = tcp(4, 51000, kTcpLocal, 0x02, peer_in(4));
        s.vlan_ids.assign(static_cast<size_t>(tags), 5);
        auto f = classify::build_frame(s);
        for (int t = 0; t < tags; ++t) put16(&f[12 + 4 * static_cast<size_t>(t)], tpid);
        add("v4 in " + std::to_string(tags) + " tags 0x" + std::to_string(tpid), f,
            tags > 2 ? std::optional(DropReason::Malformed) : std::nullopt);
      }
    for (uint16_t type : {0x0000, 0x05dc, 0x0806, 0x8035, 0x88cc, 0x8863, 0xffff}) {
      PacketSpec s;
      s.family = 0;
      s.ethertype = type;
      s.payload_len = 28;
      add("ethertype " + std::to_string(type), classify::build_frame(s));
    }
  }

  static Corpus build() {
    Corpus c;
    c.truncations();
    c.byte_edits();
    c.ipv4_lengths();
    c.ipv6_lengths();
    c.ipv6_chains();
    c.fragments();
    c.tcp_offsets();
    c.tcp_flags();
    c.zero_ports();
    c.icmp_errors();
    c.ethernet();
    return c;
  }
};

// ---- the independent check ---------------------------------------------------------
//
// What the policy permits, read straight from the rules by a parser that
// shares no code with the reference or the BPF program. Strict: any header
// it cannot read means the frame must not pass.

class PolicyCheck {
 public:
  PolicyCheck(const policy::RuleSet& rules, bool tracking) : rules_(rules), tracking_(tracking) {}

  // A flow the host opened (local = host, remote = peer).
  void add_flow(int family, uint8_t proto, uint16_t host_port, uint16_t peer_port,
                const Addr& peer) {
    flows_.insert({family, proto, host_port, peer_port, host(family), peer});
  }

  // "" if the policy permits passing `f`, else why not. `passed` is what the
  // datapath did: a first fragment's fate is what its other fragments get.
  std::string refuse(std::span<const uint8_t> f, bool passed) {
    const size_t n = f.size();
    if (n < 14) return "no ethernet header";
    uint16_t type = be16(&f[12]);
    size_t off = 14;
    for (int tags = 0; type == 0x8100 || type == 0x88a8; ++tags) {
      if (tags == 2) return "third vlan tag";
      if (n < off + 4) return "cut vlan tag";
      type = be16(&f[off + 2]);
      off += 4;
    }
    if (type == 0x0800) return ipv4(f, off, passed);
    if (type == 0x86dd) return ipv6(f, off, passed);
    for (const auto& e : rules_.rules)
      if (e.rule->protocol == policy::Protocol::Ethertype &&
          std::count(e.rule->ethertypes.begin(), e.rule->ethertypes.end(), type))
        return "";
    return "no ethertype rule";
  }

 private:
  using FlowTuple = std::tuple<int, uint8_t, uint16_t, uint16_t, Addr, Addr>;
  using FragTuple = std::tuple<int, uint8_t, uint32_t, Addr, Addr>;

  std::string ipv4(std::span<const uint8_t> f, size_t ip, bool passed) {
    if (f.size() < ip + 20) return "cut ipv4 header";
    if (f[ip] >> 4 != 4) return "not version 4";
    const size_t hl = (f[ip] & 15) * 4u;
    if (hl < 20 || f.size() < ip + hl) return "bad ihl";
    const size_t tot = be16(&f[ip + 2]);
    if (tot < hl || tot > f.size() - ip) return "lying tot_len";
    const uint8_t proto = f[ip + 9];
    Addr src{}, dst{};
    std::copy_n(&f[ip + 12], 4, src.begin());
    std::copy_n(&f[ip + 16], 4, dst.begin());
    const uint16_t frag = be16(&f[ip + 6]);
    FragTuple key{4, proto, be16(&f[ip + 4]), src, dst};
    if (frag & 0x1fff) {
      if (proto == 6 && (frag & 0x1fff) == 1) return "tcp fragment at offset 1";
      return fragment_passed(key) ? "" : "no passed first fragment";
    }
    std::string why = transport(f, 4, proto, ip + hl, ip + tot, src, dst);
    if (frag & 0x2000) first_fragments_[key] = passed;
    return why;
  }

  std::string ipv6(std::span<const uint8_t> f, size_t ip, bool passed) {
    if (f.size() < ip + 40) return "cut ipv6 header";
    if (f[ip] >> 4 != 6) return "not version 6";
    const size_t pl = be16(&f[ip + 4]);
    if (pl == 0 || 40 + pl > f.size() - ip) return "lying payload_len";
    const size_t end = ip + 40 + pl;
    Addr src{}, dst{};
    std::copy_n(&f[ip + 8], 16, src.begin());
    std::copy_n(&f[ip + 24], 16, dst.begin());
    uint8_t nh = f[ip + 6];
    size_t at = ip + 40;
    std::optional<FragTuple> first;
    std::string why;
    for (int count = 0;; ++count) {
      if (nh != 0 && nh != 43 && nh != 60 && nh != 51 && nh != 44) {
        why = transport(f, 6, nh, at, end, src, dst);
        break;
      }
      if (count == 6) {
        why = "more than 6 extension headers";
        break;
      }
      if (end < at + 8) {
        why = "cut extension header";
        break;
      }
      const size_t len = nh == 51 ? (f[at + 1] + 2u) * 4 : nh == 44 ? 8 : (f[at + 1] + 1u) * 8;
      if (end < at + len) {
        why = "extension header past the end";
        break;
      }
      if (nh == 44) {
        const uint16_t fo = be16(&f[at + 2]);
        const uint32_t id = static_cast<uint32_t>(f[at + 4]) << 24 | f[at + 5] << 16 |
                            f[at + 6] << 8 | f[at + 7];
        // Ids are compared as the fragment header carries them: byte order is
        // the same on both sides of the comparison.
        FragTuple key{6, f[at], id, src, dst};
        if (fo >> 3) {
          if (f[at] == 6 && (fo >> 3) == 1) return "tcp fragment at offset 1";
          return fragment_passed(key) ? "" : "no passed first fragment";
        }
        if (fo & 1) first = key;
      }
      nh = f[at];
      at += len;
    }
    if (first) first_fragments_[*first] = passed;
    return why;
  }

  bool fragment_passed(const FragTuple& key) const {
    auto it = first_fragments_.find(key);
    return it != first_fragments_.end() && it->second;
  }

  bool peer_ok(const policy::RuleSet::Entry& e, int family, const Addr& src) const {
    return e.peers && e.peers->contains(family, src.data());
  }

  static bool in(const std::vector<policy::PortRange>& ranges, uint16_t port) {
    return std::any_of(ranges.begin(), ranges.end(), [&](auto& r) { return r.contains(port); });
  }

  std::string transport(std::span<const uint8_t> f, int family, uint8_t proto, size_t l4,
                        size_t end, const Addr& src, const Addr& dst) {
    if (proto == 6 || proto == 17) {
      const bool tcp = proto == 6;
      if (end < l4 + (tcp ? 20 : 8)) return "cut transport header";
      const uint16_t sport = be16(&f[l4]), dport = be16(&f[l4 + 2]);
      bool bare_syn = false;
      if (tcp) {
        const size_t doff = f[l4 + 12] >> 4;
        if (doff < 5 || l4 + doff * 4 > end) return "bad data offset";
        const uint8_t flags = f[l4 + 13];
        if (Corpus::bad_flags(flags)) return "bad flags";
        bare_syn = (flags & 0x02) && !(flags & 0x10);
      }
      const auto want = tcp ? policy::Protocol::Tcp : policy::Protocol::Udp;
      const bool flow = !tracking_ || flows_.count({family, proto, dport, sport, dst, src});
      for (const auto& e : rules_.rules) {
        if (e.rule->protocol != want || !peer_ok(e, family, src)) continue;
        if (in(e.rule->local_ports, dport)) return "";
        if (!bare_syn && flow && in(e.rule->remote_ports, sport)) return "";
      }
      return "no rule admits these ports from this source";
    }
    if ((proto == 1 && family == 4) || (proto == 58 && family == 6)) {
      if (end < l4 + 8) return "cut icmp header";
      const uint8_t type = f[l4];
      const auto want = family == 4 ? policy::Protocol::Icmp : policy::Protocol::Icmpv6;
      for (const auto& e : rules_.rules)
        if (e.rule->protocol == want && peer_ok(e, family, src) &&
            std::count(e.rule->icmp_types.begin(), e.rule->icmp_types.end(), type))
          return "";
      const bool error = family == 4 ? (type == 3 || type == 11 || type == 12)
                                     : (type >= 1 && type <= 4);
      if (tracking_ && error && quotes_flow(f, family, l4 + 8, end)) return "";
      return "no rule admits this icmp type from this source";
    }
    return "protocol no rule names";
  }

  bool quotes_flow(std::span<const uint8_t> f, int family, size_t q, size_t end) const {
    Addr local{}, remote{};
    uint8_t proto = 0;
    size_t ports = 0;
    if (family == 4) {
      if (end < q + 20 || f[q] >> 4 != 4 || (f[q] & 15) < 5) return false;
      if (be16(&f[q + 6]) & 0x1fff) return false;
      proto = f[q + 9];
      ports = q + (f[q] & 15) * 4u;
      std::copy_n(&f[q + 12], 4, local.begin());
      std::copy_n(&f[q + 16], 4, remote.begin());
    } else {
      if (end < q + 44 || f[q] >> 4 != 6) return false;
      proto = f[q + 6];
      ports = q + 40;
      std::copy_n(&f[q + 8], 16, local.begin());
      std::copy_n(&f[q + 24], 16, remote.begin());
    }
    if ((proto != 6 && proto != 17) || end < ports + 4) return false;
    return flows_.count({family, proto, be16(&f[ports]), be16(&f[ports + 2]), local, remote}) > 0;
  }

  const policy::RuleSet& rules_;
  bool tracking_;
  std::set<FlowTuple> flows_;
  std::map<FragTuple, bool> first_fragments_;
};

// ---- the test --------------------------------------------------------------------

struct Scenario {
  const char* name;
  bool narrow;  // every peer set (even "anywhere") narrowed to 10.1.0.0/16, fd01::/16
  uint8_t egress_mode;
};

class MalformedCorpus : public ::testing::TestWithParam<Scenario> {};

TEST_P(MalformedCorpus, XdpAgreesWithReferenceAndPassesOnlyWhatThePolicyPermits) {
  const Scenario& sc = GetParam();
  auto parsed = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
  ASSERT_TRUE(parsed.ok());
  policy::Policy pol = std::move(*parsed.policy);
  if (sc.narrow)
    for (auto& set : pol.peer_sets) {
      set.cidrs.clear();
      policy::Cidr a, b;
      a.family = 4;
      a.address = v4(10, 1, 0, 0);
      a.prefix_length = 16;
      b.family = 6;
      b.address = v6(0xfd, 0x01, 0);
      b.prefix_length = 16;
      set.cidrs = {a, b};
    }
  auto selected = policy::select_rules(pol, "");
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(selected));
  const auto& rules = std::get<policy::RuleSet>(selected);

  // Time stands still for the reference; nothing may expire for the kernel.
  constexpr uint64_t kForever = ~0ULL;
  kernel::DatapathOptions options;
  options.egress_mode = sc.egress_mode;
  options.frag_timeout_ns = options.tcp_established_timeout_ns = kForever;
  options.tcp_closing_timeout_ns = options.udp_timeout_ns = kForever;
  auto dp = kernel::Datapath::load(compile::compile(rules), options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  classify::ReferenceOptions ref_options;
  ref_options.egress_mode = sc.egress_mode;
  ref_options.frag_timeout_ns = ref_options.tcp_established_timeout_ns = kForever;
  ref_options.tcp_closing_timeout_ns = ref_options.udp_timeout_ns = kForever;
  classify::ReferenceClassifier reference(rules, ref_options);
  const bool tracking = sc.egress_mode != XDPG_EGRESS_OFF;
  PolicyCheck check(rules, tracking);

  // The host opens a TCP connection to a peer's 389 and polls its SNMP agent.
  if (tracking)
    for (int family : {4, 6}) {
      for (auto [proto, host_port, peer_port] :
           {std::tuple<uint8_t, uint16_t, uint16_t>{6, kTcpHostPort, kTcpRemote},
            {17, kUdpHostPort, kUdpRemote}}) {
        PacketSpec out = proto == 6 ? Corpus::tcp(family, host_port, peer_port, 0x02, host(family))
                                    : Corpus::udp(family, host_port, peer_port, host(family));
        out.dst = peer_in(family);
        auto f = classify::build_frame(out);
        auto action = dp->test_run_egress(f);
        ASSERT_TRUE(action.ok()) << action.error().message;
        ASSERT_EQ(*action, TC_ACT_OK);
        auto ref = reference.classify_egress(f);
        ASSERT_TRUE(ref.sent && ref.decision && ref.decision->verdict == Verdict::Pass);
        check.add_flow(family, proto, host_port, peer_port, peer_in(family));
      }
    }

  const Corpus corpus = Corpus::build();
  testing::ExpectedCounters tally;
  size_t passes = 0, refused = 0, expectations = 0;
  std::array<size_t, XDPG_DROP_REASON_COUNT> drops{};
  for (size_t i = 0; i < corpus.entries.size(); ++i) {
    const Entry& e = corpus.entries[i];
    const Decision want = reference.classify(e.frame);
    auto action = dp->test_run(e.frame);
    ASSERT_TRUE(action.ok()) << action.error().message;
    const bool passed = *action == XDP_PASS;
    ASSERT_EQ(passed, want.verdict == Verdict::Pass)
        << e.what << ": XDP action " << *action << ", reference " << to_string(want)
        << "\nframe: " << hex(e.frame);
    const std::string why = check.refuse(e.frame, passed);
    ASSERT_TRUE(!passed || why.empty())
        << e.what << ": passed on " << to_string(want) << " but the policy does not permit it ("
        << why << ")\nframe: " << hex(e.frame);
    // The check is strict, not only a bound: it refuses exactly what is dropped.
    ASSERT_TRUE(passed || !why.empty())
        << e.what << ": dropped (" << to_string(want) << ") though the independent check "
        << "finds a rule permitting it\nframe: " << hex(e.frame);
    if (!why.empty()) refused++;
    if (e.expect) {
      expectations++;
      ASSERT_STREQ(drop_reason_name(want.reason), drop_reason_name(*e.expect))
          << e.what << ": " << to_string(want) << "\nframe: " << hex(e.frame);
    }
    tally.count(want, e.frame.size());
    if (passed) passes++;
    else drops[static_cast<size_t>(want.reason)]++;

    if ((i + 1) % kBatch == 0 || i + 1 == corpus.entries.size()) {
      auto got_rules = dp->rule_counters();
      auto got_reasons = dp->reason_counters();
      ASSERT_TRUE(got_rules.ok() && got_reasons.ok());
      ASSERT_NO_FATAL_FAILURE(testing::expect_counters_equal(
          *got_rules, *got_reasons, tally, rules,
          "after '" + e.what + "' (entry " + std::to_string(i) + ")"));
    }
  }

  // The corpus must reach both verdicts and every ingress drop reason.
  EXPECT_GT(corpus.entries.size(), 200'000u);
  EXPECT_GT(passes, corpus.entries.size() / 20);
  EXPECT_GT(refused, corpus.entries.size() / 10);
  EXPECT_GT(expectations, 3'000u);
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r) {
    if (r == XDPG_DROP_RECEIVE_ONLY) continue;                  // egress only
    if (!sc.narrow && r == XDPG_DROP_PEER_NOT_IN_SET) continue;  // open sets
    if (!tracking && r == XDPG_DROP_NO_FLOW) continue;
    EXPECT_GT(drops[r], 0u) << drop_reason_name(static_cast<DropReason>(r));
  }
  std::printf("[ %s ] corpus %zu frames: %zu passed (all permitted), %zu refused by the "
              "independent check, %zu with a named reason; drops:",
              sc.name, corpus.entries.size(), passes, refused, expectations);
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    std::printf(" %s=%zu", drop_reason_name(static_cast<DropReason>(r)), drops[r]);
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(
    DefaultPolicy, MalformedCorpus,
    ::testing::Values(Scenario{"open_sets_egress_off", false, XDPG_EGRESS_OFF},
                      Scenario{"narrowed_sets_with_flows", true, XDPG_EGRESS_ENFORCE}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xdpguard
