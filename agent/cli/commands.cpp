// The subcommands. Each parses its own options, does one thing, and reports
// failure as one line on stderr with a non-zero exit code.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>

#include <algorithm>
#include <cxxopts.hpp>
#include <set>
#include <variant>

#include "classify/diff.hpp"
#include "classify/lint.hpp"
#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "cli/cli.hpp"
#include "daemon/apply.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/attach.hpp"
#include "kernel/pin_readers.hpp"
#include "kernel/probe.hpp"
#include "telemetry/drops.hpp"
#include "telemetry/json.hpp"

namespace xdpguard::cli {

cxxopts::Options make_options(const std::string& command, const std::string& what) {
  cxxopts::Options o("xdpguard " + command, what);
  o.add_options()("v,verbose", "debug logs, libbpf's included")("h,help", "show this help");
  return o;
}

void add_policy_options(cxxopts::Options& o) {
  o.add_options()("policy", "policy file (omitted or `default`: the built-in policy)",
                  cxxopts::value<std::string>()->default_value("default"), "FILE")(
      "profile", "profile of the policy (omitted: every enforced rule)",
      cxxopts::value<std::string>()->default_value(""), "NAME");
}

// Parsed options, or the exit code when the command should stop (help, error).
std::variant<cxxopts::ParseResult, int> parse(cxxopts::Options& o, int argc, char** argv) {
  try {
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
      fmt::print("{}", o.help());
      return kExitOk;
    }
    if (!r.unmatched().empty()) {
      print_error(fmt::format("unexpected argument '{}' ({} --help)", r.unmatched().front(),
                              o.program()));
      return kExitUsage;
    }
    return r;
  } catch (const cxxopts::exceptions::exception& e) {
    print_error(fmt::format("{} ({} --help)", e.what(), o.program()));
    return kExitUsage;
  }
}

void print_missing(const cxxopts::Options& o, const char* name) {
  print_error(fmt::format("--{} is required ({} --help)", name, o.program()));
}

std::variant<std::string, int> parse_iface_only(const std::string& command,
                                                const std::string& what, int argc, char** argv) {
  auto o = make_options(command, what);
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto iface = required(std::get<cxxopts::ParseResult>(parsed), o, "iface");
  if (!iface) return kExitUsage;
  return *iface;
}

std::string join_ranges(const std::vector<policy::PortRange>& ranges) {
  std::string s;
  for (const auto& r : ranges) {
    if (!s.empty()) s += ",";
    s += r.first == r.last ? std::to_string(r.first) : fmt::format("{}-{}", r.first, r.last);
  }
  return s.empty() ? "-" : s;
}

template <typename T>
std::string join_numbers(const std::vector<T>& values, const char* format) {
  std::string s;
  for (T v : values) s += (s.empty() ? "" : ",") + fmt::format(fmt::runtime(format), v);
  return s.empty() ? "-" : s;
}

// What a rule matches on the host side and the peer side, for the rule table.
std::pair<std::string, std::string> match_columns(const policy::Rule& r) {
  switch (r.protocol) {
    case policy::Protocol::Tcp:
    case policy::Protocol::Udp: return {join_ranges(r.local_ports), join_ranges(r.remote_ports)};
    case policy::Protocol::Icmp:
    case policy::Protocol::Icmpv6: return {"type " + join_numbers(r.icmp_types, "{}"), "-"};
    case policy::Protocol::Ethertype: return {join_numbers(r.ethertypes, "0x{:04x}"), "-"};
  }
  return {"-", "-"};
}

std::string policy_label(const policy::Policy& p, const std::string& profile) {
  return fmt::format("{} ({}){}", p.name, p.source_file,
                     profile.empty() ? "" : ", profile " + profile);
}

constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;

std::string settings_text(const char* egress, uint64_t tcp_established_s, uint64_t tcp_closing_s,
                          uint64_t udp_s, uint64_t fragments_s) {
  return fmt::format(
      "egress {}; timeouts: tcp established {}s, tcp closing {}s, udp {}s, fragments {}s", egress,
      tcp_established_s, tcp_closing_s, udp_s, fragments_s);
}

