// Reading an attached datapath from its pins alone (no policy, no loaded
// skeleton): the counters for `stats`, the flow table for `flows`, what
// learning recorded for `learn`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "classify/decision.hpp"
#include "kernel/attach.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/pin_dir.hpp"
#include "kernel/result.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::kernel {

struct RuleStats {
  uint32_t index = 0;
  std::string id;
  std::string row;
  xdpg_rule_counters counters{};
};

struct ReasonStats {
  DropReason reason = DropReason::NoRule;
  xdpg_reason_counters counters{};
};

// Every drop reason but none, in enum order, with its counters.
std::vector<ReasonStats> reason_stats(const std::vector<xdpg_reason_counters>& counts);

// The settings the programs were loaded with (from the info map).
struct DatapathSettings {
  uint8_t egress_mode = XDPG_EGRESS_OFF;
  uint64_t tcp_established_timeout_ns = 0;
  uint64_t tcp_closing_timeout_ns = 0;
  uint64_t udp_timeout_ns = 0;
  uint64_t frag_timeout_ns = 0;
  uint8_t clock = XDPG_CLOCK_PRECISE;  // enum xdpg_clock of the times in flows and frags
  bool xdp_frags = false;              // the XDP program is multi-buffer aware
};
const char* egress_mode_name(uint8_t mode);  // "off", "track", "enforce"

struct FlowTableStats {
  uint64_t entries = 0;   // keys now in flows_v4 and flows
  uint64_t capacity = 0;  // max_entries of flows_v4 and flows together
  uint64_t inserts = 0;   // flow_counters.inserts
  // inserts - entries (the agent deletes no flows; docs/datapath.md 8.5).
  uint64_t evictions = 0;
};

// One map's fill: Prometheus' xdpguard_bpf_map_entries / _capacity.
struct MapPressure {
  std::string map;  // the pin name (kernel::map_name)
  uint64_t entries = 0;
  uint64_t capacity = 0;
};

struct PinnedStats {
  std::string iface;
  std::string pin_dir;
  std::string policy_name;
  std::string profile;
  uint64_t policy_hash = 0;
  std::optional<XdpMode> attached_mode;  // nullopt: pins exist, program not attached
  bool egress_attached = false;          // our TC egress filter is on the interface
  DatapathSettings settings;
  bool audit = false;                    // audit mode: the drops below were passed
  std::vector<RuleStats> rules;          // rule_count entries, by index
  std::vector<ReasonStats> reasons;      // every drop reason, `none` left out
  std::vector<RuleStats> egress_rules;   // the same, counted by the egress program
  std::vector<ReasonStats> egress_reasons;
  FlowTableStats flow_table;
  // flows_v4, flows, frags, peers_v4, peers_v6, learn_peers, learn_confirmed.
  std::vector<MapPressure> maps;
};

// The policy hash as `stats` and the metrics show it: 16 hex digits.
std::string policy_hash_text(uint64_t hash);

// Everything from the pins alone (no policy needed).
Result<PinnedStats> read_stats(const std::string& iface,
                               const std::string& pin_root = kDefaultPinRoot);

// docs/datapath.md 8.3; `now_ns` on the datapath's clock (settings.clock,
// kernel::clock_now_ns).
uint64_t flow_timeout_ns(const xdpg_flow_key&, const xdpg_flow_value&, const DatapathSettings&);
bool flow_live(const xdpg_flow_key&, const xdpg_flow_value&, const DatapathSettings&,
               uint64_t now_ns);

struct FlowEntry {
  xdpg_flow_key key{};
  xdpg_flow_value value{};
  std::string rule_id;  // "" if the slot holds no rule (value.rule is a slot)
  uint64_t age_ns = 0;   // since created
  uint64_t idle_ns = 0;  // since the last packet either way
  bool live = false;
};

struct FlowTable {
  std::string iface;
  DatapathSettings settings;
  uint64_t capacity = 0;
  std::vector<FlowEntry> flows;  // in map order
};

// What learning recorded (docs/learn.md), from the pins alone.
struct PinnedLearn {
  DatapathSettings settings;
  bool learning = false;  // the programs were loaded with learning on
  bool audit = false;
  uint32_t table_size = 0;                  // max_entries of each learn table
  std::vector<std::string> slot_rule_ids;   // by slot; "" for a free slot
  LearnSnapshot snapshot;                   // times on the datapath's clock
  uint64_t now_ns = 0;                      // that clock, when read
  uint32_t peers_map_id = 0;  // learn_peers' kernel id: new maps (a new attach), new id
};
Result<PinnedLearn> read_learned(const std::string& iface,
                                 const std::string& pin_root = kDefaultPinRoot);

// The tracked flows, from the pins alone.
Result<FlowTable> read_flows(const std::string& iface,
                             const std::string& pin_root = kDefaultPinRoot);

}  // namespace xdpguard::kernel
