// The compiler turns rules into port_table slots and peer tables.
// - every port of every range sets the rule's bit in the right kind, nothing else
// - a peer table has one entry per distinct prefix but /0 (merged across sets
//   and rules, host bits cleared, covering prefixes folded in), /0's mask as
//   its default, and its distinct lengths longest first; probes are the
//   netmasks of their lengths
// - probing the lengths longest first as the datapath does, the first hit (or
//   the default) is exactly the rules whose peer set holds the address
//   (checked against PeerSet::contains on random nested sets, both families)
#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "compile/compiler.hpp"

namespace xdpguard::compile {
namespace {

using policy::Cidr;
using policy::PeerSet;
using policy::Protocol;
using policy::Rule;

Cidr v4(const char* addr, uint8_t len) {
  Cidr c;
  c.family = 4;
  inet_pton(AF_INET, addr, c.address.data());
  c.prefix_length = len;
  return c;
}

Cidr v6(const char* addr, uint8_t len) {
  Cidr c;
  c.family = 6;
  inet_pton(AF_INET6, addr, c.address.data());
  c.prefix_length = len;
  return c;
}

struct Fixture {
  policy::Policy policy;
  policy::RuleSet rules;
  // Pointers into policy's vectors: reserve so they stay put.
  Fixture() {
    policy.peer_sets.reserve(64);
    policy.rules.reserve(64);
  }
  void add_set(std::string name, std::vector<Cidr> cidrs) {
    PeerSet s;
    s.name = std::move(name);
    s.cidrs = std::move(cidrs);
    policy.peer_sets.push_back(std::move(s));
  }
  void add_rule(Rule r) {
    policy.rules.push_back(std::move(r));
    const Rule& stored = policy.rules.back();
    rules.rules.push_back({&stored, policy.find_peer_set(stored.peers)});
  }
  void finish() { rules.policy = &policy; }
};

Rule tcp_local(std::string id, std::string peers, uint16_t first, uint16_t last) {
  Rule r;
  r.id = std::move(id);
  r.protocol = Protocol::Tcp;
  r.local_ports = {{first, last}};
  r.peers = std::move(peers);
  return r;
}

uint64_t slot(const CompiledPolicy& c, uint32_t index) {
  for (const auto& [i, mask] : c.port_entries)
    if (i == index) return mask;
  return 0;
}

TEST(Compiler, PortRangesSetTheRuleBitInTheirKindOnly) {
  Fixture f;
  f.add_set("any", {v4("0.0.0.0", 0)});
  f.add_rule(tcp_local("web", "any", 443, 443));
  Rule udp;
  udp.id = "traps";
  udp.protocol = Protocol::Udp;
  udp.local_ports = {{162, 162}, {1161, 1161}};
  udp.peers = "any";
  f.add_rule(udp);
  Rule ldap;
  ldap.id = "ldap";
  ldap.protocol = Protocol::Tcp;
  ldap.remote_ports = {{389, 389}};
  ldap.peers = "any";
  f.add_rule(ldap);
  f.add_rule(tcp_local("range", "any", 5000, 5009));
  Rule arp;
  arp.id = "arp";
  arp.protocol = Protocol::Ethertype;
  arp.ethertypes = {0x0806};
  f.add_rule(arp);
  f.finish();

  CompiledPolicy c = compile(f.rules);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_TCP_LOCAL, 443)), 1u << 0);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_UDP_LOCAL, 162)), 1u << 1);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_UDP_LOCAL, 1161)), 1u << 1);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_TCP_REMOTE, 389)), 1u << 2);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_TCP_LOCAL, 389)), 0u);
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_ETHERTYPE, 0x0806)), 1u << 4);
  for (uint16_t p = 5000; p <= 5009; ++p)
    EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_TCP_LOCAL, p)), 1u << 3) << p;
  EXPECT_EQ(slot(c, port_table_index(XDPG_KIND_TCP_LOCAL, 5010)), 0u);
  EXPECT_EQ(c.port_entries.size(), 1u + 2 + 1 + 10 + 1);
  ASSERT_EQ(c.rule_meta.size(), 5u);
  EXPECT_STREQ(c.rule_meta[2].id, "ldap");
  EXPECT_EQ(c.info.layout_version, XDPG_LAYOUT_VERSION);
  EXPECT_EQ(c.info.rule_count, 5u);
}

