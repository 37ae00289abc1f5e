// Helpers shared by the BPF tests that compare the kernel programs with the
// reference classifier: the address universe of generated packets, counter
// sums of the reference's decisions, counter comparison and frame dumps.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "classify/decision.hpp"
#include "compile/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/model.hpp"
#include "xdpguard/maps.h"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::testing {

using Addr = std::array<uint8_t, 16>;

// Addresses come from a small universe so narrowed sets are hit often.
// Draws exactly three numbers from rng: generated sequences depend on it.
inline Addr universe_address(std::mt19937_64& rng, int family) {
  Addr a{};
  if (family == 4) {
    a[0] = 10;
    a[1] = static_cast<uint8_t>(rng() % 4);
    a[2] = static_cast<uint8_t>(rng() % 4);
    a[3] = static_cast<uint8_t>(rng() % 8);
  } else {
    a[0] = 0xfd;
    a[1] = static_cast<uint8_t>(rng() % 4);
    a[2] = static_cast<uint8_t>(rng() % 4);
    a[15] = static_cast<uint8_t>(rng() % 8);
  }
  return a;
}

// A prefix of the universe, from /8 to a single host.
inline policy::Cidr random_prefix(std::mt19937_64& rng, int family) {
  policy::Cidr c;
  c.family = family;
  c.address = universe_address(rng, family);
  static constexpr uint8_t kLen4[] = {8, 10, 16, 24, 30, 32};
  static constexpr uint8_t kLen6[] = {8, 16, 24, 64, 126, 128};
  c.prefix_length = family == 4 ? kLen4[rng() % 6] : kLen6[rng() % 6];
  for (int bit = c.prefix_length; bit < (family == 4 ? 32 : 128); ++bit)
    c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return c;
}

// Every peer set replaced by 1-3 random IPv4 and 1-3 random IPv6 prefixes.
inline void narrow_peer_sets(policy::Policy& pol, std::mt19937_64& rng) {
  for (auto& set : pol.peer_sets) {
    // A set of nobody (cidrs: [], e.g. monitoring) is as narrow as it gets; it
    // draws nothing, so the other sets narrow as they did without it.
    if (set.cidrs.empty()) continue;
    set.cidrs.clear();
    for (unsigned k = 0, n = 1 + rng() % 3; k < n; ++k) set.cidrs.push_back(random_prefix(rng, 4));
    for (unsigned k = 0, n = 1 + rng() % 3; k < n; ++k) set.cidrs.push_back(random_prefix(rng, 6));
  }
}

