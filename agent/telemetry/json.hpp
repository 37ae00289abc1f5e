// The JSON documents of `stats --json`, `stats --drops --json`, `flows --json`,
// the counter arrays `replay --json` shares with them, and the text of any of
// them (docs/telemetry.md). Built as nlohmann-json values: every string is
// escaped by the library, never by string formatting.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/pin_readers.hpp"
#include "telemetry/drops.hpp"

namespace xdpguard::telemetry {

// Keys in insertion order: the documents keep the field order they always had.
using Json = nlohmann::ordered_json;

// One line, no newline. Strings that are not UTF-8 (an interface name is any
// bytes the kernel accepts; a rule id cut at rule_meta's fixed length may end
// inside a character) have each invalid byte sequence replaced by U+FFFD: the
// line stays valid JSON and the daemon does not throw over a name.
std::string json_text(const Json& value);

Json settings_json(const kernel::DatapathSettings& settings);
Json rules_json(const std::vector<kernel::RuleStats>& rules);
Json reasons_json(const std::vector<kernel::ReasonStats>& reasons);
// `stats --json`.
Json stats_json(const kernel::PinnedStats& stats);
// `flows --json`, the flows in the order given.
Json flows_json(const kernel::FlowTable& table);
// `stats --drops --json`; `events` null when the event counters were not read.
Json drops_json(const std::string& iface, const DropTops& tops, const EventCounters* events);

// "fin_local", "fin_remote", "rst": the TCP close states a flow has seen.
std::vector<std::string> tcp_state_names(const xdpg_flow_key& key, const xdpg_flow_value& value);

}  // namespace xdpguard::telemetry
