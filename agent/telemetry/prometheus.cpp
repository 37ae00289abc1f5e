#include "telemetry/prometheus.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "classify/decision.hpp"

namespace xdpguard::telemetry {
namespace {

bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, colon)) return false;
  return true;
}

// HELP text escapes only \ and newline.
std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

const char* direction_name(uint32_t dir) { return dir == 0 ? "ingress" : "egress"; }

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }
bool valid_label_name(std::string_view name) {
  // Names starting with __ are reserved for Prometheus itself.
  return valid_name(name, false) && !name.starts_with("__");
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  if (!valid_metric_name(name)) throw std::invalid_argument(fmt::format("metric name '{}'", name));
  if (type != "counter" && type != "gauge" && type != "untyped")
    throw std::invalid_argument(fmt::format("metric type '{}'", type));
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

void Exposition::sample_prefix(std::string_view name, const Labels& labels) {
  if (!valid_metric_name(name)) throw std::invalid_argument(fmt::format("metric name '{}'", name));
  text_ += name;
  if (labels.empty()) return;
  text_ += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!valid_label_name(labels[i].first))
      throw std::invalid_argument(fmt::format("label name '{}'", labels[i].first));
    text_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first,
                         escape_label_value(labels[i].second));
  }
  text_ += '}';
}

void Exposition::sample(std::string_view name, const Labels& labels, unsigned long long value) {
  sample_prefix(name, labels);
  text_ += fmt::format(" {}\n", value);
}