std::string settings_text(const kernel::DatapathSettings& s) {
  return settings_text(kernel::egress_mode_name(s.egress_mode),
                       s.tcp_established_timeout_ns / kNsPerSecond,
                       s.tcp_closing_timeout_ns / kNsPerSecond, s.udp_timeout_ns / kNsPerSecond,
                       s.frag_timeout_ns / kNsPerSecond) +
         "; clock " + kernel::clock_name(s.clock) +
         "; XDP multi-buffer " + (s.xdp_frags ? "yes" : "no");
}

std::string rules_table(const std::vector<kernel::RuleStats>& rules) {
  std::vector<std::vector<std::string>> t = {
      {"#", "ID", "PASS PKTS", "PASS BYTES", "DROP PKTS", "DROP BYTES", "ROW"}};
  for (const auto& rs : rules)
    t.push_back({std::to_string(rs.index), rs.id, std::to_string(rs.counters.pass_packets),
                 std::to_string(rs.counters.pass_bytes), std::to_string(rs.counters.drop_packets),
                 std::to_string(rs.counters.drop_bytes), truncate(rs.row, 60)});
  return format_table(t);
}

std::string reasons_table(const std::vector<kernel::ReasonStats>& reasons) {
  std::vector<std::vector<std::string>> t = {{"DROP REASON", "PACKETS", "BYTES"}};
  for (const auto& rs : reasons)
    t.push_back({drop_reason_name(rs.reason), std::to_string(rs.counters.packets),
                 std::to_string(rs.counters.bytes)});
  return format_table(t);
}

// Where several rules admit the same packets, the one the counters show.
std::string overlap_table(const classify::LintReport& lint, const policy::RuleSet& rules) {
  std::vector<std::vector<std::string>> t = {{"PACKETS", "FROM", "COUNTED ON", "ALSO ADMITTED BY"}};
  for (const auto& o : lint.overlaps) {
    const auto& counted = *rules.rules[o.counted].rule;
    std::string also;
    for (size_t i : o.also) also += (also.empty() ? "" : ", ") + rules.rules[i].rule->id;
    t.push_back({classify::describe_values(o.protocol, o.side, o.values), lint.addresses(o),
                 fmt::format("{} (line {})", counted.id, counted.where.line), also});
  }
  return "Packets several rules admit are counted on the first (policy order; local ports before "
         "remote ports):\n" +
         format_table(t);
}

namespace {
// Per interface the policy names, its roles and the rules of its view; then
// what an interface no role names gets.
std::string interface_table(const policy::Policy& pol, const std::string& profile) {
  std::vector<std::vector<std::string>> rows = {{"INTERFACE", "ROLES", "RULES", "SCOPED RULES"}};
  auto view_row = [&](const std::string& iface, const std::string& roles) {
    auto view = policy::select_rules(pol, profile, iface);
    if (auto* d = std::get_if<policy::Diagnostic>(&view)) {
      rows.push_back({iface, roles, "refused", d->message});
      return;
    }
    std::vector<std::string> scoped;
    for (const auto& e : std::get<policy::RuleSet>(view).rules)
      if (!e.rule->interface_roles.empty()) scoped.push_back(e.rule->id);
    rows.push_back({iface, roles, std::to_string(std::get<policy::RuleSet>(view).rules.size()),
                    scoped.empty() ? "-" : fmt::format("{}", fmt::join(scoped, ","))});
  };
  std::vector<std::string> seen;
  for (const auto& role : pol.interface_roles)
    for (const auto& iface : role.ifaces) {
      if (std::find(seen.begin(), seen.end(), iface) != seen.end()) continue;
      seen.push_back(iface);
      std::vector<std::string> roles;
      for (const auto& other : pol.interface_roles)
        if (std::find(other.ifaces.begin(), other.ifaces.end(), iface) != other.ifaces.end())
          roles.push_back(other.name);
      view_row(iface, fmt::format("{}", fmt::join(roles, ",")));
    }
  if (pol.settings.unlisted_interfaces == policy::UnlistedInterfaces::Refuse)
    rows.push_back({"(any other)", "-", "refused", "unlisted_interfaces: refuse"});
  else
    view_row("(any other)", "-");
  return "Interfaces (the view each gets; `check --iface IF` prints one):\n" + format_table(rows);
}
}  // namespace