TEST(Compiler, CoveringPrefixesAreFoldedIntoLongerOnes) {
  Fixture f;
  f.add_set("ten", {v4("10.0.0.0", 8)});
  f.add_set("ten-one", {v4("10.1.0.0", 16)});
  f.add_set("any", {v4("0.0.0.0", 0), v6("::", 0)});
  f.add_set("v6", {v6("2001:db8::", 32)});
  f.add_rule(tcp_local("a", "ten", 1, 1));
  f.add_rule(tcp_local("b", "ten-one", 1, 1));
  f.add_rule(tcp_local("c", "any", 1, 1));
  f.add_rule(tcp_local("d", "v6", 1, 1));
  f.finish();

  CompiledPolicy c = compile(f.rules);
  EXPECT_EQ(c.peers_v4.default_mask, 0b100u);  // /0 is no entry
  ASSERT_EQ(c.peers_v4.entries.size(), 2u);
  EXPECT_EQ(c.peers_v4.entries[0].first.prefixlen, 8u);
  EXPECT_EQ(c.peers_v4.entries[0].second, 0b101u);
  EXPECT_EQ(c.peers_v4.entries[1].first.prefixlen, 16u);
  EXPECT_EQ(c.peers_v4.entries[1].second, 0b111u);
  EXPECT_EQ(c.peers_v4.lengths, (std::vector<uint8_t>{16, 8}));
  EXPECT_EQ(c.peers_v6.default_mask, 0b100u);
  ASSERT_EQ(c.peers_v6.entries.size(), 1u);
  EXPECT_EQ(c.peers_v6.entries[0].second, 0b1100u);
  EXPECT_EQ(c.peers_v6.lengths, (std::vector<uint8_t>{32}));
}

TEST(Compiler, OpenSetsCompileToADefaultMaskAndNoProbes) {
  Fixture f;
  f.add_set("any", {v4("0.0.0.0", 0), v6("::", 0)});
  f.add_set("v4-only", {v4("0.0.0.0", 0)});
  f.add_rule(tcp_local("a", "any", 1, 1));
  f.add_rule(tcp_local("b", "v4-only", 1, 1));
  f.add_rule(tcp_local("c", "any", 2, 2));
  f.finish();

  CompiledPolicy c = compile(f.rules);
  EXPECT_EQ(c.peers_v4.default_mask, 0b111u);
  EXPECT_EQ(c.peers_v6.default_mask, 0b101u);
  EXPECT_TRUE(c.peers_v4.entries.empty() && c.peers_v4.lengths.empty());
  EXPECT_TRUE(c.peers_v6.entries.empty() && c.peers_v6.lengths.empty());
}

TEST(Compiler, PrefixesAreMergedAcrossSetsAndRulesWithHostBitsCleared) {
  Fixture f;
  Cidr sloppy = v4("192.0.2.77", 24);  // the parser refuses host bits; the compiler clears them anyway
  f.add_set("a", {v4("192.0.2.0", 24), v6("2001:db8::", 48)});
  f.add_set("b", {sloppy, v6("2001:db8::1", 128)});
  f.add_rule(tcp_local("r0", "a", 1, 1));
  f.add_rule(tcp_local("r1", "b", 1, 1));
  f.add_rule(tcp_local("r2", "a", 2, 2));  // a second rule on set a
  f.finish();

  CompiledPolicy c = compile(f.rules);
  ASSERT_EQ(c.peers_v4.entries.size(), 1u);
  const auto& [key, mask] = c.peers_v4.entries[0];
  EXPECT_EQ(key.prefixlen, 24u);
  EXPECT_EQ(std::vector<uint8_t>(key.addr, key.addr + 4), (std::vector<uint8_t>{192, 0, 2, 0}));
  EXPECT_EQ(mask, 0b111u);
  ASSERT_EQ(c.peers_v6.entries.size(), 2u);
  EXPECT_EQ(c.peers_v6.entries[0].second, 0b101u);  // the /48
  EXPECT_EQ(c.peers_v6.entries[1].second, 0b111u);  // the /128 inside it
  EXPECT_EQ(c.peers_v6.lengths, (std::vector<uint8_t>{128, 48}));
  EXPECT_EQ(c.peers_v4.default_mask, 0u);
}

