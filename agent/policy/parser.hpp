// Reading a policy: YAML text -> validated Policy, or every error found, each
// with file:line:column. A policy with any error is rejected whole.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/model.hpp"

namespace xdpguard::policy {

struct ParseResult {
  std::optional<Policy> policy;      // set only when errors is empty
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;  // e.g. peer sets still open to any address
  bool ok() const { return errors.empty() && policy.has_value(); }
};

struct ParseOptions {
  // Documentation keys become required: section, row, secured and purpose on
  // vendor rules, purpose on host essentials (`xdpguard check --strict`).
  bool strict = false;
};

// `display_name` is used in diagnostics; peer-set files are resolved relative
// to `base_dir`.
ParseResult parse_policy_text(std::string_view text, const std::string& display_name,
                              const std::string& base_dir, ParseOptions options = {});
ParseResult parse_policy_file(const std::string& path, ParseOptions options = {});

// The rules in force for `profile` ("" = all enforced rules), in policy order.
// With `iface`, that interface's view: the rules without `interfaces:` and
// those whose roles name it; an interface no role names gets only the
// unscoped ones, or is refused (settings.unlisted_interfaces). Without it,
// every rule whatever its scope. Errors: unknown profile, a refused
// interface, more than XDPG_MAX_RULES rules.
std::variant<RuleSet, Diagnostic> select_rules(const Policy& policy, const std::string& profile,
                                               const std::string& iface = "");

// One warning per peer set that still admits any address, by name.
std::vector<Diagnostic> peer_set_warnings(const Policy& policy, const RuleSet& rules);

}  // namespace xdpguard::policy