std::string render_metrics(const std::vector<InterfaceSnapshot>& ifaces,
                           const std::vector<InterfaceError>& failed, const AgentSnapshot* agent) {
  Exposition x;
  x.family("xdpguard_interface_up", "gauge",
           "1 if the interface's pins were read (xdpguard attached), 0 if not");
  for (const auto& s : ifaces)
    x.sample("xdpguard_interface_up", {{"interface", s.stats.iface}},
             uint64_t{s.stats.attached_mode ? 1u : 0u});
  for (const auto& f : failed) x.sample("xdpguard_interface_up", {{"interface", f.iface}}, uint64_t{0});

  // The policy in force, as labels (the info-metric convention): drift across
  // a fleet is `count by (hash)`; the hash is the one `xdpguard stats` shows.
  x.family("xdpguard_policy_info", "gauge",
           "The policy in force on the interface: name, source hash, mode, profile (value 1)");
  for (const auto& s : ifaces)
    x.sample("xdpguard_policy_info",
             {{"interface", s.stats.iface},
              {"policy", s.stats.policy_name},
              {"hash", kernel::policy_hash_text(s.stats.policy_hash)},
              {"mode", s.stats.audit ? "audit" : "enforce"},
              {"profile", s.stats.profile}},
             uint64_t{1});

  x.family("xdpguard_audit_mode", "gauge",
           "1 if the policy is in audit mode: drops are would-drops, the packets passed");
  for (const auto& s : ifaces)
    x.sample("xdpguard_audit_mode", {{"interface", s.stats.iface}}, uint64_t{s.stats.audit ? 1u : 0u});

  // Per rule, both directions, both verdicts: a rule's series exist from the
  // start, so rate() works from the first scrape.
  auto per_rule = [&](const char* name, bool bytes) {
    for (const auto& s : ifaces)
      for (int dir = 0; dir < 2; ++dir)
        for (const auto& r : dir == 0 ? s.stats.rules : s.stats.egress_rules) {
          Labels base{{"interface", s.stats.iface}, {"rule", r.id}, {"direction", direction_name(dir)}};
          Labels pass = base, drop = base;
          pass.emplace_back("verdict", "pass");
          drop.emplace_back("verdict", "drop");
          x.sample(name, pass, bytes ? r.counters.pass_bytes : r.counters.pass_packets);
          x.sample(name, drop, bytes ? r.counters.drop_bytes : r.counters.drop_packets);
        }
  };
  x.family("xdpguard_rule_packets_total", "counter",
           "Packets decided on a rule of the policy (verdict drop: the rule covers the port, "
           "the peer is not in its set)");
  per_rule("xdpguard_rule_packets_total", false);
  x.family("xdpguard_rule_bytes_total", "counter", "Bytes of the packets in xdpguard_rule_packets_total");
  per_rule("xdpguard_rule_bytes_total", true);

  auto per_reason = [&](const char* name, bool bytes) {
    for (const auto& s : ifaces)
      for (int dir = 0; dir < 2; ++dir)
        for (const auto& r : dir == 0 ? s.stats.reasons : s.stats.egress_reasons)
          x.sample(name,
                   {{"interface", s.stats.iface},
                    {"reason", std::string(drop_reason_name(r.reason))},
                    {"direction", direction_name(dir)}},
                   bytes ? r.counters.bytes : r.counters.packets);
  };
  x.family("xdpguard_drops_total", "counter",
           "Packets dropped (would-drop in audit mode or egress track mode), by reason");
  per_reason("xdpguard_drops_total", false);
  x.family("xdpguard_drop_bytes_total", "counter", "Bytes of the packets in xdpguard_drops_total");
  per_reason("xdpguard_drop_bytes_total", true);

  x.family("xdpguard_flow_table_entries", "gauge", "Flows in the flow table now");
  for (const auto& s : ifaces)
    x.sample("xdpguard_flow_table_entries", {{"interface", s.stats.iface}}, s.stats.flow_table.entries);
  x.family("xdpguard_flow_table_capacity", "gauge", "Max entries of the flow tables, IPv4 and IPv6 together (flow_table_size each)");
  for (const auto& s : ifaces)
    x.sample("xdpguard_flow_table_capacity", {{"interface", s.stats.iface}}, s.stats.flow_table.capacity);
  x.family("xdpguard_flow_inserts_total", "counter", "Flows recorded by the egress program");
  for (const auto& s : ifaces)
    x.sample("xdpguard_flow_inserts_total", {{"interface", s.stats.iface}}, s.stats.flow_table.inserts);
  x.family("xdpguard_flow_evictions_total", "counter",
           "Flows gone from the table: evicted when full or expired and reused (inserts - entries)");
  for (const auto& s : ifaces)
    x.sample("xdpguard_flow_evictions_total", {{"interface", s.stats.iface}}, s.stats.flow_table.evictions);

  // Map pressure (Cilium's cilium_bpf_map_pressure is entries / capacity):
  // both sides exported, the ratio is PromQL's (docs/telemetry.md).
  x.family("xdpguard_bpf_map_entries", "gauge",
           "Entries in a BPF map of the datapath now (flow, fragment, peer and learn tables)");
  for (const auto& s : ifaces)
    for (const auto& m : s.stats.maps)
      x.sample("xdpguard_bpf_map_entries", {{"interface", s.stats.iface}, {"map", m.map}}, m.entries);
  x.family("xdpguard_bpf_map_capacity", "gauge", "max_entries of the BPF map");
  for (const auto& s : ifaces)
    for (const auto& m : s.stats.maps)
      x.sample("xdpguard_bpf_map_capacity", {{"interface", s.stats.iface}, {"map", m.map}}, m.capacity);

  auto per_event_slot = [&](const char* name, auto field) {
    for (const auto& s : ifaces)
      for (uint32_t dir = 0; dir < 2; ++dir)
        for (uint32_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
          x.sample(name,
                   {{"interface", s.stats.iface},
                    {"reason", std::string(drop_reason_name(static_cast<DropReason>(r)))},
                    {"direction", direction_name(dir)}},
                   field(s.events[dir * XDPG_DROP_REASON_COUNT + r]));
  };
  x.family("xdpguard_events_emitted_total", "counter",
           "Drop events the datapath put in the ring buffer");
  per_event_slot("xdpguard_events_emitted_total", [](const xdpg_event_limit& l) { return l.emitted; });
  x.family("xdpguard_events_suppressed_total", "counter",
           "Drops not reported as events: over the per-CPU rate limit, or the ring buffer full");
  per_event_slot("xdpguard_events_suppressed_total",
                 [](const xdpg_event_limit& l) { return l.suppressed; });

  if (agent) {
    x.family("xdpguard_events_received_total", "counter",
             "Drop events this agent read from the ring buffer and logged");
    for (const auto& s : ifaces)
      x.sample("xdpguard_events_received_total", {{"interface", s.stats.iface}}, s.events_received);
    x.family("xdpguard_reloads_total", "counter", "Policy reloads put in force by this agent");
    x.sample("xdpguard_reloads_total", {}, agent->reloads);
    x.family("xdpguard_reload_failures_total", "counter",
             "Policy reloads rejected (invalid policy) or failed; the old policy stayed");
    x.sample("xdpguard_reload_failures_total", {}, agent->failed_reloads);
  }
  return x.text();
}

}  // namespace xdpguard::telemetry
