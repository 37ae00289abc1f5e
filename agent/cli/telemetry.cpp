// The telemetry subcommands and `stats` modes: `events`, `metrics`,
// `stats --drops`, `stats --watch`.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <map>
#include <thread>

#include "cli/cli.hpp"
#include "telemetry/drops.hpp"
#include "telemetry/events.hpp"
#include "telemetry/json.hpp"
#include "telemetry/metrics.hpp"

namespace xdpguard::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

// SIGINT/SIGTERM end the loop of `events` and `stats --watch` cleanly.
void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string port_text(const telemetry::TopPort& p) {
  if (p.protocol == IPPROTO_ICMP || p.protocol == IPPROTO_ICMPV6)
    return fmt::format("type {}", p.port);
  return std::to_string(p.port);
}

std::string rate_text(double per_s) {
  if (per_s < 0.05) return "0";
  if (per_s < 1000) return fmt::format("{:.1f}", per_s);
  if (per_s < 1e6) return fmt::format("{:.1f}k", per_s / 1e3);
  return fmt::format("{:.2f}M", per_s / 1e6);
}

std::string bits_text(double bytes_per_s) {
  double bits = bytes_per_s * 8;
  if (bits < 1e3) return fmt::format("{:.0f} b/s", bits);
  if (bits < 1e6) return fmt::format("{:.1f} kb/s", bits / 1e3);
  if (bits < 1e9) return fmt::format("{:.1f} Mb/s", bits / 1e6);
  return fmt::format("{:.2f} Gb/s", bits / 1e9);
}

}  // namespace

int run_events(int argc, char** argv) {
  auto o = make_options(
      "events", "Print drop events as the datapath reports them (rate-limited per reason). Do "
                "not run it beside `xdpguard run`, which logs the same events: a ring buffer has "
                "one reader.");
  o.add_options()("iface", "interface (repeat for several)",
                  cxxopts::value<std::vector<std::string>>(), "IF")(
      "json", "one JSON object per line")(
      "count", "exit after N events", cxxopts::value<uint64_t>()->default_value("0"), "N")(
      "timeout", "exit after SECONDS", cxxopts::value<double>()->default_value("0"), "SECONDS");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto ifaces = required<std::vector<std::string>>(r, o, "iface");
  if (!ifaces) return kExitUsage;
  bool json = r.count("json") > 0;
  uint64_t count = r["count"].as<uint64_t>(), seen = 0;
  double timeout = r["timeout"].as<double>();
  auto print_event = [&](const telemetry::DropEvent& ev) {
    if (count && seen >= count) return;
    ++seen;
    fmt::print("{}\n", json ? telemetry::json_text(telemetry::event_json(ev))
                            : telemetry::event_text(ev));
  };
  auto reader = telemetry::EventReader::open(*ifaces, print_event);
  if (!reader) {
    print_error(reader.error().message);
    return kExitError;
  }
  catch_interrupts();
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  std::fflush(stdout);
  while (!g_interrupted && !(count && seen >= count)) {
    int wait_ms = 200;
    if (timeout > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      wait_ms = static_cast<int>(std::min<int64_t>(left, wait_ms));
    }
    auto n = (*reader)->poll(wait_ms);
    if (!n) {
      print_error(n.error().message);
      return kExitError;
    }
    if (*n) std::fflush(stdout);
  }
  return kExitOk;
}

