// `xdpguard learn`: what learning saw on an interface, and the policy it
// proposes from it (agent/learn/, docs/learn.md).
#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "cli/cli.hpp"
#include "daemon/apply.hpp"
#include "daemon/learn_keeper.hpp"
#include "kernel/attach.hpp"
#include "kernel/pin_readers.hpp"
#include "kernel/probe.hpp"
#include "learn/preview.hpp"
#include "learn/proposal.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::cli {
namespace {

constexpr size_t kListed = 10;  // addresses listed per set and kind; the rest counted

int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "90m", "36h", "7d", "600" (seconds) -> seconds.
std::optional<int64_t> parse_duration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  long long n = std::strtoll(text.c_str(), &end, 10);
  if (end == text.c_str() || n < 0) return std::nullopt;
  std::string unit(end);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return std::nullopt;
}

std::string list_addresses(const std::vector<learn::Evidence>& evidence) {
  std::string out;
  for (size_t i = 0; i < evidence.size() && i < kListed; ++i)
    out += fmt::format("{}{} ({} packets)", i ? ", " : "", learn::address_text(evidence[i].addr),
                       evidence[i].packets);
  if (evidence.size() > kListed) out += fmt::format(" and {} more", evidence.size() - kListed);
  return out;
}

void print_report(const learn::Proposal& p, const learn::PreviewReport& pv, bool emptied) {
  std::vector<std::vector<std::string>> rows = {
      {"rule", "set", "peers", "confirmed", "packets", "not recorded (table full)"}};
  for (const auto& r : p.rules)
    if (r.learned || r.peers || r.overflow)
      rows.push_back({r.id + (r.unconfirmable ? " (cannot confirm)" : ""), r.set,
                      std::to_string(r.peers), std::to_string(r.confirmed),
                      std::to_string(r.packets), std::to_string(r.overflow)});
  fmt::print("{}", format_table(rows));
  if (p.confirm_overflow)
    fmt::print("confirmations not recorded (table full): {}\n", p.confirm_overflow);

  std::vector<std::string> quiet;
  for (const auto& s : p.sets) {
    if (s.no_traffic) {
      quiet.push_back(s.name);
      continue;
    }
    fmt::print("\nset {}: {} {} prefix{} from {} confirmed peer{}{}\n", s.name,
               s.open ? "proposes" : "adds", s.proposed.size(), s.proposed.size() == 1 ? "" : "es",
               s.confirmed.size(), s.confirmed.size() == 1 ? "" : "s",
               s.from_file ? " (its addresses come from a file: write them there by hand)" : "");
    for (const auto& pr : s.proposed)
      fmt::print("  {:<24} {} address{}, {} packets\n", pr.cidr.to_string(), pr.addresses,
                 pr.addresses == 1 ? "" : "es", pr.packets);
    if (!s.unconfirmed.empty())
      fmt::print("  not proposed, never confirmed: {}\n", list_addresses(s.unconfirmed));
    if (!s.unconfirmable.empty())
      fmt::print("  not proposed, seen only where a peer cannot confirm (receive-only rules, UDP "
                 "or ICMP the host only answers; --include-unconfirmable proposes them): {}\n",
                 list_addresses(s.unconfirmable));
  }
  if (!quiet.empty()) {
    std::string names;
    for (const auto& n : quiet) names += (names.empty() ? "" : ", ") + n;
    if (emptied)
      fmt::print("\nsets whose rules saw no peer, emptied (--empty-unseen): {}\n", names);
    else
      fmt::print("\nsets whose rules saw no peer, left open to any address (fill in, empty "
                 "with --empty-unseen, or remove their rules): {}\n", names);
  }
  fmt::print("\npreview (reference classifier, proposed policy): {} sighting{} of proposed peers "
             "replayed, {} admitted\n",
             pv.replayed, pv.replayed == 1 ? "" : "s", pv.admitted);
  for (const auto& r : pv.refused) fmt::print("  REFUSED: {}\n", r);
  if (pv.unproposed) {
    fmt::print("  {} sighting{} of peers not proposed:", pv.unproposed, pv.unproposed == 1 ? "" : "s");
    for (const auto& [what, n] : pv.unproposed_outcomes) fmt::print(" {} {};", what, n);
    fmt::print("\n");
  }
}

}  // namespace

