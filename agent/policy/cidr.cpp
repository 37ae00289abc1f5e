#include "policy/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace xdpguard::policy {

namespace {

// True when the first `bits` bits of a and b agree.
bool same_prefix(const uint8_t* a, const uint8_t* b, int bits) {
  int i = 0;
  for (; bits >= 8; bits -= 8, ++i)
    if (a[i] != b[i]) return false;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a[i] & mask) == (b[i] & mask);
}

}  // namespace

std::variant<Cidr, std::string> parse_cidr(std::string_view text) {
  const std::string s(text);
  const auto slash = s.find('/');
  const std::string addr = s.substr(0, slash);
  Cidr c;
  if (inet_pton(AF_INET, addr.c_str(), c.address.data()) == 1) {
    c.family = 4;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.address.data()) == 1) {
    c.family = 6;
  } else {
    return "'" + s + "' is not an IPv4 or IPv6 address or CIDR";
  }
  const int max_len = c.family == 4 ? 32 : 128;
  int len = max_len;
  if (slash != std::string::npos) {
    const std::string p = s.substr(slash + 1);
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), len);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || len < 0 || len > max_len)
      return "'" + s + "': prefix length must be 0-" + std::to_string(max_len);
  }
  c.prefix_length = static_cast<uint8_t>(len);
  Cidr canonical = c;
  canonical.address = {};
  for (int bit = 0; bit < len; ++bit)
    if (c.address[bit / 8] & (0x80 >> (bit % 8)))
      canonical.address[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  if (canonical.address != c.address)
    return "'" + s + "' has host bits set; the prefix is " + canonical.to_string();
  return c;
}

bool cidrs_overlap(const Cidr& a, const Cidr& b) {
  if (a.family != b.family) return false;
  return same_prefix(a.address.data(), b.address.data(),
                     std::min(a.prefix_length, b.prefix_length));
}

bool Cidr::contains(int fam, const uint8_t* addr) const {
  return fam == family && same_prefix(address.data(), addr, prefix_length);
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, address.data(), buf, sizeof(buf));
  return std::string(buf) + "/" + std::to_string(prefix_length);
}

}  // namespace xdpguard::policy