TEST(Compiler, ProbesAreTheNetmasksOfTheirLengths) {
  auto bytes = [](const auto& mask) {
    const auto* p = reinterpret_cast<const uint8_t*>(&mask);
    return std::vector<uint8_t>(p, p + sizeof mask);
  };
  EXPECT_EQ(bytes(peer_probe_v4(32).mask), (std::vector<uint8_t>{255, 255, 255, 255}));
  EXPECT_EQ(bytes(peer_probe_v4(23).mask), (std::vector<uint8_t>{255, 255, 254, 0}));
  EXPECT_EQ(bytes(peer_probe_v4(1).mask), (std::vector<uint8_t>{128, 0, 0, 0}));
  EXPECT_EQ(peer_probe_v4(23).prefixlen, 23u);
  std::vector<uint8_t> m127(16, 255);
  m127[15] = 254;
  EXPECT_EQ(bytes(peer_probe_v6(127).mask), m127);
  std::vector<uint8_t> m33(16, 0);
  m33[0] = m33[1] = m33[2] = m33[3] = 255;
  m33[4] = 128;
  EXPECT_EQ(bytes(peer_probe_v6(33).mask), m33);
  EXPECT_EQ(peer_probe_v6(128).prefixlen, 128u);
}

TEST(Compiler, PeerTableTakesSlashZeroAsDefaultWherever) {
  xdpg_peer_v4_key zero{}, eight{};
  eight.prefixlen = 8;
  eight.addr[0] = 10;
  auto t = peer_table<xdpg_peer_v4_key>({{eight, 3}, {zero, 1}});
  EXPECT_EQ(t.default_mask, 1u);
  ASSERT_EQ(t.entries.size(), 1u);
  EXPECT_EQ(t.entries[0].first.prefixlen, 8u);
  EXPECT_EQ(t.lengths, (std::vector<uint8_t>{8}));
}

TEST(Compiler, ManyDistinctPrefixLengthsAreWarnedAbout) {
  Fixture f;
  std::vector<Cidr> eight, nine;
  for (uint8_t len = 24; len <= 31; ++len) eight.push_back(v4("10.0.0.0", len));
  nine = eight;
  nine.push_back(v4("10.0.0.0", 32));
  f.add_set("eight", eight);
  f.add_set("nine", {v6("2001:db8::", 48)});
  f.add_rule(tcp_local("a", "eight", 1, 1));
  f.add_rule(tcp_local("b", "nine", 1, 1));
  f.finish();
  EXPECT_TRUE(peer_length_warnings(compile(f.rules)).empty());  // 8 lengths: no warning

  f.policy.peer_sets[1].cidrs = nine;
  auto warnings = peer_length_warnings(compile(f.rules));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("9 distinct IPv4 prefix lengths (/32 /31 /30"), std::string::npos)
      << warnings[0];
}

