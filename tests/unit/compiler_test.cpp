// The compiler turns rules into port_table slots and folded LPM prefixes.
// - every port of every range sets the rule's bit in the right kind, nothing else
// - the longest matching prefix carries exactly the rules whose peer set holds
//   the address (checked against PeerSet::contains on random sets/addresses)
#include <arpa/inet.h>

#include <cstring>
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
  ASSERT_EQ(c.peers_v4.size(), 3u);
  EXPECT_EQ(c.peers_v4[0].first.prefixlen, 0u);
  EXPECT_EQ(c.peers_v4[0].second, 0b100u);
  EXPECT_EQ(c.peers_v4[1].first.prefixlen, 8u);
  EXPECT_EQ(c.peers_v4[1].second, 0b101u);
  EXPECT_EQ(c.peers_v4[2].first.prefixlen, 16u);
  EXPECT_EQ(c.peers_v4[2].second, 0b111u);
  ASSERT_EQ(c.peers_v6.size(), 2u);
  EXPECT_EQ(c.peers_v6[1].second, 0b1100u);
}

// Longest-prefix match over the compiled IPv4 entries, the way the kernel's trie answers.
uint64_t longest_match(const CompiledPolicy& c, const uint8_t* addr) {
  int best = -1;
  uint64_t mask = 0;
  for (const auto& [key, value] : c.peers_v4) {
    Cidr probe;
    probe.family = 4;
    std::copy(key.addr, key.addr + 4, probe.address.begin());
    probe.prefix_length = static_cast<uint8_t>(key.prefixlen);
    if (probe.contains(4, addr) && static_cast<int>(key.prefixlen) > best) {
      best = static_cast<int>(key.prefixlen);
      mask = value;
    }
  }
  return mask;
}

TEST(Compiler, LongestMatchEqualsSetMembershipOnRandomSets) {
  std::mt19937 rng(20261127);
  for (int round = 0; round < 20; ++round) {
    Fixture f;
    const int sets = 12;
    for (int s = 0; s < sets; ++s) {
      std::vector<Cidr> cidrs;
      int n = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        // Few distinct high bytes so prefixes nest and overlap often.
        uint32_t a = ((rng() % 4) << 30) | (rng() & 0x3FFFFFFF);
        uint8_t len = static_cast<uint8_t>(rng() % 33);
        uint32_t masked = len == 0 ? 0 : a & (0xFFFFFFFFu << (32 - len));
        Cidr c;
        c.family = 4;
        uint32_t be = htonl(masked);
        std::memcpy(c.address.data(), &be, 4);
        c.prefix_length = len;
        cidrs.push_back(c);
      }
      f.add_set("s" + std::to_string(s), cidrs);
    }
    for (int s = 0; s < sets; ++s) f.add_rule(tcp_local("r" + std::to_string(s), "s" + std::to_string(s), 1, 1));
    f.finish();
    CompiledPolicy c = compile(f.rules);
    for (int probe = 0; probe < 2000; ++probe) {
      uint32_t be = htonl(((rng() % 4) << 30) | (rng() & 0x3FFFFFFF));
      auto* addr = reinterpret_cast<const uint8_t*>(&be);
      uint64_t expected = 0;
      for (size_t i = 0; i < f.rules.rules.size(); ++i)
        if (f.rules.rules[i].peers->contains(4, addr)) expected |= 1ULL << i;
      ASSERT_EQ(longest_match(c, addr), expected) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace xdpguard::compile
