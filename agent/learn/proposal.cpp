#include "learn/proposal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <sstream>

namespace xdpguard::learn {
namespace {

std::string utc(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%MZ", &tm);
  return buf;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

size_t indent_of(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  return i;
}

bool blank_or_comment(const std::string& line) {
  size_t i = indent_of(line);
  return i == line.size() || line[i] == '#';
}

// The last line (0-based) of the value of the key on line `key` whose key
// starts at column `col`: a flow sequence up to its closing bracket, or a
// block sequence of the lines indented further (or "- " items at `col`).
size_t value_end(const std::vector<std::string>& lines, size_t key, size_t col) {
  const std::string& first = lines[key];
  size_t colon = first.find(':', col);
  size_t start = colon == std::string::npos ? first.size() : first.find_first_not_of(' ', colon + 1);
  if (start != std::string::npos && first[start] == '[') {
    int depth = 0;
    for (size_t l = key; l < lines.size(); ++l)
      for (size_t c = l == key ? start : 0; c < lines[l].size(); ++c) {
        if (lines[l][c] == '#' && depth == 0) break;
        if (lines[l][c] == '[') ++depth;
        if (lines[l][c] == ']' && --depth == 0) return l;
      }
    return key;
  }
  size_t last = key;
  for (size_t l = key + 1; l < lines.size(); ++l) {
    if (blank_or_comment(lines[l])) continue;
    size_t ind = indent_of(lines[l]);
    if (ind > col || (ind == col && lines[l].compare(ind, 1, "-") == 0))
      last = l;
    else
      break;
  }
  return last;
}

std::string evidence_comment(const Prefix& p) {
  return fmt::format("{} address{}, {} packet{}, seen {} to {}", p.addresses,
                     p.addresses == 1 ? "" : "es", p.packets, p.packets == 1 ? "" : "s",
                     utc(p.first_seen), utc(p.last_seen));
}

// The replacement of a set's `cidrs:` key and value.
std::vector<std::string> cidrs_lines(const policy::PeerSet& set, const SetReport& r,
                                     const std::string& pad) {
  std::vector<std::string> out;
  const size_t unproposed = r.unconfirmed.size() + r.unconfirmable.size();
  if (r.open && r.proposed.empty()) {
    out.push_back(fmt::format("{}cidrs: []  # xdpguard learn: no confirmed peer; {} seen and not "
                              "proposed (see the report)",
                              pad, unproposed));
    return out;
  }
  out.push_back(fmt::format("{}cidrs:  # xdpguard learn: {} prefix{} {} {} confirmed peer{}{}", pad,
                            r.proposed.size(), r.proposed.size() == 1 ? "" : "es",
                            r.open ? "from" : "added for", r.confirmed.size(),
                            r.confirmed.size() == 1 ? "" : "s",
                            unproposed ? fmt::format("; {} seen and not proposed", unproposed) : ""));
  if (!r.open)
    for (const auto& c : set.cidrs) out.push_back(fmt::format("{}  - \"{}\"", pad, c.to_string()));
  for (const Prefix& p : r.proposed)
    out.push_back(fmt::format("{}  - \"{}\"  # {}", pad, p.cidr.to_string(), evidence_comment(p)));
  return out;
}

// What the rules of a set saw, per address.
struct AddressSeen {
  Evidence evidence;
  bool on_confirmable_rule = false;  // seen on a rule where it could have confirmed
};

}  // namespace

bool confirmable(const policy::Rule& rule) {
  if (rule.flow == policy::Flow::ReceiveOnly) return false;
  return rule.protocol == policy::Protocol::Tcp || rule.initiator != policy::Initiator::Remote;
}

Proposal propose(const policy::Policy& policy, const std::string& text,
                 const policy::RuleSet& rules, const Observations& seen,
                 const ProposeOptions& options) {
  Proposal out;
  out.confirm_overflow = seen.confirm_overflow;
  std::map<std::string, size_t> report_of;  // rule id -> index in out.rules
  for (const auto& e : rules.rules) {
    RuleReport r;
    r.id = e.rule->id;
    r.set = e.peers ? e.peers->name : "";
    r.learned = e.peers && e.peers->to_fill_in();
    r.unconfirmable = !confirmable(*e.rule);
    if (auto it = seen.overflow.find(r.id); it != seen.overflow.end()) r.overflow = it->second;
    report_of[r.id] = out.rules.size();
    out.rules.push_back(r);
  }
  std::map<std::string, std::map<LearnedAddress, AddressSeen>> by_set;
  for (const Sighting& s : seen.sightings) {
    auto it = report_of.find(s.rule);
    if (it == report_of.end() || s.last_seen < options.since) continue;
    RuleReport& r = out.rules[it->second];
    ++r.peers;
    r.packets += s.packets;
    if (seen.confirmed.count(s.peer)) ++r.confirmed;
    if (r.set.empty()) continue;
    AddressSeen& a = by_set[r.set][s.peer];
    if (a.evidence.packets == 0) {
      a.evidence = {s.peer, 0, s.first_seen, s.last_seen};
    } else {
      a.evidence.first_seen = std::min(a.evidence.first_seen, s.first_seen);
      a.evidence.last_seen = std::max(a.evidence.last_seen, s.last_seen);
    }
    a.evidence.packets += s.packets;
    a.on_confirmable_rule |= !r.unconfirmable;
  }

  std::vector<std::string> lines = split_lines(text);
  struct Edit {
    size_t first, last;  // 0-based, inclusive; first > last inserts before `first`
    std::vector<std::string> with;
  };
  std::vector<Edit> edits;
  for (const policy::PeerSet& set : policy.peer_sets) {
    if (set.name == policy::kAnywhereSet) continue;
    bool used = std::any_of(rules.rules.begin(), rules.rules.end(),
                            [&](const auto& e) { return e.peers == &set; });
    if (!used) continue;
    SetReport r;
    r.name = set.name;
    r.open = set.to_fill_in();
    r.from_file = set.from_file;
    for (const auto& [addr, a] : by_set[set.name]) {
      if (!r.open && set.contains(addr.family, addr.addr.data())) continue;  // nothing to add
      if (seen.confirmed.count(addr))
        r.confirmed.push_back(a.evidence);
      else if (a.on_confirmable_rule)
        r.unconfirmed.push_back(a.evidence);
      else
        r.unconfirmable.push_back(a.evidence);
    }
    r.no_traffic = r.open && by_set[set.name].empty();
    std::vector<Evidence> proposed = r.confirmed;
    if (options.include_unconfirmable)
      proposed.insert(proposed.end(), r.unconfirmable.begin(), r.unconfirmable.end());
    r.proposed = aggregate(proposed, options.aggregate);
    if (!r.open && r.proposed.empty() && r.unconfirmed.empty() && r.unconfirmable.empty()) continue;

    const size_t key = static_cast<size_t>(set.cidrs_where.line) - 1;
    const bool editable = set.cidrs_where.line > 0 && key < lines.size() && !r.from_file;
    if (editable) {
      const size_t col = static_cast<size_t>(set.cidrs_where.column) - 1;
      const std::string pad(col, ' ');
      if (r.no_traffic && options.empty_unseen)
        edits.push_back({key, value_end(lines, key, col),
                         {pad + "cidrs: []  # xdpguard learn: no rule of this set saw a peer in "
                                "the window; emptied (--empty-unseen)"}});
      else if (r.no_traffic)
        edits.push_back({key, key - 1,
                         {pad + "# xdpguard learn: no rule of this set saw a peer in the window; "
                                "left as it was: fill it in, empty it, or remove its rules"}});
      else if (r.open || !r.proposed.empty())
        edits.push_back({key, value_end(lines, key, col), cidrs_lines(set, r, pad)});
    }
    out.sets.push_back(std::move(r));
  }
  // Bottom-up, so that earlier line numbers stay valid.
  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.first > b.first; });
  for (const Edit& e : edits) {
    auto at = lines.begin() + static_cast<std::ptrdiff_t>(e.first);
    if (e.last + 1 > e.first) at = lines.erase(at, lines.begin() + static_cast<std::ptrdiff_t>(e.last) + 1);
    lines.insert(at, e.with.begin(), e.with.end());
  }
  out.text = "# Proposed by xdpguard learn " + options.generated +
             ". Review every set marked 'xdpguard learn' before applying it (docs/learn.md).\n";
  for (const std::string& l : lines) out.text += l + "\n";
  return out;
}

}  // namespace xdpguard::learn