// Every peer set replaced by prefixes of many distinct lengths that nest
// across sets: for two universe anchors per family, the anchor truncated to
// IPv4 /1 /7 /8 /16 /23 /24 /31 /32 and IPv6 /1 /32 /48 /64 /127 /128; each
// set takes 1-4 of them per family, and one set also holds 0.0.0.0/0 and
// ::/0. So the datapath probes many lengths and must fold shorter prefixes
// of other rules' sets (and /0) into longer ones. Returns the addresses at
// and just past both ends of every prefix, where a wrong mask, a wrong probe
// order or a missing fold shows, [0] IPv4 and [1] IPv6.
using FamilyAddrs = std::array<std::vector<Addr>, 2>;
inline FamilyAddrs nest_peer_sets(policy::Policy& pol, std::mt19937_64& rng) {
  static constexpr uint8_t kLen4[] = {1, 7, 8, 16, 23, 24, 31, 32};
  static constexpr uint8_t kLen6[] = {1, 32, 48, 64, 127, 128};
  std::vector<policy::Cidr> pool[2];
  FamilyAddrs edges;
  for (int family : {4, 6}) {
    const int bits = family == 4 ? 32 : 128;
    for (int anchor = 0; anchor < 2; ++anchor) {
      const Addr a = universe_address(rng, family);
      auto lengths = family == 4 ? std::span<const uint8_t>(kLen4) : std::span<const uint8_t>(kLen6);
      for (uint8_t len : lengths) {
        policy::Cidr c;
        c.family = family;
        c.prefix_length = len;
        c.address = a;
        Addr last = a;
        for (int bit = len; bit < bits; ++bit) {
          c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
          last[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
        }
        pool[family == 6].push_back(c);
        // first - 1, first, last, last + 1: borrow and carry run from the
        // last byte up (wrapping within the family's width)
        Addr before = c.address, after = last;
        for (int i = bits / 8 - 1; i >= 0 && before[i]-- == 0; --i) continue;
        for (int i = bits / 8 - 1; i >= 0 && ++after[i] == 0; --i) continue;
        edges[family == 6].insert(edges[family == 6].end(), {before, c.address, last, after});
      }
    }
  }
  const size_t open_set = rng() % pol.peer_sets.size();
  for (size_t k = 0; k < pol.peer_sets.size(); ++k) {
    auto& set = pol.peer_sets[k];
    set.cidrs.clear();
    for (const auto& family_pool : pool)
      for (unsigned n = 1 + rng() % 4; n > 0; --n)
        set.cidrs.push_back(family_pool[rng() % family_pool.size()]);
    if (k == open_set) {
      policy::Cidr any4, any6;
      any4.family = 4;
      any6.family = 6;
      set.cidrs.push_back(any4);
      set.cidrs.push_back(any6);
    }
  }
  return edges;
}

// The embedded default policy, compiled with its default profile.
inline compile::CompiledPolicy compiled_default_policy() {
  auto parsed = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
  EXPECT_TRUE(parsed.ok());
  if (!parsed.ok()) return {};
  auto selected = policy::select_rules(*parsed.policy, "");
  EXPECT_TRUE(std::holds_alternative<policy::RuleSet>(selected));
  if (!std::holds_alternative<policy::RuleSet>(selected)) return {};
  return compile::compile(std::get<policy::RuleSet>(selected));
}

// The protected host: 192.0.2.1 or 2001:db8::1.
inline Addr host_address(int family) {
  Addr a{};
  if (family == 4) {
    a = {192, 0, 2, 1};
  } else {
    a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8; a[15] = 1;
  }
  return a;
}

// The per-rule and per-reason counters the kernel must hold after the
// decisions counted here.
using ExpectedCounters = CounterSums;

// Fatal on the first difference; callers check HasFatalFailure().
inline void expect_counters_equal(const std::vector<xdpg_rule_counters>& got_rules,
                                  const std::vector<xdpg_reason_counters>& got_reasons,
                                  const ExpectedCounters& want, const policy::RuleSet& rules,
                                  const std::string& where) {
  ASSERT_GE(got_rules.size(), want.rules.size()) << where;
  ASSERT_GE(got_reasons.size(), want.reasons.size()) << where;
  for (size_t i = 0; i < XDPG_MAX_RULES; ++i) {
    const auto& g = got_rules[i];
    const auto& w = want.rules[i];
    std::string name = i < rules.rules.size() ? rules.rules[i].rule->id : std::to_string(i);
    ASSERT_EQ(g.pass_packets, w.pass_packets) << where << " rule " << name;
    ASSERT_EQ(g.pass_bytes, w.pass_bytes) << where << " rule " << name;
    ASSERT_EQ(g.drop_packets, w.drop_packets) << where << " rule " << name;
    ASSERT_EQ(g.drop_bytes, w.drop_bytes) << where << " rule " << name;
  }
  for (size_t i = 1; i < XDPG_DROP_REASON_COUNT; ++i) {
    const char* name = drop_reason_name(static_cast<DropReason>(i));
    ASSERT_EQ(got_reasons[i].packets, want.reasons[i].packets) << where << " " << name;
    ASSERT_EQ(got_reasons[i].bytes, want.reasons[i].bytes) << where << " " << name;
  }
}

inline std::string hex(std::span<const uint8_t> frame) {
  std::string out;
  char buf[4];
  for (uint8_t b : frame) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

}  // namespace xdpguard::testing