int run_check(int argc, char** argv) {
  auto o = make_options("check", "Validate a policy and print the rule table it compiles to.");
  add_policy_options(o);
  o.add_options()("strict",
                  "documentation keys are required: section, row, secured and purpose on "
                  "vendor rules, purpose on host essentials")(
      "warnings-as-errors", "exit 3 when there are warnings (and no errors)")(
      "iface", "the view of one interface (policy `interfaces:`); omitted: every rule",
      cxxopts::value<std::string>()->default_value(""), "IF");
  o.parse_positional({"policy"});  // `xdpguard check FILE` as well as --policy FILE
  o.positional_help("[FILE]");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);

  const auto iface = r["iface"].as<std::string>();
  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>(),
                            {.strict = r.count("strict") > 0}, iface);
  if (!loaded) return kExitError;
  const auto& pol = *loaded->policy;
  const auto& rules = loaded->rules;
  const classify::LintReport lint = classify::lint(rules);
  for (const auto& w : lint.warnings) loaded->warnings.push_back(w);
  print_warnings(*loaded);
  auto compiled = compile::compile(rules);
  const auto length_warnings = compile::peer_length_warnings(compiled);
  for (const auto& w : length_warnings) fmt::print(stderr, "warning: {}\n", w);
  const bool warned = !loaded->warnings.empty() || !length_warnings.empty();

  fmt::print("policy {}{}: {} rules in force\n\n", policy_label(pol, rules.profile),
             iface.empty() ? "" : " on " + iface, rules.rules.size());
  const bool scoped = !pol.interface_roles.empty();
  std::vector<std::vector<std::string>> table = {
      {"#", "ID", "PROTO", "LOCAL", "REMOTE", "PEERS", "INITIATOR", "FLOW", "SECURED", "ROW"}};
  if (scoped) table[0].insert(table[0].end() - 1, "INTERFACES");
  std::set<const policy::Rule*> in_force;
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const auto& rule = *rules.rules[i].rule;
    in_force.insert(&rule);
    auto [local, remote] = match_columns(rule);
    table.push_back({std::to_string(i), rule.id, policy::to_string(rule.protocol), local, remote,
                     rules.rules[i].peers ? rules.rules[i].peers->name : "any",
                     policy::to_string(rule.initiator), policy::to_string(rule.flow),
                     rule.secured ? "yes" : "no",
                     rule.essential ? "host essential: " + rule.purpose : rule.row});
    if (scoped)
      table.back().insert(table.back().end() - 1,
                          rule.interface_roles.empty() ? "all" : fmt::format("{}", fmt::join(rule.interface_roles, ",")));
  }
  fmt::print("{}", format_table(table));
  if (scoped && iface.empty()) fmt::print("\n{}", interface_table(pol, rules.profile));
  if (!lint.overlaps.empty()) fmt::print("\n{}", overlap_table(lint, rules));

  std::vector<std::vector<std::string>> documented, excluded;
  for (const auto& rule : pol.rules) {
    if (!rule.enforced)
      documented.push_back({rule.id, rule.not_enforced_reason, rule.row});
    else if (!in_force.count(&rule))
      excluded.push_back({rule.id, rule.row});
  }
  if (!documented.empty()) {
    fmt::print("\nKept as documentation (enforced: false):\n");
    documented.insert(documented.begin(), {"ID", "REASON", "ROW"});
    fmt::print("{}", format_table(documented));
  }
  if (!excluded.empty()) {
    fmt::print("\nLeft out by profile {}:\n", rules.profile);
    excluded.insert(excluded.begin(), {"ID", "ROW"});
    fmt::print("{}", format_table(excluded));
  }
  const auto& st = pol.settings;
  fmt::print("\nsettings{}: {}; flow table {} entries; drop events {}/s, burst {}\n",
             st.where.line ? "" : " (defaults, no settings block)",
             settings_text(policy::to_string(st.egress), st.tcp_established_timeout,
                           st.tcp_closing_timeout, st.udp_timeout, st.fragment_timeout),
             st.flow_table_size, st.event_rate, st.event_burst);
  fmt::print("compiled: {} port-table slots, {} IPv4 and {} IPv6 prefixes "
             "({} and {} prefix lengths probed)\n",
             compiled.port_entries.size(), compiled.peers_v4.entries.size(),
             compiled.peers_v6.entries.size(), compiled.peers_v4.lengths.size(),
             compiled.peers_v6.lengths.size());
  return warned && r.count("warnings-as-errors") ? kExitWarnings : kExitOk;
}

