#include "learn/observations.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <tuple>

#include "policy/cidr.hpp"

namespace xdpguard::learn {

std::string address_text(const LearnedAddress& a) {
  policy::Cidr c;
  c.family = a.family;
  c.address = a.addr;
  c.prefix_length = a.family == 4 ? 32 : 128;
  std::string s = c.to_string();
  return s.substr(0, s.find('/'));
}

void merge(Observations& into, const Observations& more) {
  std::map<std::pair<std::string, LearnedAddress>, size_t> at;
  for (size_t i = 0; i < into.sightings.size(); ++i)
    at[{into.sightings[i].rule, into.sightings[i].peer}] = i;
  for (const Sighting& s : more.sightings) {
    auto it = at.find({s.rule, s.peer});
    if (it == at.end()) {
      at[{s.rule, s.peer}] = into.sightings.size();
      into.sightings.push_back(s);
      continue;
    }
    Sighting& t = into.sightings[it->second];
    t.packets += s.packets;
    t.first_seen = std::min(t.first_seen, s.first_seen);
    t.last_seen = std::max(t.last_seen, s.last_seen);
  }
  for (const auto& [a, how] : more.confirmed) into.confirmed[a] |= how;
  for (const auto& [rule, n] : more.overflow) into.overflow[rule] += n;
  into.confirm_overflow += more.confirm_overflow;
}

std::string to_text(const Observations& o) {
  std::string out = "# xdpguard learn observations v1\n";
  for (const Sighting& s : o.sightings)
    out += fmt::format("sighting {} {} {} {} {}\n", s.rule, address_text(s.peer), s.packets,
                       s.first_seen, s.last_seen);
  for (const auto& [a, how] : o.confirmed) out += fmt::format("confirmed {} {}\n", address_text(a), how);
  for (const auto& [rule, n] : o.overflow) out += fmt::format("overflow {} {}\n", rule, n);
  if (o.confirm_overflow) out += fmt::format("confirm_overflow {}\n", o.confirm_overflow);
  return out;
}

namespace {
bool parse_address(const std::string& text, LearnedAddress& out) {
  auto c = policy::parse_cidr(text);
  auto* cidr = std::get_if<policy::Cidr>(&c);
  if (!cidr || cidr->prefix_length != (cidr->family == 4 ? 32 : 128)) return false;
  out.family = static_cast<uint8_t>(cidr->family);
  out.addr = cidr->address;
  return true;
}
}  // namespace

bool from_text(const std::string& text, Observations& out, std::string& error) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::string kind, a, b;
    f >> kind;
    bool ok = false;
    if (kind == "sighting") {
      Sighting s;
      ok = static_cast<bool>(f >> s.rule >> a >> s.packets >> s.first_seen >> s.last_seen) &&
           parse_address(a, s.peer);
      if (ok) out.sightings.push_back(s);
    } else if (kind == "confirmed") {
      LearnedAddress addr;
      uint32_t how = 0;
      ok = static_cast<bool>(f >> a >> how) && parse_address(a, addr);
      if (ok) out.confirmed[addr] |= how;
    } else if (kind == "overflow") {
      uint64_t count = 0;
      ok = static_cast<bool>(f >> a >> count);
      if (ok) out.overflow[a] += count;
    } else if (kind == "confirm_overflow") {
      uint64_t count = 0;
      ok = static_cast<bool>(f >> count);
      if (ok) out.confirm_overflow += count;
    }
    if (!ok) {
      error = fmt::format("line {}: not an observation: '{}'", n, line);
      return false;
    }
  }
  return true;
}

}  // namespace xdpguard::learn