// The datapath's lookup (bpf/xdpguard.bpf.c// The datapath's lookup (bpf/xdpguard.bpf.c xdpg_members_v4/v6) over a
// compiled table: probe the lengths longest first with the address masked
// by the probe, first hit wins, else the default.
template <typename Key, typename Probe>
uint64_t datapath_members(const PeerTable<Key>& t, const uint8_t* addr,
                          Probe (*probe_for)(uint8_t)) {
  std::map<std::vector<uint8_t>, uint64_t> hash;  // key bytes -> mask
  auto key_bytes = [](const Key& k) {
    const auto* p = reinterpret_cast<const uint8_t*>(&k);
    return std::vector<uint8_t>(p, p + sizeof k);
  };
  for (const auto& [key, mask] : t.entries) EXPECT_TRUE(hash.emplace(key_bytes(key), mask).second);
  for (uint8_t len : t.lengths) {
    Probe probe = probe_for(len);
    const auto* mask = reinterpret_cast<const uint8_t*>(&probe.mask);
    Key k{};
    k.prefixlen = probe.prefixlen;
    for (size_t i = 0; i < sizeof k.addr; ++i) k.addr[i] = addr[i] & mask[i];
    if (auto it = hash.find(key_bytes(k)); it != hash.end()) return it->second;
  }
  return t.default_mask;
}

// Few distinct high bits so that prefixes nest and overlap often.
Cidr random_cidr(std::mt19937& rng, int family) {
  Cidr c;
  c.family = family;
  const unsigned bits = family == 4 ? 32 : 128;
  for (unsigned i = 0; i < bits / 8; ++i) c.address[i] = static_cast<uint8_t>(rng());
  c.address[0] = static_cast<uint8_t>((rng() % 4) << 6 | (c.address[0] & 0x0F));
  c.prefix_length = static_cast<uint8_t>(rng() % (bits + 1));
  for (unsigned bit = c.prefix_length; bit < bits; ++bit)
    c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return c;
}

TEST(Compiler, ProbingLongestFirstEqualsSetMembershipOnRandomSets) {
  std::mt19937 rng(20261127);
  for (int round = 0; round < 20; ++round) {
    Fixture f;
    const int sets = 12;
    std::vector<Cidr> pool;  // every set draws from one pool: the same prefixes recur
    for (int k = 0; k < 40; ++k) pool.push_back(random_cidr(rng, k % 2 ? 6 : 4));
    for (int s = 0; s < sets; ++s) {
      std::vector<Cidr> cidrs;
      for (int k = 0, n = 1 + static_cast<int>(rng() % 8); k < n; ++k)
        cidrs.push_back(pool[rng() % pool.size()]);
      f.add_set("s" + std::to_string(s), cidrs);
    }
    for (int s = 0; s < sets; ++s) f.add_rule(tcp_local("r" + std::to_string(s), "s" + std::to_string(s), 1, 1));
    f.finish();
    CompiledPolicy c = compile(f.rules);
    for (int probe = 0; probe < 2000; ++probe) {
      // Half the probes are a pool prefix's address with some low bits
      // flipped: inside or just outside it.
      const int family = probe % 2 ? 6 : 4;
      Cidr a = random_cidr(rng, family);
      if (rng() % 2) {
        const Cidr& near = pool[(rng() % (pool.size() / 2)) * 2 + (family == 6)];
        a.address = near.address;
        const unsigned bits = family == 4 ? 32 : 128, flip = static_cast<unsigned>(rng() % bits);
        a.address[flip / 8] ^= static_cast<uint8_t>(0x80 >> (flip % 8));
      }
      uint64_t expected = 0;
      for (size_t i = 0; i < f.rules.rules.size(); ++i)
        if (f.rules.rules[i].peers->contains(family, a.address.data())) expected |= 1ULL << i;
      uint64_t got = family == 4 ? datapath_members(c.peers_v4, a.address.data(), peer_probe_v4)
                                 : datapath_members(c.peers_v6, a.address.data(), peer_probe_v6);
      ASSERT_EQ(got, expected) << "round " << round << " probe " << probe;
    }
  }
}

}  // namespace
}  // namespace xdpguard::compile
