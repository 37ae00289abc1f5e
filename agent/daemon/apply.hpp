// Putting a policy in force, as `attach`, `reload`, `run` and the confirm
// watcher all do it: read and validate the policy completely, compile it,
// refuse a policy that would lock the operator out, then attach or reload;
// and remember what was applied, so that a confirmed apply can roll back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/attach.hpp"
#include "kernel/reload.hpp"
#include "policy/model.hpp"

namespace xdpguard::daemon {

struct ApplyOptions {
  std::string policy_path = "default";  // "" or "default": the embedded policy
  std::string profile;
  bool audit = false;     // --audit: audit whatever the policy's settings say
  bool learn = false;     // --learn: learn the peer sets whatever the settings say
  bool force = false;     // --force: skip the anti-lock-out checks
  uint16_t ssh_port = 22; // the admin port the checks look for
};

// A policy read, validated and compiled for one interface (its view: the
// rules whose `interfaces:` scope includes it), ready to load.
struct PreparedPolicy {
  std::unique_ptr<policy::Policy> policy;  // RuleSet points into it
  policy::RuleSet rules;                   // rules.iface: the interface
  std::vector<policy::Diagnostic> warnings;
  std::string text;      // exactly the text parsed
  std::string path;      // as given ("default" for the embedded policy)
  std::string base_dir;  // peer-set files are relative to it
  compile::CompiledPolicy compiled;
  kernel::DatapathOptions options;
  bool audit = false;    // in force: --audit or `mode: audit`
  ApplyOptions request;
};

// Every problem as one line ("file:line:col: message" for policy errors).
using Problems = std::vector<std::string>;

// The policy's settings as the datapath's rodata and flow table size.
kernel::DatapathOptions datapath_options(const policy::Settings&);

// Reads `req.policy_path` (or parses `text` when given, with `base_dir`),
// selects the profile and `iface`'s view, compiles, and, in enforce mode
// without --force, runs the anti-lock-out checks.
std::variant<PreparedPolicy, Problems> prepare_policy(const ApplyOptions& req,
                                                      const std::string& iface);
std::variant<PreparedPolicy, Problems> prepare_policy_text(const ApplyOptions& req,
                                                           const std::string& text,
                                                           const std::string& base_dir,
                                                           const std::string& iface);

// Anti-lock-out (enforce mode): why the policy would cut the operator off,
// or nullopt. (a) no rule in force admits TCP to `ssh_port` from anyone;
// (b) $SSH_CONNECTION is set and the reference classifier drops an ACK of
// that session.
std::optional<std::string> lockout_problem(const policy::RuleSet& rules, uint16_t ssh_port);

// Loads `p` and attaches it to `iface` (kernel::attach), then records it.
kernel::Status attach_prepared(const PreparedPolicy& p, const std::string& iface,
                               kernel::XdpMode mode);
// Replaces the policy on `iface` (kernel::reload), then records it.
kernel::Result<kernel::ReloadReport> reload_prepared(const PreparedPolicy& p,
                                                     const std::string& iface);

// A whole file, or nullopt if it cannot be read.
std::optional<std::string> read_file(const std::string& path);
// Written whole to a temporary name (mode 0600), then renamed: a reader
// never sees half.
kernel::Status write_private(const std::string& path, const std::string& content);

// ---- what was applied, under the state directory ---------------------------

// /run/xdpguard/<name of the pin directory> ($XDPGUARD_STATE_DIR overrides
// /run/xdpguard), created 0700.
kernel::Result<std::string> state_dir(const std::string& iface);

// Removes the state directory of `iface` (after a detach), if there is one.
void forget_state(const std::string& iface);

struct AppliedRecord {
  std::string text, path, base_dir, profile;
  bool audit = false;  // the --audit flag it was applied with
  bool learn = false;  // the --learn flag
};
// "applied" (the policy in force) or "previous" (what a confirmed apply
// rolls back to); files <which>.yaml and <which>.meta, 0600.
kernel::Status save_record(const std::string& dir, const std::string& which,
                           const AppliedRecord&);
std::optional<AppliedRecord> load_record(const std::string& dir, const std::string& which);

// ---- confirmed apply ---------------------------------------------------------

// Forks a detached watcher (setsid) that rolls `iface` back to the
// "previous" record unless confirm() is called within `seconds`. Its pid
// goes to <state dir>/watcher.pid, its log to watcher.log; the marker
// <state dir>/pending exists while it waits.
kernel::Status start_confirm_watcher(const std::string& iface, unsigned seconds);
// Confirms a pending apply: the watcher exits without touching anything.
kernel::Status confirm(const std::string& iface);

}  // namespace xdpguard::daemon
