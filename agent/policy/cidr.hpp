// CIDR text <-> Cidr, shared by the parser and the tests.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "policy/model.hpp"

namespace xdpguard::policy {

// "10.0.0.0/8", "2001:db8::/32", or a bare address (/32 or /128).
// Host bits set is an error whose message names the canonical prefix.
std::variant<Cidr, std::string> parse_cidr(std::string_view text);

// True when some address is in both.
bool cidrs_overlap(const Cidr& a, const Cidr& b);

}  // namespace xdpguard::policy