int run_diff(int argc, char** argv) {
  auto o = make_options("diff",
                        "What changes for traffic from policy OLD to policy NEW (no kernel "
                        "needed): packets newly admitted or refused, and packets counted on "
                        "another rule.");
  o.add_options()("old", "the policy in force (`default`: the built-in one)",
                  cxxopts::value<std::string>(), "OLD")(
      "new", "the policy to compare it with", cxxopts::value<std::string>(), "NEW")(
      "profile", "profile of both policies", cxxopts::value<std::string>()->default_value(""),
      "NAME")("old-profile", "profile of OLD (default: --profile)", cxxopts::value<std::string>(),
              "NAME")("new-profile", "profile of NEW (default: --profile)",
                      cxxopts::value<std::string>(), "NAME");
  o.parse_positional({"old", "new"});
  o.positional_help("OLD NEW");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto old_path = required(r, o, "old");
  auto new_path = required(r, o, "new");
  if (!old_path || !new_path) return kExitUsage;
  auto profile = [&](const char* which) {
    return r.count(which) ? r[which].as<std::string>() : r["profile"].as<std::string>();
  };
  auto before = load_policy(*old_path, profile("old-profile"));
  auto after = load_policy(*new_path, profile("new-profile"));
  if (!before || !after) return kExitError;

  const classify::DiffReport d = classify::diff(before->rules, after->rules);
  fmt::print("old: {}, {} rules in force\nnew: {}, {} rules in force\n\n",
             policy_label(*before->policy, before->rules.profile), before->rules.rules.size(),
             policy_label(*after->policy, after->rules.profile), after->rules.rules.size());
  if (d.changes.empty()) {
    fmt::print("no difference: the same packets are admitted, each counted on a rule of the "
               "same id\n");
    return kExitOk;
  }
  auto rule = [](const policy::Rule* rl) {
    return rl ? fmt::format("{} (line {})", rl->id, rl->where.line) : std::string("-");
  };
  std::vector<std::vector<std::string>> t = {{"CHANGE", "PACKETS", "FROM", "OLD: COUNTED ON", "NEW: COUNTED ON"}};
  for (const auto& c : d.changes)
    t.push_back({classify::to_string(c.kind),
                 classify::describe_values(c.protocol, c.side, c.cells.values), d.addresses(c),
                 rule(c.before), rule(c.after)});
  fmt::print("{}", format_table(t));
  fmt::print("\nadmitted: refused by OLD, admitted by NEW; refused: the reverse; recounted: "
             "admitted by both, counted on another rule; replies refused/sent: the host's answers "
             "from that local port (receive-only).\n\"from remote port\" packets are the "
             "replies to connections the host opens to that port.\n");
  return kExitOk;
}

