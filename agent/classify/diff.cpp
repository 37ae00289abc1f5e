#include "classify/diff.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace xdpguard::classify {

const char* to_string(Change::Kind k) {
  switch (k) {
    case Change::Kind::Admitted: return "admitted";
    case Change::Kind::Refused: return "refused";
    case Change::Kind::Recounted: return "recounted";
    case Change::Kind::RepliesRefused: return "replies refused";
    case Change::Kind::RepliesSent: return "replies sent";
  }
  return "?";
}

DiffReport diff(const policy::RuleSet& before, const policy::RuleSet& after) {
  DiffReport report{{}, PacketSpace({&before, &after})};
  // The rule a set counts a cell on, or null when it refuses the cell.
  auto counted = [&](const policy::RuleSet& rules, const Cell& cell) -> const policy::Rule* {
    const Decision d = report.space.decide(rules, cell);
    return d.verdict == Verdict::Pass && d.rule ? rules.rules[*d.rule].rule : nullptr;
  };
  using Key = std::tuple<policy::Protocol, Side, Change::Kind, std::string, std::string>;
  std::map<Key, Change> grouped;
  auto record = [&](Change::Kind kind, const Cell& cell, const policy::Rule* was,
                    const policy::Rule* now) {
    Change& c = grouped[{cell.protocol, cell.side, kind, was ? was->id : "", now ? now->id : ""}];
    c.kind = kind;
    c.protocol = cell.protocol;
    c.side = cell.side;
    c.before = was;
    c.after = now;
    c.cells.add(cell);
  };
  for (const Cell& cell : report.space.cells()) {
    const policy::Rule* was = counted(before, cell);
    const policy::Rule* now = counted(after, cell);
    if (!was && !now) continue;
    if (!was || !now) {
      record(!was ? Change::Kind::Admitted : Change::Kind::Refused, cell, was, now);
      continue;
    }
    // Rules are the same rule across policies when their ids are.
    if (was->id != now->id) record(Change::Kind::Recounted, cell, was, now);
    if (cell.side != Side::LocalPort) continue;
    const bool sent_before = report.space.decide_reply(before, cell).verdict == Verdict::Pass;
    const bool sent_after = report.space.decide_reply(after, cell).verdict == Verdict::Pass;
    if (sent_before != sent_after)
      record(sent_before ? Change::Kind::RepliesRefused : Change::Kind::RepliesSent, cell, was, now);
  }
  for (auto& [key, change] : grouped) {
    change.cells.values = merge_ranges(std::move(change.cells.values));
    report.changes.push_back(std::move(change));
  }
  // By protocol, side and the first value, as one reads a port list.
  std::stable_sort(report.changes.begin(), report.changes.end(), [](const Change& a, const Change& b) {
    return std::tuple(a.protocol, a.side, a.cells.values.front()) <
           std::tuple(b.protocol, b.side, b.cells.values.front());
  });
  return report;
}

}  // namespace xdpguard::classify
