#include "telemetry/json.hpp"

#include <fmt/format.h>
#include <netinet/in.h>

#include "classify/decision.hpp"
#include "kernel/probe.hpp"

namespace xdpguard::telemetry {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;

}  // namespace

std::string json_text(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json settings_json(const kernel::DatapathSettings& s) {
  return {{"egress", kernel::egress_mode_name(s.egress_mode)},
          {"timeouts",
           {{"tcp_established", s.tcp_established_timeout_ns / kNsPerSecond},
            {"tcp_closing", s.tcp_closing_timeout_ns / kNsPerSecond},
            {"udp", s.udp_timeout_ns / kNsPerSecond},
            {"fragments", s.frag_timeout_ns / kNsPerSecond}}},
          {"clock", kernel::clock_name(s.clock)},
          {"xdp_multi_buffer", s.xdp_frags}};
}

Json rules_json(const std::vector<kernel::RuleStats>& rules) {
  Json out = Json::array();
  for (const auto& rs : rules)
    out.push_back({{"index", rs.index},
                   {"id", rs.id},
                   {"row", rs.row},
                   {"pass_packets", rs.counters.pass_packets},
                   {"pass_bytes", rs.counters.pass_bytes},
                   {"drop_packets", rs.counters.drop_packets},
                   {"drop_bytes", rs.counters.drop_bytes}});
  return out;
}

Json reasons_json(const std::vector<kernel::ReasonStats>& reasons) {
  Json out = Json::array();
  for (const auto& rs : reasons)
    out.push_back({{"reason", drop_reason_name(rs.reason)},
                   {"packets", rs.counters.packets},
                   {"bytes", rs.counters.bytes}});
  return out;
}

Json stats_json(const kernel::PinnedStats& s) {
  const auto& ft = s.flow_table;
  Json mode = nullptr;
  if (s.attached_mode) mode = kernel::to_string(*s.attached_mode);
  return {{"interface", s.iface},
          {"pin_dir", s.pin_dir},
          {"attached", s.attached_mode.has_value()},
          {"mode", mode},
          {"egress_attached", s.egress_attached},
          // policy.mode "audit": every drop below was counted and passed (would-drop).
          {"policy",
           {{"name", s.policy_name},
            {"profile", s.profile},
            {"hash", kernel::policy_hash_text(s.policy_hash)},
            {"mode", s.audit ? "audit" : "enforce"}}},
          {"settings", settings_json(s.settings)},
          {"rules", rules_json(s.rules)},
          {"drop_reasons", reasons_json(s.reasons)},
          {"egress_rules", rules_json(s.egress_rules)},
          {"egress_drop_reasons", reasons_json(s.egress_reasons)},
          {"flow_table",
           {{"entries", ft.entries},
            {"capacity", ft.capacity},
            {"inserts", ft.inserts},
            {"evictions", ft.evictions}}}};
}

std::vector<std::string> tcp_state_names(const xdpg_flow_key& k, const xdpg_flow_value& v) {
  std::vector<std::string> out;
  if (k.protocol != IPPROTO_TCP) return out;
  if (v.tcp_state & XDPG_FLOW_FIN_LOCAL) out.emplace_back("fin_local");
  if (v.tcp_state & XDPG_FLOW_FIN_REMOTE) out.emplace_back("fin_remote");
  if (v.tcp_state & XDPG_FLOW_RST) out.emplace_back("rst");
  return out;
}

Json flows_json(const kernel::FlowTable& table) {
  Json flows = Json::array();
  for (const auto& f : table.flows)
    flows.push_back({{"protocol", protocol_name(f.key.protocol)},
                     {"family", f.key.family},
                     {"local_addr", address_text(f.key.family, f.key.local_addr)},
                     {"local_port", f.key.local_port},
                     {"remote_addr", address_text(f.key.family, f.key.remote_addr)},
                     {"remote_port", f.key.remote_port},
                     {"rule", f.value.rule},
                     {"rule_id", f.rule_id},
                     {"age_seconds", f.age_ns / kNsPerSecond},
                     {"idle_seconds", f.idle_ns / kNsPerSecond},
                     {"tcp_state", tcp_state_names(f.key, f.value)},
                     {"replied", (f.value.flags & XDPG_FLOW_REPLIED) != 0},
                     {"live", f.live},
                     {"timeout_seconds",
                      kernel::flow_timeout_ns(f.key, f.value, table.settings) / kNsPerSecond}});
  return {{"interface", table.iface},
          {"settings", settings_json(table.settings)},
          {"capacity", table.capacity},
          {"flows", std::move(flows)}};
}

Json drops_json(const std::string& iface, const DropTops& tops, const EventCounters* events) {
  Json ports = Json::array(), peers = Json::array();
  for (const auto& p : tops.ports)
    ports.push_back({{"direction", direction_name(p.direction)},
                     {"protocol", protocol_name(p.protocol)},
                     {"port", p.port},
                     {"packets", p.packets}});
  for (const auto& p : tops.peers)
    peers.push_back({{"direction", direction_name(p.key.direction)},
                     {"address", address_text(p.key.family, p.key.addr)},
                     {"packets", p.packets}});
  Json out = {{"interface", iface},
              {"ports", std::move(ports)},
              {"peers", std::move(peers)},
              {"tracked_ports", tops.port_keys},
              {"tracked_peers", tops.peer_keys}};
  if (events) {
    auto totals = event_totals(*events);
    out["events_emitted"] = totals.emitted;
    out["events_suppressed"] = totals.suppressed;
  }
  return out;
}

}  // namespace xdpguard::telemetry
