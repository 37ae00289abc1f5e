// The Prometheus text exposition format (version 0.0.4), and xdpguard's
// metrics in it. Pure: the snapshot comes from the pins (telemetry/drops.hpp,
// kernel::read_stats) and from the daemon; this file only formats.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernel/pin_readers.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A label value with \, " and newline escaped, as the format requires.
std::string escape_label_value(std::string_view v);
// [a-zA-Z_:][a-zA-Z0-9_:]* (metric names), [a-zA-Z_][a-zA-Z0-9_]* (label names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// Builds an exposition: one family (# HELP, # TYPE) followed by its samples.
// Names are checked: an invalid one is a programming error and throws
// std::invalid_argument (never from data: label values are escaped).
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, unsigned long long value);
  const std::string& text() const { return text_; }

 private:
  void sample_prefix(std::string_view name, const Labels& labels);
  std::string text_;
};

// What one interface's pins say, read at one moment.
struct InterfaceSnapshot {
  kernel::PinnedStats stats;
  // event_limits summed over CPUs, indexed direction * XDPG_DROP_REASON_COUNT + reason.
  std::array<xdpg_event_limit, XDPG_EVENT_LIMIT_ENTRIES> events{};
  uint64_t events_received = 0;  // by this agent, since it started (daemon only)
};

// Counters only the daemon has.
struct AgentSnapshot {
  uint64_t reloads = 0;
  uint64_t failed_reloads = 0;
};

struct InterfaceError {
  std::string iface;
  std::string message;
};

// Every xdpguard metric for these interfaces; an interface that could not be
// read shows as xdpguard_interface_up 0. `agent` null: no daemon metrics.
std::string render_metrics(const std::vector<InterfaceSnapshot>& ifaces,
                           const std::vector<InterfaceError>& failed, const AgentSnapshot* agent);

}  // namespace xdpguard::telemetry
