// `xdpguard replay`: what a policy would have done with a capture, per rule
// and drop reason; with --against, the flows whose verdict changes; with
// --datapath, the same frames through the real programs (BPF_PROG_TEST_RUN)
// compared frame by frame and counter by counter with the reference.
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <chrono>
#include <cmath>
#include <cxxopts.hpp>
#include <map>
#include <variant>

#include "capture/pcap_file.hpp"
#include "classify/replay.hpp"
#include "cli/cli.hpp"
#include "compile/compiler.hpp"
#include "daemon/apply.hpp"
#include "kernel/datapath.hpp"
#include "policy/cidr.hpp"
#include "telemetry/json.hpp"

namespace xdpguard::cli {
namespace {

constexpr size_t kListedDisagreements = 20;

std::optional<classify::HostIdentity> host_identity(const cxxopts::ParseResult& r) {
  classify::HostIdentity host;
  if (r.count("host"))
    for (const auto& text : r["host"].as<std::vector<std::string>>()) {
      auto c = policy::parse_cidr(text);
      if (auto* err = std::get_if<std::string>(&c)) {
        print_error(fmt::format("--host {}: {}", text, *err));
        return std::nullopt;
      }
      host.addresses.push_back(std::get<policy::Cidr>(c));
    }
  if (r.count("host-mac"))
    for (const auto& text : r["host-mac"].as<std::vector<std::string>>()) {
      classify::Mac m{};
      unsigned b[6];
      char tail;
      if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                      &b[5], &tail) != 6) {
        print_error(fmt::format("--host-mac {}: not a MAC address (aa:bb:cc:dd:ee:ff)", text));
        return std::nullopt;
      }
      for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(b[i]);
      host.macs.push_back(m);
    }
  if (host.addresses.empty() && host.macs.empty()) {
    print_error("replay needs the host's addresses (--host ADDR) or MAC (--host-mac MAC) to tell "
                "the frames it sent from those it received");
    return std::nullopt;
  }
  return host;
}

std::vector<kernel::RuleStats> rule_stats(const policy::RuleSet& rules,
                                          const std::vector<xdpg_rule_counters>& counts) {
  std::vector<kernel::RuleStats> out;
  for (uint32_t i = 0; i < rules.rules.size(); ++i)
    out.push_back({i, rules.rules[i].rule->id, rules.rules[i].rule->row, counts[i]});
  return out;
}

std::string decision_text(const std::optional<Decision>& d, const policy::RuleSet& rules) {
  if (!d) return "not decided (egress off)";
  const std::string rule = d->rule ? rules.rules[*d->rule].rule->id : "";
  if (d->verdict == Verdict::Pass) return "pass " + rule;
  return fmt::format("drop {}{}", drop_reason_name(d->reason), rule.empty() ? "" : " (" + rule + ")");
}

// One frame where the programs and the reference disagree.
struct Disagreement {
  uint64_t frame;
  bool egress;
  std::string flow, reference, datapath;
};

struct DatapathCheck {
  uint64_t frames = 0;
  std::vector<Disagreement> frames_differing;
  uint64_t frames_differing_count = 0;
  std::vector<std::string> counters_differing;
};

void compare_counters(const char* where, const policy::RuleSet& rules,
                      const std::vector<xdpg_rule_counters>& got_rules,
                      const std::vector<xdpg_reason_counters>& got_reasons,
                      const CounterSums& want, std::vector<std::string>& out) {
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const auto &g = got_rules[i], &w = want.rules[i];
    if (g.pass_packets != w.pass_packets || g.drop_packets != w.drop_packets ||
        g.pass_bytes != w.pass_bytes || g.drop_bytes != w.drop_bytes)
      out.push_back(fmt::format("{} rule {}: datapath pass {}/{} B drop {}/{} B, reference pass "
                                "{}/{} B drop {}/{} B",
                                where, rules.rules[i].rule->id, g.pass_packets, g.pass_bytes,
                                g.drop_packets, g.drop_bytes, w.pass_packets, w.pass_bytes,
                                w.drop_packets, w.drop_bytes));
  }
  for (size_t r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    if (got_reasons[r].packets != want.reasons[r].packets ||
        got_reasons[r].bytes != want.reasons[r].bytes)
      out.push_back(fmt::format("{} {}: datapath {}/{} B, reference {}/{} B", where,
                                drop_reason_name(static_cast<DropReason>(r)), got_reasons[r].packets,
                                got_reasons[r].bytes, want.reasons[r].packets,
                                want.reasons[r].bytes));
}

}  // namespace

