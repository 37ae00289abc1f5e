// reload, confirm and run: changing the policy in force without a gap, and
// the daemon that keeps it.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cxxopts.hpp>
#include <filesystem>

#include "cli/cli.hpp"
#include "daemon/agent.hpp"
#include "daemon/apply.hpp"
#include "daemon/learn_keeper.hpp"
#include "kernel/attach.hpp"
#include "kernel/reload.hpp"
#include "daemon/telemetry_service.hpp"

namespace xdpguard::cli {

void add_apply_options(cxxopts::Options& o) {
  add_policy_options(o);
  o.add_options()("audit", "audit mode: classify and count, drop nothing (would-drop)")(
      "learn", "learn the open peer sets' peers (docs/learn.md), whatever the policy says")(
      "force", "apply even if the anti-lock-out checks object")(
      "ssh-port", "the admin SSH port the anti-lock-out checks look for",
      cxxopts::value<uint16_t>()->default_value("22"), "PORT");
}

std::optional<kernel::XdpMode> xdp_mode_option(const cxxopts::ParseResult& r) {
  const auto text = r["mode"].as<std::string>();
  auto mode = kernel::xdp_mode_from_string(text);
  if (!mode) print_error(fmt::format("--mode must be native or generic, not '{}'", text));
  return mode;
}

std::optional<daemon::ApplyOptions> apply_options(const cxxopts::ParseResult& r) {
  daemon::ApplyOptions a;
  a.policy_path = r["policy"].as<std::string>();
  a.profile = r["profile"].as<std::string>();
  a.audit = r.count("audit") > 0;
  a.learn = r.count("learn") > 0;
  a.force = r.count("force") > 0;
  try {
    a.ssh_port = r["ssh-port"].as<uint16_t>();
  } catch (const cxxopts::exceptions::exception& e) {
    print_error(fmt::format("--ssh-port: {}", e.what()));
    return std::nullopt;
  }
  return a;
}

std::optional<daemon::PreparedPolicy> prepare_or_print(const daemon::ApplyOptions& req,
                                                      const std::string& iface) {
  auto prepared = daemon::prepare_policy(req, iface);
  if (auto* problems = std::get_if<daemon::Problems>(&prepared)) {
    for (const auto& p : *problems) fmt::print(stderr, "{}\n", p);
    return std::nullopt;
  }
  auto& p = std::get<daemon::PreparedPolicy>(prepared);
  for (const auto& w : p.warnings) fmt::print(stderr, "warning: {}\n", w.to_string());
  return std::move(p);
}

int run_reload(int argc, char** argv) {
  auto o = make_options("reload",
                        "Replace the policy on an attached interface in one step: validated and "
                        "compiled first, counters and flows carried over.");
  add_apply_options(o);
  o.add_options()("iface", "interface", cxxopts::value<std::string>(), "IF")(
      "confirm", "roll back to the policy in force now unless `xdpguard confirm` comes within "
                 "SECONDS",
      cxxopts::value<unsigned>(), "SECONDS");
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto iface = required(r, o, "iface");
  if (!iface) return kExitUsage;
  auto req = apply_options(r);
  if (!req) return kExitUsage;
  unsigned confirm_seconds = r.count("confirm") ? r["confirm"].as<unsigned>() : 0;
  if (r.count("confirm") && confirm_seconds == 0) {
    print_error("--confirm needs a positive number of seconds");
    return kExitUsage;
  }

  auto prepared = prepare_or_print(*req, *iface);
  if (!prepared) {
    print_error("policy rejected; nothing changed on " + *iface);
    return kExitError;
  }

  if (confirm_seconds) {
    auto dir = daemon::state_dir(*iface);
    if (!dir) {
      print_error(dir.error().message);
      return kExitError;
    }
    std::error_code ec;
    if (std::filesystem::exists(*dir + "/pending", ec)) {
      print_error(fmt::format("a confirmed apply is already pending on {}; `xdpguard confirm "
                              "--iface {}` it (or let it roll back) first",
                              *iface, *iface));
      return kExitError;
    }
    auto applied = daemon::load_record(*dir, "applied");
    if (!applied) {
      print_error(fmt::format("no record of the policy in force on {} (in {}), so nothing to "
                              "roll back to; reload without --confirm",
                              *iface, *dir));
      return kExitError;
    }
    if (auto st = daemon::save_record(*dir, "previous", *applied); !st) {
      print_error(st.error().message);
      return kExitError;
    }
  }

  auto rep = daemon::reload_prepared(*prepared, *iface);
  if (!rep) {
    print_error(rep.error().message + "; the policy in force is unchanged");
    return kExitError;
  }
  fmt::print("reloaded {}: policy {}{}; program {} -> {}; rules kept {}, added {}, removed {}\n",
             *iface, policy_label(*prepared->policy, prepared->rules.profile),
             prepared->audit ? " (AUDIT: nothing is dropped)" : "", rep->old_prog_id,
             rep->new_prog_id, rep->kept, rep->added, rep->removed);
  if (confirm_seconds) {
    if (auto st = daemon::start_confirm_watcher(*iface, confirm_seconds); !st) {
      print_error(st.error().message + "; the new policy stays without a rollback watcher");
      return kExitError;
    }
    fmt::print("rolls back in {}s unless: xdpguard confirm --iface {}\n", confirm_seconds, *iface);
  }
  return kExitOk;
}

int run_confirm(int argc, char** argv) {
  auto parsed =
      parse_iface_only("confirm", "Keep the policy of a pending `reload --confirm`.", argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  const std::string& iface = std::get<std::string>(parsed);
  if (auto st = daemon::confirm(iface); !st) {
    print_error(st.error().message);
    return kExitError;
  }
  fmt::print("confirmed: the policy in force on {} stays\n", iface);
  return kExitOk;
}

int run_daemon(int argc, char** argv) {
  auto o = make_options("run",
                        "Foreground daemon: adopt or attach, reload on SIGHUP, exit on SIGTERM "
                        "leaving the firewall attached.");
  add_apply_options(o);
  o.add_options()("iface", "interface to protect (repeat for several)",
                  cxxopts::value<std::vector<std::string>>(), "IF")(
      "mode", "XDP mode for interfaces it attaches: native or generic",
      cxxopts::value<std::string>()->default_value("native"), "MODE");
  daemon::add_telemetry_options(o);
  auto parsed = parse(o, argc, argv);
  if (auto* code = std::get_if<int>(&parsed)) return *code;
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  auto ifaces = required<std::vector<std::string>>(r, o, "iface");
  if (!ifaces) return kExitUsage;
  auto mode = xdp_mode_option(r);
  if (!mode) return kExitUsage;
  auto req = apply_options(r);
  if (!req) return kExitUsage;
  daemon::AgentConfig config;
  config.ifaces = *ifaces;
  config.apply = *req;
  config.mode = *mode;
  // A daemon's log lines carry time and level (journald adds its own stamp,
  // but stderr to a file does not).
  auto telemetry_config = daemon::telemetry_config(r);
  if (!telemetry_config) return kExitUsage;
  telemetry::configure_logging(telemetry_config->log_format);
  daemon::Agent agent(std::move(config));
  auto telemetry = daemon::TelemetryService::create(std::move(*telemetry_config), agent);
  if (!telemetry) {
    print_error(telemetry.error().message);
    return kExitError;
  }
  daemon::LearnKeeper learn_keeper(agent);
  return agent.run();
}

}  // namespace xdpguard::cli
