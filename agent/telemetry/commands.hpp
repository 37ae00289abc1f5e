// The telemetry subcommands and `stats` modes:
//   xdpguard events  --iface IF [--iface IF2] [--json] [--count N] [--timeout S]
//   xdpguard metrics --iface IF [--textfile PATH]
//   xdpguard stats --drops / --watch (called from cli/commands.cpp)
#pragma once

#include <cstddef>
#include <string>

namespace xdpguard::telemetry {

int run_events(int argc, char** argv);
int run_metrics(int argc, char** argv);

// The top `limit` dropped destination ports and peers, both directions.
int print_drops(const std::string& iface, bool json, size_t limit);
// A per-rule table with rates, redrawn in place every `interval_s` seconds
// (plain successive tables when stdout is not a terminal); `count` 0: until
// interrupted.
int watch_stats(const std::string& iface, double interval_s, unsigned count);

}  // namespace xdpguard::telemetry