int run_learn(int argc, char** argv) {
  auto o = make_options("learn",
                        "What learning saw (attach/reload/run with --learn or settings.learn), and "
                        "the policy it proposes: each open peer set replaced by its confirmed "
                        "peers (docs/learn.md).");
  o.add_options()("iface", "read the observations of this interface's pins", cxxopts::value<std::string>(), "IF")(
      "policy", "the policy to rewrite (default: the one applied to --iface)",
      cxxopts::value<std::string>(), "FILE")(
      "profile", "profile of --policy", cxxopts::value<std::string>()->default_value(""), "NAME")(
      "out", "write the proposed policy here", cxxopts::value<std::string>(), "FILE")(
      "aggregate", "v4=LEN,v6=LEN,min=N: N addresses in one /LEN become that prefix",
      cxxopts::value<std::string>()->default_value("v4=24,v6=64,min=2"), "SPEC")(
      "include-unconfirmable",
      "also propose peers seen only on rules where they cannot confirm (receive-only, UDP "
      "the host only answers)")(
      "empty-unseen", "empty the open sets whose rules saw no peer (default: leave them open)")(
      "since", "only sightings last seen in this window (600, 90m, 36h, 7d)",
      cxxopts::value<std::string>(), "AGE")(
      "save", "write the observations read (merged) to FILE", cxxopts::value<std::string>(), "FILE")(
      "merge", "add observations saved earlier with --save", cxxopts::value<std::vector<std::string>>(), "FILE")(
      "forget", "remove what was kept of earlier learn maps for --iface (before a detach or "
                "reboot), then exit");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (r.count("forget")) {
    if (!r.count("iface")) {
      print_error("--forget needs --iface IF");
      return kExitUsage;
    }
    if (auto st = daemon::forget_learned(r["iface"].as<std::string>()); !st) {
      print_error(st.error().message);
      return kExitError;
    }
    fmt::print("forgot what was kept of earlier learning on {}\n", r["iface"].as<std::string>());
    return kExitOk;
  }
  if (!r.count("iface") && !r.count("merge")) {
    print_error("learn needs --iface IF or --merge FILE");
    return kExitUsage;
  }
  learn::ProposeOptions options;
  std::string err;
  auto agg = learn::parse_aggregate(r["aggregate"].as<std::string>(), err);
  if (!agg) {
    print_error(err);
    return kExitUsage;
  }
  options.aggregate = *agg;
  options.include_unconfirmable = r.count("include-unconfirmable") > 0;
  options.empty_unseen = r.count("empty-unseen") > 0;
  if (r.count("since")) {
    auto window = parse_duration(r["since"].as<std::string>());
    if (!window) {
      print_error("--since: '" + r["since"].as<std::string>() + "' is not a duration (600, 90m, 36h, 7d)");
      return kExitUsage;
    }
    options.since = wall_now() - *window;
  }

  learn::Observations seen;
  std::string source;
  if (r.count("iface")) {
    const auto iface = r["iface"].as<std::string>();
    auto pins = kernel::read_learned(iface);
    if (!pins) {
      print_error(pins.error().message);
      return kExitError;
    }
    if (!pins->learning)
      fmt::print(stderr, "warning: learning is off on {}: nothing new is observed (attach, reload "
                         "or run with --learn, or settings.learn.enabled)\n", iface);
    if (pins->settings.egress_mode == XDPG_EGRESS_OFF)
      fmt::print(stderr, "warning: egress is off on {}: no peer can be confirmed\n", iface);
    learn::merge(seen, daemon::observations_of(*pins));
    source = iface;
    auto earlier = daemon::learned_earlier(iface, *pins);
    if (!earlier) {
      print_error(earlier.error().message);
      return kExitError;
    }
    if (!earlier->sightings.empty()) {
      fmt::print(stderr, "including {} sightings kept from earlier learn maps (before a detach or "
                         "reboot; --forget removes them)\n", earlier->sightings.size());
      learn::merge(seen, *earlier);
    }
  }
  if (r.count("merge"))
    for (const auto& file : r["merge"].as<std::vector<std::string>>()) {
      auto text = daemon::read_file(file);
      learn::Observations more;
      if (!text || !learn::from_text(*text, more, err)) {
        print_error(file + ": " + (text ? err : "cannot read"));
        return kExitError;
      }
      learn::merge(seen, more);
      source += (source.empty() ? "" : " + ") + file;
    }
  if (r.count("save"))
    if (auto st = daemon::write_private(r["save"].as<std::string>(), learn::to_text(seen)); !st) {
      print_error(st.error().message);
      return kExitError;
    }

  // The policy to rewrite: as given, or as applied to the interface.
  std::string text, path, base_dir = ".", profile = r["profile"].as<std::string>();
  if (r.count("policy") && r["policy"].as<std::string>() != "default") {
    path = r["policy"].as<std::string>();
    auto t = daemon::read_file(path);
    if (!t) {
      print_error("cannot read " + path);
      return kExitError;
    }
    text = *t;
    auto slash = path.rfind('/');
    base_dir = slash == std::string::npos ? "." : path.substr(0, slash ? slash : 1);
  } else if (!r.count("policy") && r.count("iface")) {
    auto dir = daemon::state_dir(r["iface"].as<std::string>());
    auto rec = dir ? daemon::load_record(*dir, "applied") : std::nullopt;
    if (!rec) {
      print_error("no record of the policy applied to " + r["iface"].as<std::string>() +
                  "; name it with --policy FILE");
      return kExitError;
    }
    text = rec->text, path = rec->path, base_dir = rec->base_dir;
    if (!r.count("profile")) profile = rec->profile;
  } else {
    text = std::string(kDefaultPolicyYaml), path = "default";
  }
  auto before = policy::parse_policy_text(text, path, base_dir);
  if (!before.ok()) {
    for (const auto& d : before.errors) fmt::print(stderr, "{}\n", d.to_string());
    return kExitError;
  }
  auto selected = policy::select_rules(*before.policy, profile);
  if (auto* d = std::get_if<policy::Diagnostic>(&selected)) {
    fmt::print(stderr, "{}\n", d->to_string());
    return kExitError;
  }
  const auto& rules = std::get<policy::RuleSet>(selected);

  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%MZ", std::gmtime(&now));
  options.generated = fmt::format("on {} from {}", when, source);
  learn::Proposal proposal = learn::propose(*before.policy, text, rules, seen, options);

  auto after = policy::parse_policy_text(proposal.text, path, base_dir);
  if (!after.ok()) {
    // A bug of the rewriting, not of the operator's input: show where.
    for (const auto& d : after.errors) fmt::print(stderr, "proposal: {}\n", d.to_string());
    return kExitError;
  }
  auto after_selected = policy::select_rules(*after.policy, profile);
  if (auto* d = std::get_if<policy::Diagnostic>(&after_selected)) {
    fmt::print(stderr, "proposal: {}\n", d->to_string());
    return kExitError;
  }
  learn::PreviewReport pv =
      learn::preview(std::get<policy::RuleSet>(after_selected), seen, proposal);
  fmt::print("learned on {}; policy {} (profile {})\n\n", source, path, profile.empty() ? "none" : profile);
  print_report(proposal, pv, options.empty_unseen);
  if (r.count("out")) {
    const auto out = r["out"].as<std::string>();
    if (auto st = daemon::write_private(out, proposal.text); !st) {
      print_error(st.error().message);
      return kExitError;
    }
    fmt::print("\nproposed policy written to {}: review it, then `xdpguard reload --iface IF "
               "--policy {} --confirm 120` and `xdpguard confirm` (docs/learn.md)\n", out, out);
  } else {
    fmt::print("\n--out FILE writes the proposed policy\n");
  }
  return pv.refused.empty() ? kExitOk : kExitError;
}

}  // namespace xdpguard::cli