int run_attach(int argc, char** argv) {
  auto o = make_options("attach", "Load the policy into the kernel and attach it to an interface.");
  add_apply_options(o);
  o.add_options()("iface", "interface to protect", cxxopts::value<std::string>(), "IF")(
      "mode", "XDP mode: native (driver) or generic (skb)",
      cxxopts::value<std::string>()->default_value("native"), "MODE");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  auto mode = xdp_mode_option(r);
  if (!mode) return kExitUsage;

  auto req = apply_options(r);
  if (!req) return kExitUsage;
  auto prepared = prepare_or_print(*req, *iface);
  if (!prepared) return kExitError;
  if (auto st = daemon::attach_prepared(*prepared, *iface, *mode); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  fmt::print("attached to {} ({} mode, egress {}{}): policy {}, {} rules\n", *iface,
             kernel::to_string(*mode), policy::to_string(prepared->policy->settings.egress),
             prepared->audit ? ", AUDIT: nothing is dropped" : "",
             policy_label(*prepared->policy, prepared->rules.profile),
             prepared->rules.rules.size());
  return kExitOk;
}

int run_detach(int argc, char** argv) {
  auto parsed = parse_iface_only("detach", "Detach xdpguard from an interface and remove its pins.",
                                 argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  const std::string& iface = std::get<std::string>(parsed);
  if (auto st = kernel::detach(iface); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  daemon::forget_state(iface);  // the applied-policy records of a confirmed apply
  fmt::print("detached from {}\n", iface);
  return kExitOk;
}

int run_stats(int argc, char** argv) {
  auto o = make_options("stats", "Counters of the attached firewall, per rule and drop reason.");
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF")(
      "json", "machine-readable output")(
      "drops", "top dropped destination ports and peers (agent/telemetry)")(
      "top", "entries per --drops list", cxxopts::value<size_t>()->default_value("10"), "N")(
      "watch", "live per-rule table with rates, redrawn in place")(
      "interval", "--watch refresh in seconds", cxxopts::value<double>()->default_value("1"), "S")(
      "count", "--watch: stop after N refreshes", cxxopts::value<unsigned>()->default_value("0"), "N");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  if (r.count("drops")) return print_drops(*iface, r.count("json") > 0, r["top"].as<size_t>());
  if (r.count("watch")) {
    double interval = r["interval"].as<double>();
    if (!(interval >= 0.1)) {
      print_error("--interval must be at least 0.1 seconds");
      return kExitUsage;
    }
    return watch_stats(*iface, interval, r["count"].as<unsigned>());
  }
  auto stats = kernel::read_stats(*iface);
  if (!stats) {
    print_error(stats.error().message);
    return kExitError;
  }
  const auto& s = *stats;
  std::string mode = s.attached_mode ? kernel::to_string(*s.attached_mode) : "not attached";
  const auto& ft = s.flow_table;

  if (r.count("json")) {
    fmt::print("{}\n", telemetry::json_text(telemetry::stats_json(s)));
    return kExitOk;
  }

  fmt::print("xdpguard on {} (XDP {}, TC egress {}), policy {}{}, pins {}\n", s.iface, mode,
             s.egress_attached ? "attached" : "not attached", s.policy_name,
             s.profile.empty() ? "" : ", profile " + s.profile, s.pin_dir);
  fmt::print("settings: {}\n", settings_text(s.settings));
  if (s.audit) fmt::print("mode: audit — drops below were passed (would-drop)\n");
  fmt::print("\n");
  fmt::print("Ingress (XDP):\n{}\n{}\n", rules_table(s.rules), reasons_table(s.reasons));
  fmt::print("Egress (TC, {}):\n{}\n{}\n", kernel::egress_mode_name(s.settings.egress_mode),
             rules_table(s.egress_rules), reasons_table(s.egress_reasons));
  fmt::print("flow table: {} of {} entries, {} inserts, {} evictions\n", ft.entries, ft.capacity,
             ft.inserts, ft.evictions);
  return kExitOk;
}

int run_flows(int argc, char** argv) {
  auto o = make_options("flows", "Flows the host opened, as the datapath tracks them.");
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF")(
      "json", "machine-readable output");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  auto table = kernel::read_flows(*iface);
  if (!table) {
    print_error(table.error().message);
    return kExitError;
  }
  auto& flows = table->flows;
  // Most recently active first.
  std::stable_sort(flows.begin(), flows.end(),
                   [](const auto& a, const auto& b) { return a.idle_ns < b.idle_ns; });
  auto seconds = [](uint64_t ns) { return ns / kNsPerSecond; };

  if (r.count("json")) {
    fmt::print("{}\n", telemetry::json_text(telemetry::flows_json(*table)));
    return kExitOk;
  }

  size_t live = std::count_if(flows.begin(), flows.end(), [](const auto& f) { return f.live; });
  fmt::print("{} flows on {} ({} live) of {} entries; {}\n", flows.size(), *iface, live,
             table->capacity, settings_text(table->settings));
  if (table->settings.egress_mode == XDPG_EGRESS_OFF)
    fmt::print("egress is off: no flows are tracked, replies are admitted without them\n");
  if (flows.empty()) return kExitOk;
  std::vector<std::vector<std::string>> t = {
      {"PROTO", "LOCAL", "REMOTE", "RULE", "AGE", "IDLE", "TCP", "REPLIED", "STATE"}};
  for (const auto& f : flows) {
    std::string tcp = "-";
    if (f.key.protocol == IPPROTO_TCP) {
      tcp.clear();
      for (const auto& n : telemetry::tcp_state_names(f.key, f.value))
        tcp += (tcp.empty() ? "" : ",") + n;
      if (tcp.empty()) tcp = "open";
    }
    t.push_back({telemetry::protocol_name(f.key.protocol),
                 telemetry::endpoint_text(f.key.family, f.key.local_addr, f.key.local_port),
                 telemetry::endpoint_text(f.key.family, f.key.remote_addr, f.key.remote_port),
                 f.rule_id.empty() ? "#" + std::to_string(f.value.rule) : f.rule_id,
                 fmt::format("{}s", seconds(f.age_ns)), fmt::format("{}s", seconds(f.idle_ns)), tcp,
                 (f.value.flags & XDPG_FLOW_REPLIED) ? "yes" : "no", f.live ? "live" : "expired"});
  }
  fmt::print("\n{}", format_table(t));
  return kExitOk;
}

int run_explain(int argc, char** argv) {
  auto o = make_options("explain", "What the policy does with one packet (no kernel needed).");
  add_policy_options(o);
  o.add_options()("packet",
                  "e.g. \"tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags S\", "
                  "\"udp [2001:db8::7]:5000 -> [2001:db8::1]:5060\", "
                  "\"icmp 192.0.2.7 -> 198.51.100.10 type 8\", \"arp\"",
                  cxxopts::value<std::string>(), "SPEC")(
      "iface", "the interface the packet arrives on (policy `interfaces:`); omitted: every rule",
      cxxopts::value<std::string>()->default_value(""), "IF");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto text = required(r, o, "packet");
  if (!text) return kExitUsage;
  auto spec = classify::parse_packet_spec(*text);
  if (auto* err = std::get_if<std::string>(&spec)) {
    print_error("--packet: " + *err);
    return kExitUsage;
  }
  const auto iface = r["iface"].as<std::string>();
  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>(), {},
                            iface);
  if (!loaded) return kExitError;
  print_warnings(*loaded);

  const auto& packet = std::get<classify::PacketSpec>(spec);
  auto frame = classify::build_frame(packet);
  classify::ReferenceClassifier classifier(loaded->rules);
  auto ex = classifier.explain(frame);
  const auto& d = ex.decision;

  fmt::print("packet:  {} ({} bytes)\n", classify::describe(packet), frame.size());
  fmt::print("policy:  {}{}\n", policy_label(*loaded->policy, loaded->rules.profile),
             iface.empty() ? "" : " on " + iface);
  if (d.verdict == Verdict::Pass)
    fmt::print("verdict: pass\n");
  else
    fmt::print("verdict: drop ({})\n", drop_reason_name(d.reason));
  if (d.rule && *d.rule < loaded->rules.rules.size()) {
    const auto& entry = loaded->rules.rules[*d.rule];
    fmt::print("rule:    {} {}{}\n", *d.rule, entry.rule->id,
               d.verdict == Verdict::Drop
                   ? fmt::format(" (covers the packet by {}; source not in peer set {})",
                                 classify::to_string(ex.kind),
                                 entry.peers ? entry.peers->name : "any")
                   : "");
    fmt::print("row:     {}\n", entry.rule->essential ? "host essential: " + entry.rule->purpose
                                                       : entry.rule->row);
  }
  if (!ex.steps.empty()) {
    fmt::print("steps:\n");
    for (const auto& step : ex.steps) fmt::print("  {}\n", step);
  }
  return kExitOk;
}

}  // namespace xdpguard::cli
