#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <variant>

#include "cli/cli.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::cli {
namespace {

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

void print_error(std::string_view message) {
  fmt::print(stderr, "xdpguard: error: {}\n", message);
}

std::optional<LoadedPolicy> load_policy(const std::string& path, const std::string& profile,
                                        policy::ParseOptions options, const std::string& iface) {
  bool embedded = path.empty() || path == "default";
  policy::ParseResult parsed = embedded ? policy::parse_policy_text(kDefaultPolicyYaml,
                                                                    "<embedded default>", ".",
                                                                    options)
                                        : policy::parse_policy_file(path, options);
  if (!parsed.ok()) {
    for (const auto& d : parsed.errors) fmt::print(stderr, "{}\n", d.to_string());
    if (parsed.errors.empty()) print_error("cannot read policy " + path);
    return std::nullopt;
  }
  LoadedPolicy out;
  out.policy = std::make_unique<policy::Policy>(std::move(*parsed.policy));
  auto selected = policy::select_rules(*out.policy, profile, iface);
  if (auto* d = std::get_if<policy::Diagnostic>(&selected)) {
    fmt::print(stderr, "{}\n", d->to_string());
    return std::nullopt;
  }
  out.rules = std::get<policy::RuleSet>(std::move(selected));
  out.warnings = std::move(parsed.warnings);
  for (auto& w : policy::peer_set_warnings(*out.policy, out.rules))
    out.warnings.push_back(std::move(w));
  return out;
}

void print_warnings(const LoadedPolicy& loaded) {
  for (const auto& w : loaded.warnings) fmt::print(stderr, "warning: {}\n", w.to_string());
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], utf8_length(row[i]));
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - utf8_length(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string truncate(const std::string& s, size_t width) {
  if (width < 4 || utf8_length(s) <= width) return s;
  size_t keep = width - 3, chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == keep) break;
      ++chars;
    }
  }
  return s.substr(0, i) + "...";
}

}  // namespace xdpguard::cli
