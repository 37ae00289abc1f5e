#include "learn/aggregate.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <tuple>

namespace xdpguard::learn {
namespace {

std::array<uint8_t, 16> masked(const std::array<uint8_t, 16>& a, int length) {
  std::array<uint8_t, 16> out{};
  for (int bit = 0; bit < length; ++bit)
    if (a[bit / 8] & (0x80 >> (bit % 8))) out[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  return out;
}

policy::Cidr cidr_of(int family, const std::array<uint8_t, 16>& addr, int length) {
  policy::Cidr c;
  c.family = family;
  c.address = masked(addr, length);
  c.prefix_length = static_cast<uint8_t>(length);
  return c;
}

// `p` also stands for `addresses` more addresses with this evidence.
void absorb(Prefix& p, size_t addresses, uint64_t packets, int64_t first, int64_t last) {
  p.first_seen = p.addresses ? std::min(p.first_seen, first) : first;
  p.last_seen = p.addresses ? std::max(p.last_seen, last) : last;
  p.packets += packets;
  p.addresses += addresses;
}

}  // namespace

std::optional<AggregateOptions> parse_aggregate(std::string_view text, std::string& error) {
  AggregateOptions o;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    unsigned value = 0;
    std::string_view digits = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    bool number = !digits.empty() && ec == std::errc() && end == digits.data() + digits.size();
    if (key == "v4" && number && value >= 8 && value <= 32) {
      o.v4_prefix = static_cast<uint8_t>(value);
    } else if (key == "v6" && number && value >= 16 && value <= 128) {
      o.v6_prefix = static_cast<uint8_t>(value);
    } else if (key == "min" && number && value >= 1) {
      o.min_addresses = value;
    } else {
      error = "--aggregate: '" + std::string(item) +
              "' is not one of v4=8..32, v6=16..128, min=1 or more";
      return std::nullopt;
    }
  }
  return o;
}

std::vector<Prefix> aggregate(const std::vector<Evidence>& addresses, const AggregateOptions& o) {
  // Distinct addresses first: the same address seen twice is one address.
  std::map<classify::LearnedAddress, Prefix> singles;
  for (const Evidence& e : addresses) {
    Prefix& p = singles[e.addr];
    const bool fresh = p.addresses == 0;
    if (fresh) p.cidr = cidr_of(e.addr.family, e.addr.addr, e.addr.family == 4 ? 32 : 128);
    absorb(p, fresh ? 1 : 0, e.packets, e.first_seen, e.last_seen);
  }
  // Then the groups they fall in at the widest length allowed.
  std::map<std::tuple<int, std::array<uint8_t, 16>>, std::vector<const Prefix*>> groups;
  for (const auto& [addr, p] : singles) {
    int limit = addr.family == 4 ? o.v4_prefix : o.v6_prefix;
    groups[{addr.family, masked(addr.addr, limit)}].push_back(&p);
  }
  std::vector<Prefix> out;
  for (const auto& [group, members] : groups) {
    const auto& [family, base] = group;
    if (members.size() >= o.min_addresses && o.min_addresses > 0 &&
        (family == 4 ? o.v4_prefix < 32 : o.v6_prefix < 128)) {
      Prefix agg;
      agg.cidr = cidr_of(family, base, family == 4 ? o.v4_prefix : o.v6_prefix);
      for (const Prefix* m : members) absorb(agg, 1, m->packets, m->first_seen, m->last_seen);
      out.push_back(agg);
    } else {
      for (const Prefix* m : members) out.push_back(*m);
    }
  }
  std::sort(out.begin(), out.end(), [](const Prefix& a, const Prefix& b) {
    return std::tie(a.cidr.family, a.cidr.address, a.cidr.prefix_length) <
           std::tie(b.cidr.family, b.cidr.address, b.cidr.prefix_length);
  });
  return out;
}

}  // namespace xdpguard::learn
