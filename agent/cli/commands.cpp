// The subcommands. Each parses its own options, does one thing, and reports
// failure as one line on stderr with a non-zero exit code.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cxxopts.hpp>
#include <set>
#include <variant>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "cli/cli.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/pins.hpp"

namespace xdpguard::cli {
namespace {

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

std::optional<std::string> required(const cxxopts::ParseResult& r, const cxxopts::Options& o,
                                    const char* name) {
  if (r.count(name)) return r[name].as<std::string>();
  print_error(fmt::format("--{} is required ({} --help)", name, o.program()));
  return std::nullopt;
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

}  // namespace

int run_check(int argc, char** argv) {
  auto o = make_options("check", "Validate a policy and print the rule table it compiles to.");
  add_policy_options(o);
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);

  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>());
  if (!loaded) return kExitError;
  print_warnings(*loaded);
  const auto& pol = *loaded->policy;
  const auto& rules = loaded->rules;
  auto compiled = compile::compile(rules);

  fmt::print("policy {}: {} rules in force\n\n", policy_label(pol, rules.profile), rules.rules.size());
  std::vector<std::vector<std::string>> table = {
      {"#", "ID", "PROTO", "LOCAL", "REMOTE", "PEERS", "INITIATOR", "FLOW", "SECURED", "ROW"}};
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
  }
  fmt::print("{}", format_table(table));

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
  fmt::print("\ncompiled: {} port-table slots, {} IPv4 and {} IPv6 prefixes\n",
             compiled.port_entries.size(), compiled.peers_v4.size(), compiled.peers_v6.size());
  return kExitOk;
}

int run_attach(int argc, char** argv) {
  auto o = make_options("attach", "Load the policy into the kernel and attach it to an interface.");
  add_policy_options(o);
  o.add_options()("iface", "interface to protect", cxxopts::value<std::string>(), "IF")(
      "mode", "XDP mode: native (driver) or generic (skb)",
      cxxopts::value<std::string>()->default_value("native"), "MODE");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  auto mode = kernel::xdp_mode_from_string(r["mode"].as<std::string>());
  if (!mode) {
    print_error(fmt::format("--mode must be native or generic, not '{}'",
                            r["mode"].as<std::string>()));
    return kExitUsage;
  }

  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>());
  if (!loaded) return kExitError;
  print_warnings(*loaded);
  auto dp = kernel::Datapath::load(compile::compile(loaded->rules));
  if (!dp) {
    print_error(dp.error().message);
    return kExitError;
  }
  if (auto st = kernel::attach(*dp, *iface, *mode); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  fmt::print("attached to {} ({} mode): policy {}, {} rules\n", *iface, kernel::to_string(*mode),
             policy_label(*loaded->policy, loaded->rules.profile), loaded->rules.rules.size());
  return kExitOk;
}

int run_detach(int argc, char** argv) {
  auto o = make_options("detach", "Detach xdpguard from an interface and remove its pins.");
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  if (auto st = kernel::detach(*iface); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  fmt::print("detached from {}\n", *iface);
  return kExitOk;
}

int run_stats(int argc, char** argv) {
  auto o = make_options("stats", "Counters of the attached firewall, per rule and drop reason.");
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF")(
      "json", "machine-readable output");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  auto stats = kernel::read_stats(*iface);
  if (!stats) {
    print_error(stats.error().message);
    return kExitError;
  }
  const auto& s = *stats;
  std::string mode = s.attached_mode ? kernel::to_string(*s.attached_mode) : "not attached";

  if (r.count("json")) {
    std::string out = "{";
    out += fmt::format("\"interface\":{},\"pin_dir\":{},\"attached\":{},\"mode\":{},",
                       json_string(s.iface), json_string(s.pin_dir),
                       s.attached_mode ? "true" : "false",
                       s.attached_mode ? json_string(mode) : "null");
    out += fmt::format("\"policy\":{{\"name\":{},\"profile\":{},\"hash\":\"{:016x}\"}},",
                       json_string(s.policy_name), json_string(s.profile), s.policy_hash);
    out += "\"rules\":[";
    for (size_t i = 0; i < s.rules.size(); ++i) {
      const auto& rs = s.rules[i];
      out += fmt::format(
          "{}{{\"index\":{},\"id\":{},\"row\":{},\"pass_packets\":{},\"pass_bytes\":{},"
          "\"drop_packets\":{},\"drop_bytes\":{}}}",
          i ? "," : "", rs.index, json_string(rs.id), json_string(rs.row),
          rs.counters.pass_packets, rs.counters.pass_bytes, rs.counters.drop_packets,
          rs.counters.drop_bytes);
    }
    out += "],\"drop_reasons\":[";
    for (size_t i = 0; i < s.reasons.size(); ++i) {
      const auto& rs = s.reasons[i];
      out += fmt::format("{}{{\"reason\":{},\"packets\":{},\"bytes\":{}}}", i ? "," : "",
                         json_string(drop_reason_name(rs.reason)), rs.counters.packets,
                         rs.counters.bytes);
    }
    out += "]}\n";
    fmt::print("{}", out);
    return kExitOk;
  }

  fmt::print("xdpguard on {} ({}), policy {}{}, pins {}\n\n", s.iface, mode, s.policy_name,
             s.profile.empty() ? "" : ", profile " + s.profile, s.pin_dir);
  std::vector<std::vector<std::string>> rules = {
      {"#", "ID", "PASS PKTS", "PASS BYTES", "DROP PKTS", "DROP BYTES", "ROW"}};
  for (const auto& rs : s.rules)
    rules.push_back({std::to_string(rs.index), rs.id, std::to_string(rs.counters.pass_packets),
                     std::to_string(rs.counters.pass_bytes),
                     std::to_string(rs.counters.drop_packets),
                     std::to_string(rs.counters.drop_bytes), truncate(rs.row, 60)});
  fmt::print("{}\n", format_table(rules));
  std::vector<std::vector<std::string>> reasons = {{"DROP REASON", "PACKETS", "BYTES"}};
  for (const auto& rs : s.reasons)
    reasons.push_back({drop_reason_name(rs.reason), std::to_string(rs.counters.packets),
                       std::to_string(rs.counters.bytes)});
  fmt::print("{}", format_table(reasons));
  return kExitOk;
}

int run_explain(int argc, char** argv) {
  auto o = make_options("explain", "What the policy does with one packet (no kernel needed).");
  add_policy_options(o);
  o.add_options()("packet",
                  "e.g. \"tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags S\", "
                  "\"udp [2001:db8::7]:5000 -> [2001:db8::1]:5060\", "
                  "\"icmp 192.0.2.7 -> 198.51.100.10 type 8\", \"arp\"",
                  cxxopts::value<std::string>(), "SPEC");
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
  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>());
  if (!loaded) return kExitError;
  print_warnings(*loaded);

  const auto& packet = std::get<classify::PacketSpec>(spec);
  auto frame = classify::build_frame(packet);
  classify::ReferenceClassifier classifier(loaded->rules);
  auto ex = classifier.explain(frame);
  const auto& d = ex.decision;

  fmt::print("packet:  {} ({} bytes)\n", classify::describe(packet), frame.size());
  fmt::print("policy:  {}\n", policy_label(*loaded->policy, loaded->rules.profile));
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
