// xdpguard <command> [options]: the operator's entry point.
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "cli/cli.hpp"
#include "kernel/libbpf_log.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: xdpguard <command> [options]\n"
    "\n"
    "commands:\n"
    "  check    [[--policy] FILE] [--profile NAME] [--strict] [--warnings-as-errors]\n"
    "                                                      validate and lint a policy, show its\n"
    "                                                      rule table (exit 3: warnings only)\n"
    "  attach   --iface IF [--policy FILE] [--profile NAME] [--mode native|generic]\n"
    "                                                      load and attach the firewall\n"
    "  reload   --iface IF [--policy FILE] [--profile NAME] [--audit] [--confirm SECONDS]\n"
    "                                                      replace the policy in one step\n"
    "  confirm  --iface IF                                 keep a `reload --confirm` policy\n"
    "  run      --iface IF [--iface IF2...] [--policy FILE] [--profile NAME] [--audit]\n"
    "                                                      foreground daemon: adopt or attach,\n"
    "                                                      SIGHUP reloads, SIGTERM leaves it attached\n"
    "  detach   --iface IF                                 detach and remove the pins\n"
    "  stats    --iface IF [--json] [--drops] [--watch]    counters per rule and drop reason,\n"
    "                                                      both directions, flow table occupancy\n"
    "  flows    --iface IF [--json]                        flows the host opened, as tracked\n"
    "  events   --iface IF [--json]                        print drop events (not beside `run`)\n"
    "  metrics  --iface IF [--textfile PATH]               Prometheus metrics, once\n"
    "  explain  [--policy FILE] [--profile NAME] --packet SPEC\n"
    "                                                      what the policy does with one packet\n"
    "  diff     OLD NEW [--profile NAME] [--old-profile NAME] [--new-profile NAME]\n"
    "                                                      what changes for traffic: packets newly\n"
    "                                                      admitted, refused or counted elsewhere\n"
    "  replay   [--policy FILE] [--profile NAME] CAPTURE.pcap (--host ADDR | --host-mac MAC)...\n"
    "           [--against OLD] [--datapath] [--json]\n"
    "                                                      what the policy does with a capture,\n"
    "                                                      per rule and drop reason\n"
    "  learn    --iface IF [--out FILE] [--aggregate SPEC] [--since AGE]\n"
    "                                                      peers seen while learning (--learn), and\n"
    "                                                      the policy they propose\n"
    "\n"
    "--policy omitted or `default`: the policy built into this binary.\n"
    "attach/reload/run refuse, unless --force, an enforce-mode policy with no admin SSH rule\n"
    "or one that drops the SSH session in $SSH_CONNECTION.\n"
    "-v: debug logs (libbpf included). `xdpguard <command> --help` for details.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace xdpguard::cli;
  auto logger = spdlog::stderr_color_mt("xdpguard");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::info);

  // The command is the first argument that is not an option; -v may come
  // before or after it.
  int cmd_at = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-v" || a == "--verbose") spdlog::set_level(spdlog::level::debug);
    if (cmd_at == 0 && !a.starts_with('-')) cmd_at = i;
  }
  if (cmd_at == 0) {
    bool help = argc > 1 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0);
    fmt::print(help ? stdout : stderr, "{}", kUsage);
    return help ? kExitOk : kExitUsage;
  }
  xdpguard::kernel::route_libbpf_to_spdlog();

  std::string_view command = argv[cmd_at];
  std::string prog = fmt::format("xdpguard {}", command);
  std::vector<char*> args{prog.data()};
  for (int i = 1; i < argc; ++i)
    if (i != cmd_at) args.push_back(argv[i]);
  int n = static_cast<int>(args.size());
  args.push_back(nullptr);

  if (command == "check") return run_check(n, args.data());
  if (command == "attach") return run_attach(n, args.data());
  if (command == "detach") return run_detach(n, args.data());
  if (command == "reload") return run_reload(n, args.data());
  if (command == "confirm") return run_confirm(n, args.data());
  if (command == "run") return run_daemon(n, args.data());
  if (command == "stats") return run_stats(n, args.data());
  if (command == "flows") return run_flows(n, args.data());
  if (command == "explain") return run_explain(n, args.data());
  if (command == "diff") return run_diff(n, args.data());
  if (command == "learn") return run_learn(n, args.data());
  if (command == "replay") return run_replay(n, args.data());
  if (command == "events") return xdpguard::cli::run_events(n, args.data());
  if (command == "metrics") return xdpguard::cli::run_metrics(n, args.data());
  if (command == "help") {
    fmt::print("{}", kUsage);
    return kExitOk;
  }
  print_error(fmt::format("unknown command '{}' (try: check, attach, reload, confirm, run, detach, stats, flows, explain, diff, replay, learn, events, metrics)",
                          command));
  return kExitUsage;
}
