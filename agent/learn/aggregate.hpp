// Observed addresses -> the prefixes a proposed peer set lists.
//
// The rule (docs/learn.md): each address is its own /32 or /128, except that
// when at least `min_addresses` distinct addresses fall in one IPv4
// /v4_prefix (IPv6 /v6_prefix), that prefix replaces them. Nothing broader
// than /v4_prefix or /v6_prefix is ever proposed. The result is sorted, so
// it does not depend on the order the addresses came in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/learn_model.hpp"
#include "policy/model.hpp"

namespace xdpguard::learn {

struct AggregateOptions {
  uint8_t v4_prefix = 24;  // 8..32
  uint8_t v6_prefix = 64;  // 16..128
  size_t min_addresses = 2;  // >= 1
};
// "v4=24,v6=64,min=2" (any subset, any order); nullopt and `error` set if not.
std::optional<AggregateOptions> parse_aggregate(std::string_view text, std::string& error);

// What was seen of one address (or, after aggregation, of one prefix).
struct Evidence {
  classify::LearnedAddress addr;
  uint64_t packets = 0;
  int64_t first_seen = 0, last_seen = 0;  // Unix seconds
};

struct Prefix {
  policy::Cidr cidr;
  size_t addresses = 0;  // distinct addresses it stands for
  uint64_t packets = 0;
  int64_t first_seen = 0, last_seen = 0;
};

std::vector<Prefix> aggregate(const std::vector<Evidence>& addresses, const AggregateOptions&);

}  // namespace xdpguard::learn
