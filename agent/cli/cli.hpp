// Pieces shared by the `xdpguard` subcommands.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <cxxopts.hpp>

#include "daemon/apply.hpp"
#include "kernel/pin_readers.hpp"
#include "policy/model.hpp"
#include "policy/parser.hpp"

namespace xdpguard::cli {

// Exit codes: 0 success, 1 failure, 2 bad command line, 3 warnings only
// (`check --warnings-as-errors`: CI can tell a warned policy from a broken one).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitWarnings = 3;

// A parsed policy with the rules of one profile. The Policy lives on the heap
// because RuleSet points into it.
struct LoadedPolicy {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
  std::vector<policy::Diagnostic> warnings;
};

// `path` "" or "default": the embedded default policy. Prints every error as
// file:line:col: message on stderr and returns nullopt on any error. With
// `iface`, the rules are that interface's view (policy::select_rules).
std::optional<LoadedPolicy> load_policy(const std::string& path, const std::string& profile,
                                        policy::ParseOptions options = {},
                                        const std::string& iface = "");
void print_warnings(const LoadedPolicy&);

// One line on stderr: "xdpguard: error: <message>".
void print_error(std::string_view message);

// Left-aligned columns separated by two spaces; the last column is not padded.
std::string format_table(const std::vector<std::vector<std::string>>& rows);
// `s` cut to at most `width` characters (UTF-8 aware), "..." marking the cut.
std::string truncate(const std::string& s, size_t width);

// Option plumbing shared by the subcommands (commands.cpp).
cxxopts::Options make_options(const std::string& command, const std::string& what);
void add_policy_options(cxxopts::Options& o);
// Parsed options, or the exit code when the command should stop (help, error).
std::variant<cxxopts::ParseResult, int> parse(cxxopts::Options& o, int argc, char** argv);
// "--NAME is required (xdpguard COMMAND --help)" on stderr.
void print_missing(const cxxopts::Options& o, const char* name);
// The value of a required option (T: std::vector<std::string> for a
// repeatable one), or nullopt with the error printed.
template <typename T = std::string>
std::optional<T> required(const cxxopts::ParseResult& r, const cxxopts::Options& o,
                          const char* name) {
  if (r.count(name)) return r[name].as<T>();
  print_missing(o, name);
  return std::nullopt;
}
// A command whose only option is --iface (plus --verbose/--help): the
// interface, or the exit code when the command should stop.
std::variant<std::string, int> parse_iface_only(const std::string& command,
                                                const std::string& what, int argc, char** argv);
std::string policy_label(const policy::Policy& p, const std::string& profile);

// lifecycle.cpp: --policy/--profile plus --audit, --force, --ssh-port, and
// the apply pipeline with its errors printed (file:line:col) on stderr.
void add_apply_options(cxxopts::Options& o);
std::optional<daemon::ApplyOptions> apply_options(const cxxopts::ParseResult& r);
// --mode (native|generic) of attach and run; the error printed when invalid.
std::optional<kernel::XdpMode> xdp_mode_option(const cxxopts::ParseResult& r);
std::optional<daemon::PreparedPolicy> prepare_or_print(const daemon::ApplyOptions& req,
                                                      const std::string& iface);

// commands.cpp: the counter tables of `stats`, also `replay`'s.
std::string rules_table(const std::vector<kernel::RuleStats>& rules);
std::string reasons_table(const std::vector<kernel::ReasonStats>& reasons);

int run_check(int argc, char** argv);
int run_attach(int argc, char** argv);
int run_detach(int argc, char** argv);
int run_stats(int argc, char** argv);
int run_flows(int argc, char** argv);
int run_explain(int argc, char** argv);
int run_diff(int argc, char** argv);
int run_reload(int argc, char** argv);   // lifecycle.cpp
int run_confirm(int argc, char** argv);
int run_daemon(int argc, char** argv);   // `xdpguard run`
int run_learn(int argc, char** argv);    // learn.cpp
int run_replay(int argc, char** argv);   // replay.cpp

// telemetry.cpp:
//   xdpguard events  --iface IF [--iface IF2] [--json] [--count N] [--timeout S]
//   xdpguard metrics --iface IF [--textfile PATH]
int run_events(int argc, char** argv);
int run_metrics(int argc, char** argv);
// `stats --drops`: the top `limit` dropped destination ports and peers, both
// directions.
int print_drops(const std::string& iface, bool json, size_t limit);
// `stats --watch`: a per-rule table with rates, redrawn in place every
// `interval_s` seconds (plain successive tables when stdout is not a
// terminal); `count` 0: until interrupted.
int watch_stats(const std::string& iface, double interval_s, unsigned count);

}  // namespace xdpguard::cli
