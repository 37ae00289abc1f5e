#include "classify/lint.hpp"

#include <fmt/format.h>

#include <map>
#include <tuple>

namespace xdpguard::classify {
namespace {

std::string located(const policy::Rule& r) {
  return fmt::format("'{}' ({}:{})", r.id, r.where.file, r.where.line);
}

using Area = CellGroup;  // of one protocol and side
using AreaKey = std::tuple<size_t, policy::Protocol, Side>;  // other rule, protocol, side

std::string where_from(const PacketSpace& space, const Area& a) {
  const std::string from = describe_addresses(space, a.classes);
  return from.empty() ? "" : " from " + from;
}

}  // namespace

LintReport lint(const policy::RuleSet& rules) {
  LintReport report{{}, {}, PacketSpace({&rules})};
  const PacketSpace& space = report.space;
  const auto& entries = rules.rules;

  std::vector<size_t> admitted(entries.size(), 0);
  std::vector<std::map<AreaKey, Area>> lost(entries.size());
  std::map<std::tuple<policy::Protocol, Side, size_t, std::vector<size_t>>, Area> overlaps;
  std::vector<std::vector<const Cell*>> remote_cells(entries.size());
  for (const Cell& cell : space.cells()) {
    std::vector<size_t> admitting;
    for (size_t i = 0; i < entries.size(); ++i)
      if (space.admits(rules, i, cell)) admitting.push_back(i);
    const Decision d = space.decide(rules, cell);
    if (d.verdict != Verdict::Pass || !d.rule) continue;
    const size_t counted = *d.rule;
    for (size_t i : admitting) {
      ++admitted[i];
      if (i != counted) lost[i][{counted, cell.protocol, cell.side}].add(cell);
      if (cell.side == Side::RemotePort) remote_cells[i].push_back(&cell);
    }
    if (admitting.size() > 1) {
      std::vector<size_t> also;
      for (size_t i : admitting)
        if (i != counted) also.push_back(i);
      overlaps[{cell.protocol, cell.side, counted, also}].add(cell);
    }
  }

  std::vector<bool> never(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (lost[i].empty()) continue;
    size_t lost_cells = 0;
    std::string parts;
    for (const auto& [key, area] : lost[i]) {
      const auto& [winner, protocol, side] = key;
      lost_cells += area.values.size();
      parts += fmt::format("{}{}{} is counted on {}, which comes first", parts.empty() ? "" : "; ",
                           describe_values(protocol, side, area.values), where_from(space, area),
                           located(*entries[winner].rule));
    }
    const policy::Rule& r = *entries[i].rule;
    never[i] = lost_cells == admitted[i];
    report.warnings.push_back(
        {r.where, never[i] ? fmt::format("rule '{}' is never counted: {}; its counters stay 0 "
                                         "(remove it, or move it up if it should carry them)",
                                         r.id, parts)
                           : fmt::format("rule '{}' is counted only in part: {}", r.id, parts)});
  }

  // Replies from a remote port that arrive at a port a local-port rule
  // serves: the local-port rule wins and admits them without a flow.
  for (size_t b = 0; b < entries.size(); ++b) {
    if (never[b]) continue;  // that warning already says all of it
    std::map<AreaKey, Area> taken;
    for (const Cell* rc : remote_cells[b])
      for (const Cell& lc : space.cells()) {
        if (lc.side != Side::LocalPort || lc.protocol != rc->protocol ||
            lc.address_class != rc->address_class)
          continue;
        const uint16_t first = std::max(rc->first, lc.first), last = std::min(rc->last, lc.last);
        if (first > last) continue;
        const Decision d = space.decide_ports(rules, *rc, first, first);
        if (d.verdict == Verdict::Pass && d.rule && *d.rule != b)
          taken[{*d.rule, rc->protocol, Side::RemotePort}].add(first, last, rc->address_class);
      }
    const policy::Rule& r = *entries[b].rule;
    for (const auto& [key, area] : taken) {
      const auto& [winner, protocol, side] = key;
      const auto ports = describe_values(protocol, Side::LocalPort, area.values);
      report.warnings.push_back(
          {r.where,
           fmt::format("rule '{}' admits {} as replies, but those arriving at the same port of "
                       "the host ({}){} are counted on {}, which serves it: a local-port rule "
                       "admits them first, without a flow",
                       r.id, describe_values(protocol, side, area.values), ports,
                       where_from(space, area), located(*entries[winner].rule))});
    }
  }

  for (const auto& [key, area] : overlaps) {
    const auto& [protocol, side, counted, also] = key;
    report.overlaps.push_back({protocol, side, merge_ranges(area.values), area.classes, counted, also});
  }
  return report;
}

}  // namespace xdpguard::classify