int run_replay(int argc, char** argv) {
  auto o = make_options(
      "replay",
      "What the policy would do with a capture of the protected interface (tcpdump -i IF -w "
      "FILE): packets per rule and drop reason, decided by the reference classifier with flows "
      "tracked as the datapath tracks them.");
  add_policy_options(o);
  o.add_options()("capture", "the capture (classic pcap, Ethernet)", cxxopts::value<std::string>(),
                  "FILE")(
      "host", "an address (or prefix) of the host: IP frames from it are egress (repeatable)",
      cxxopts::value<std::vector<std::string>>(), "ADDR")(
      "host-mac", "the host's MAC: frames from it are egress (repeatable)",
      cxxopts::value<std::vector<std::string>>(), "MAC")(
      "against", "also replay through policy OLD and list the flows whose verdict changes",
      cxxopts::value<std::string>(), "OLD")(
      "against-profile", "profile of OLD (default: --profile)", cxxopts::value<std::string>(),
      "NAME")("datapath",
              "also run every frame through the BPF programs (BPF_PROG_TEST_RUN; root) and "
              "report where they disagree with the reference")("json",
                                                               "machine-readable output");
  o.parse_positional({"capture"});
  o.positional_help("CAPTURE.pcap");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto capture = required(r, o, "capture");
  if (!capture) return kExitUsage;
  auto host = host_identity(r);
  if (!host) return kExitUsage;
  const bool json = r.count("json") > 0;

  auto loaded = load_policy(r["policy"].as<std::string>(), r["profile"].as<std::string>());
  if (!loaded) return kExitError;
  std::optional<LoadedPolicy> old;
  if (r.count("against")) {
    old = load_policy(r["against"].as<std::string>(), r.count("against-profile")
                                                          ? r["against-profile"].as<std::string>()
                                                          : r["profile"].as<std::string>());
    if (!old) return kExitError;
  }
  const auto& rules = loaded->rules;
  const auto& settings = loaded->policy->settings;

  std::optional<kernel::Datapath> dp;
  if (r.count("datapath")) {
    auto d = kernel::Datapath::load(compile::compile(rules), daemon::datapath_options(settings));
    if (!d) {
      print_error("--datapath: " + d.error().message);
      return kExitError;
    }
    dp.emplace(std::move(*d));
  }

  classify::Replay replay(rules, settings, *host);
  std::optional<classify::Replay> old_replay;
  if (old) old_replay.emplace(old->rules, old->policy->settings, *host);
  // (flow, egress, old decision, new decision) -> frames, for verdicts that change
  std::map<std::tuple<classify::ReplayFlow, bool, std::string, std::string>, uint64_t> changed;
  DatapathCheck check;
  uint64_t ingress_frames = 0, first_ns = 0, last_ns = 0;
  std::optional<std::string> datapath_error;

  const auto started = std::chrono::steady_clock::now();
  auto err = capture::read_pcap(*capture, [&](std::span<const uint8_t> frame, uint64_t ns) {
    if (!replay.frames()) first_ns = ns;
    last_ns = ns;
    const classify::ReplayFrame f = replay.feed(frame, ns);
    ingress_frames += !f.egress;
    if (old_replay) {
      const classify::ReplayFrame g = old_replay->feed(frame, ns);
      if (g.passes != f.passes)
        ++changed[{f.flow, f.egress, decision_text(g.decision, old->rules),
                   decision_text(f.decision, rules)}];
    }
    if (dp && !datapath_error) {
      ++check.frames;
      auto action = f.egress ? dp->test_run_egress(frame) : dp->test_run(frame);
      if (!action) {
        datapath_error = fmt::format("frame {} ({} bytes): {}", replay.frames(), frame.size(),
                                     action.error().message);
        return;
      }
      const bool passed = f.egress ? *action == TC_ACT_OK : *action == XDP_PASS;
      if (passed != f.passes && ++check.frames_differing_count <= kListedDisagreements)
        check.frames_differing.push_back({replay.frames(), f.egress, f.flow.to_string(),
                                          decision_text(f.decision, rules),
                                          passed ? "passed" : "dropped"});
    }
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (err) {
    print_error(*err);
    return kExitError;
  }
  if (datapath_error) {
    print_error("--datapath: " + *datapath_error);
    return kExitError;
  }
  if (dp) {
    auto ir = dp->rule_counters(), er = dp->egress_rule_counters();
    auto iq = dp->reason_counters(), eq = dp->egress_reason_counters();
    for (auto* res : {&ir, &er})
      if (!*res) {
        print_error("--datapath: " + res->error().message);
        return kExitError;
      }
    for (auto* res : {&iq, &eq})
      if (!*res) {
        print_error("--datapath: " + res->error().message);
        return kExitError;
      }
    compare_counters("ingress", rules, *ir, *iq, replay.ingress(), check.counters_differing);
    compare_counters("egress", rules, *er, *eq, replay.egress(), check.counters_differing);
  }
  const bool disagree = check.frames_differing_count || !check.counters_differing.empty();

  const auto in_rules = rule_stats(rules, replay.ingress().rules);
  const auto eg_rules = rule_stats(rules, replay.egress().rules);
  const auto in_reasons = kernel::reason_stats(replay.ingress().reasons);
  const auto eg_reasons = kernel::reason_stats(replay.egress().reasons);
  const uint64_t frames = replay.frames();
  const double span = frames ? static_cast<double>(last_ns - first_ns) / 1e9 : 0;

  if (json) {
    // Six decimals as before; json_text prints the shortest form of the result.
    auto micro = [](double v) { return std::round(v * 1e6) / 1e6; };
    telemetry::Json out = {{"capture", *capture},
                           {"policy", policy_label(*loaded->policy, rules.profile)},
                           {"frames", frames},
                           {"ingress_frames", ingress_frames},
                           {"egress_frames", frames - ingress_frames},
                           {"span_seconds", micro(span)},
                           {"replay_seconds", micro(seconds)},
                           {"rules", telemetry::rules_json(in_rules)},
                           {"drop_reasons", telemetry::reasons_json(in_reasons)},
                           {"egress_rules", telemetry::rules_json(eg_rules)},
                           {"egress_drop_reasons", telemetry::reasons_json(eg_reasons)}};
    if (old) {
      auto& flows = out["changed_flows"] = telemetry::Json::array();
      for (const auto& [k, n] : changed)
        flows.push_back({{"flow", std::get<0>(k).to_string()},
                         {"direction", std::get<1>(k) ? "egress" : "ingress"},
                         {"old", std::get<2>(k)},
                         {"new", std::get<3>(k)},
                         {"packets", n}});
    }
    if (dp)
      out["datapath"] = {{"frames", check.frames},
                         {"frame_disagreements", check.frames_differing_count},
                         {"counter_disagreements", check.counters_differing.size()}};
    fmt::print("{}\n", telemetry::json_text(out));
  } else {
    fmt::print("replay of {}: {} frames ({} ingress, {} egress) over {:.3f} s of capture; policy "
               "{}, {} rules in force\n\n",
               *capture, frames, ingress_frames, frames - ingress_frames, span,
               policy_label(*loaded->policy, rules.profile), rules.rules.size());
    fmt::print("Ingress (XDP):\n{}\n{}\n", rules_table(in_rules), reasons_table(in_reasons));
    fmt::print("Egress (TC, {}):\n{}\n{}\n", policy::to_string(settings.egress),
               rules_table(eg_rules), reasons_table(eg_reasons));
    if (old) {
      if (changed.empty()) {
        fmt::print("against {}: no flow changes verdict\n",
                   policy_label(*old->policy, old->rules.profile));
      } else {
        fmt::print("Flows whose verdict changes from {} (OLD) to this policy (NEW):\n",
                   policy_label(*old->policy, old->rules.profile));
        std::vector<std::vector<std::string>> t = {{"FLOW", "DIRECTION", "PACKETS", "OLD", "NEW"}};
        for (const auto& [k, n] : changed)
          t.push_back({std::get<0>(k).to_string(), std::get<1>(k) ? "egress" : "ingress",
                       std::to_string(n), std::get<2>(k), std::get<3>(k)});
        fmt::print("{}\n", format_table(t));
      }
    }
    if (dp) {
      fmt::print("datapath (BPF_PROG_TEST_RUN): {} frames, {} decided otherwise than the "
                 "reference, {} counters differ\n",
                 check.frames, check.frames_differing_count, check.counters_differing.size());
      for (const auto& d : check.frames_differing)
        fmt::print("  frame {} {} {}: reference {}, datapath {}\n", d.frame,
                   d.egress ? "egress" : "ingress", d.flow, d.reference, d.datapath);
      for (const auto& c : check.counters_differing) fmt::print("  {}\n", c);
      // The programs run on the kernel's clock, the reference on the
      // capture's: only expiries can tell them apart.
      if (disagree)
        fmt::print("(flows and fragments that expired between the capture's packets expire in "
                   "the reference only: the programs run on the kernel's clock)\n");
    }
  }
  return disagree ? kExitError : kExitOk;
}

}  // namespace xdpguard::cli