int run_metrics(int argc, char** argv) {
  auto o = make_options("metrics",
                        "Print the Prometheus metrics of attached interfaces once, or write "
                        "them atomically to a textfile (for a timer, without the daemon).");
  o.add_options()("iface", "interface (repeat for several)",
                  cxxopts::value<std::vector<std::string>>(), "IF")(
      "textfile", "write to PATH instead of stdout", cxxopts::value<std::string>(), "PATH");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto ifaces = required<std::vector<std::string>>(r, o, "iface");
  if (!ifaces) return kExitUsage;
  std::string text = telemetry::collect_metrics(*ifaces, nullptr);
  if (!r.count("textfile")) {
    fmt::print("{}", text);
    return kExitOk;
  }
  if (auto st = telemetry::write_file_atomically(r["textfile"].as<std::string>(), text); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  return kExitOk;
}

int print_drops(const std::string& iface, bool json, size_t limit) {
  auto tops = telemetry::read_drop_tops(iface, limit);
  if (!tops) {
    print_error(tops.error().message);
    return kExitError;
  }
  auto events = telemetry::read_event_counters(iface);
  if (json) {
    fmt::print("{}\n", telemetry::json_text(
                            telemetry::drops_json(iface, *tops, events ? &*events : nullptr)));
    return kExitOk;
  }
  fmt::print("Top dropped destination ports on {} ({} with drops; ICMP: by type):\n", iface,
             tops->port_keys);
  std::vector<std::vector<std::string>> rows{{"DIRECTION", "PROTO", "PORT", "PACKETS"}};
  for (const auto& p : tops->ports)
    rows.push_back({telemetry::direction_name(p.direction), telemetry::protocol_name(p.protocol),
                    port_text(p), std::to_string(p.packets)});
  fmt::print("{}\n", tops->ports.empty() ? "  (no drops)\n" : format_table(rows));
  fmt::print("Top dropped peers on {} (ingress: source, egress: destination; {} tracked):\n",
             iface, tops->peer_keys);
  rows = {{"DIRECTION", "ADDRESS", "PACKETS"}};
  for (const auto& p : tops->peers)
    rows.push_back({telemetry::direction_name(p.key.direction),
                    telemetry::address_text(p.key.family, p.key.addr), std::to_string(p.packets)});
  fmt::print("{}\n", tops->peers.empty() ? "  (no drops)\n" : format_table(rows));
  if (events) {
    auto totals = telemetry::event_totals(*events);
    fmt::print("drop events: {} emitted, {} suppressed by the rate limit\n", totals.emitted,
               totals.suppressed);
  }
  fmt::print("Counts are since attach. Peers are LRU-bounded ({} at most): under a flood of new "
             "addresses the least recent are forgotten.\n",
             tops->peer_capacity);
  return kExitOk;
}

int watch_stats(const std::string& iface, double interval_s, unsigned count) {
  using clock = std::chrono::steady_clock;
  catch_interrupts();
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  std::map<std::string, xdpg_rule_counters> prev;  // by direction/rule id
  std::map<std::string, xdpg_reason_counters> prev_reasons;
  auto prev_time = clock::now();
  bool first = true;
  if (tty) fmt::print("\x1b[?1049h");  // alternate screen: the shell's scrollback stays
  int rc = kExitOk;
  for (unsigned n = 0; !g_interrupted && (count == 0 || n < count); ++n) {
    if (!first) {
      auto until = clock::now() + std::chrono::milliseconds(static_cast<int64_t>(interval_s * 1000));
      while (!g_interrupted && clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (g_interrupted) break;
    }
    auto stats = kernel::read_stats(iface);
    if (!stats) {
      if (tty) fmt::print("\x1b[?1049l");
      print_error(stats.error().message);
      return kExitError;
    }
    auto now = clock::now();
    double dt = std::chrono::duration<double>(now - prev_time).count();
    prev_time = now;
    std::string out;
    if (tty) out += "\x1b[H\x1b[2J";
    out += fmt::format("xdpguard on {} — policy {}{} — every {:g}s{}\n\n", iface,
                       stats->policy_name, stats->audit ? " (AUDIT: would-drop)" : "", interval_s,
                       tty ? ", Ctrl-C to quit" : "");
    std::vector<std::vector<std::string>> rows{{"DIR", "#", "RULE", "PASS/s", "DROP/s", "PASS bps",
                                                "PASS", "DROP"}};
    auto add_rules = [&](const char* dir, const std::vector<kernel::RuleStats>& rules) {
      for (const auto& r : rules) {
        std::string key = std::string(dir) + "/" + r.id;
        const auto& c = r.counters;
        std::string pass_rate = "-", drop_rate = "-", bps = "-";
        if (!first && prev.count(key) && dt > 0) {
          const auto& p = prev[key];
          // A reload that reset a slot makes a counter go back: no rate then.
          if (c.pass_packets >= p.pass_packets && c.drop_packets >= p.drop_packets &&
              c.pass_bytes >= p.pass_bytes) {
            pass_rate = rate_text((c.pass_packets - p.pass_packets) / dt);
            drop_rate = rate_text((c.drop_packets - p.drop_packets) / dt);
            bps = bits_text((c.pass_bytes - p.pass_bytes) / dt);
          }
        }
        rows.push_back({dir, std::to_string(r.index), truncate(r.id, 32), pass_rate,
                        drop_rate, bps, std::to_string(c.pass_packets),
                        std::to_string(c.drop_packets)});
        prev[key] = c;
      }
    };
    add_rules("in", stats->rules);
    add_rules("out", stats->egress_rules);
    out += format_table(rows) + "\n";
    std::vector<std::vector<std::string>> reasons{{"DIR", "DROP REASON", "DROP/s", "PACKETS"}};
    auto add_reasons = [&](const char* dir, const std::vector<kernel::ReasonStats>& list) {
      for (const auto& r : list) {
        std::string name = drop_reason_name(r.reason);
        std::string key = std::string(dir) + "/" + name;
        std::string rate = "-";
        if (!first && prev_reasons.count(key) && dt > 0 &&
            r.counters.packets >= prev_reasons[key].packets)
          rate = rate_text((r.counters.packets - prev_reasons[key].packets) / dt);
        prev_reasons[key] = r.counters;
        if (r.counters.packets == 0) continue;
        reasons.push_back({dir, name, rate, std::to_string(r.counters.packets)});
      }
    };
    add_reasons("in", stats->reasons);
    add_reasons("out", stats->egress_reasons);
    if (reasons.size() > 1) out += "\n" + format_table(reasons) + "\n";
    out += fmt::format("\nflow table: {} of {} entries, {} evictions\n", stats->flow_table.entries,
                       stats->flow_table.capacity, stats->flow_table.evictions);
    if (!tty) out += "\n";
    fmt::print("{}", out);
    std::fflush(stdout);
    first = false;
  }
  if (tty) fmt::print("\x1b[?1049l");
  return rc;
}

}  // namespace xdpguard::cli
