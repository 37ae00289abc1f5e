// libFuzzer target: arbitrary bytes as policy text, through everything the
// agent does with a policy before it touches the kernel: parse, select the
// rules of a profile, compile to map contents, warn about open peer sets.
//
// Besides "no crash, no leak, no UB" (the sanitizers), it checks the
// invariants callers rely on; a broken one traps, so libFuzzer saves the input:
// - a result has a policy exactly when it has no errors;
// - every parse diagnostic points into a file: line >= 1 and column >= 1
//   (an operator must be able to find the mistake). select_rules diagnostics are
//   exempt: "unknown profile" and "too many rules" for the whole policy have no
//   line by design;
// - select_rules only fails for an unknown profile or more than XDPG_MAX_RULES;
// - a selected IP rule always has its peer set (the parser resolved it);
// - compile() output only mentions rules that exist.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "compile/compiler.hpp"
#include "policy/parser.hpp"
#include "xdpguard/maps.h"

namespace {

using namespace xdpguard;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_located(const policy::Diagnostic& d) {
  check(d.where.line >= 1 && d.where.column >= 1);
  check(!d.where.file.empty() && !d.message.empty());
  check(!d.to_string().empty());
}

bool only_rule_bits(uint64_t mask, size_t rule_count) {
  return rule_count >= 64 || (mask >> rule_count) == 0;
}

void check_compiled(const policy::RuleSet& set) {
  const compile::CompiledPolicy c = compile::compile(set);
  const size_t n = set.rules.size();
  check(c.info.rule_count == n && c.rule_meta.size() == n);
  for (const auto& [index, mask] : c.port_entries)
    check(index < XDPG_PORT_TABLE_ENTRIES && mask != 0 && only_rule_bits(mask, n));
  for (const auto& [key, mask] : c.peers_v4.entries)
    check(key.prefixlen >= 1 && key.prefixlen <= 32 && mask != 0 && only_rule_bits(mask, n));
  for (const auto& [key, mask] : c.peers_v6.entries)
    check(key.prefixlen >= 1 && key.prefixlen <= 128 && mask != 0 && only_rule_bits(mask, n));
  check(only_rule_bits(c.peers_v4.default_mask, n) && only_rule_bits(c.peers_v6.default_mask, n));
}

// `compile_it`: compile() costs ~50 ms here (it fills the whole port table,
// several MB, under ASan), so only one selection per input is compiled; a
// profile's selection is a subset of the same rules and takes the same paths.
void select_and_compile(const policy::Policy& pol, const std::string& profile, bool compile_it) {
  auto selected = policy::select_rules(pol, profile);
  if (auto* diag = std::get_if<policy::Diagnostic>(&selected)) {
    const bool unknown_profile = !profile.empty() && !pol.find_profile(profile);
    check(unknown_profile || pol.rules.size() > XDPG_MAX_RULES);
    check(!diag->message.empty());
    return;
  }
  const auto& set = std::get<policy::RuleSet>(selected);
  check(set.policy == &pol && set.rules.size() <= XDPG_MAX_RULES);
  for (const auto& e : set.rules) {
    check(e.rule != nullptr && e.rule->enforced);
    check((e.peers == nullptr) == (e.rule->protocol == policy::Protocol::Ethertype));
  }
  for (const auto& w : policy::peer_set_warnings(pol, set)) check_located(w);
  if (compile_it) check_compiled(set);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Peer-set files named by the input resolve next to the test fixtures, so
  // `file: admin-hosts.txt` in a seed reads a real file.
  static const std::string base_dir = XDPGUARD_SOURCE_DIR "/tests/data/policies";
  const policy::ParseResult r = policy::parse_policy_text(text, "fuzz.yaml", base_dir);

  check(r.ok() == r.errors.empty());
  check(r.policy.has_value() == r.errors.empty());
  for (const auto& d : r.errors) check_located(d);
  for (const auto& d : r.warnings) check_located(d);
  if (!r.ok()) return 0;

  select_and_compile(*r.policy, "", true);
  select_and_compile(*r.policy, "secured-only", false);
  return 0;
}
