// YAML policy (version 1) -> Policy. Every check reports with file:line:column
// and parsing goes on, so the operator sees all mistakes in one run.
// docs/policy-format.md is the reference for what is checked here.
#include "policy/parser.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <sstream>

#include "policy/cidr.hpp"
#include "policy/suggest.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::policy {

namespace {

constexpr size_t kMaxRuleIdLen = XDPG_RULE_ID_LEN - 1;
constexpr size_t kMaxRowLen = XDPG_RULE_ROW_LEN - 1;
constexpr size_t kMaxPolicyNameLen = sizeof(xdpg_info::policy_name) - 1;
constexpr size_t kMaxProfileNameLen = sizeof(xdpg_info::profile) - 1;

using Keys = std::span<const std::string_view>;

// Whoever can write the policy or a peer-set file decides what reaches the
// host: refuse files that others than their owner may write (as sshd does).
std::optional<std::string> loosely_writable(const struct stat& st, const std::string& path) {
  if (!(st.st_mode & (S_IWGRP | S_IWOTH))) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "'" + path + "' is writable by " + (st.st_mode & S_IWOTH ? "others" : "its group") +
         " (mode " + mode + "); only its owner may write firewall policy: chmod go-w '" + path +
         "'";
}
constexpr std::string_view kTopKeys[] = {
    "version", "name", "description", "peer_sets", "interfaces", "rules", "host_essentials",
    "profiles", "settings"};
constexpr std::string_view kSettingsKeys[] = {"mode",   "egress", "timeouts", "flow_table_size",
                                              "events", "learn",  "unlisted_interfaces"};
constexpr std::string_view kEventKeys[] = {"rate", "burst"};
constexpr std::string_view kLearnKeys[] = {"enabled", "entries"};
// Each learn table holds at most this many entries (about 100 bytes each
// in the kernel, docs/learn.md).
constexpr uint32_t kMaxLearnEntries = 4 * 1024 * 1024;
// Drop events per second per CPU, direction and reason (0: none) and burst.
constexpr uint32_t kMaxEventRate = 100000;
constexpr std::string_view kTimeoutKeys[] = {"tcp_established", "tcp_closing", "udp",
                                             "fragments"};
// Bounds that keep a typo from disabling tracking (a zero timeout expires
// every flow) or pinning dead flows for weeks, or a table from eating memory.
constexpr uint32_t kMaxTcpEstablished = 7 * 24 * 3600;
constexpr uint32_t kMaxShortTimeout = 3600;  // tcp_closing, fragments
constexpr uint32_t kMaxUdpTimeout = 24 * 3600;
constexpr uint32_t kMinFlowTable = 1024;
constexpr uint32_t kMaxFlowTable = 4194304;
constexpr std::string_view kPeerSetKeys[] = {"description", "cidrs", "file"};
constexpr std::string_view kRuleKeys[] = {
    "id",         "section",  "row",       "protocol", "local_port",
    "remote_port", "icmp_types", "ethertypes", "peers", "initiator",
    "flow",       "secured",  "purpose",   "enforced", "not_enforced_reason",
    "interfaces"};
constexpr std::string_view kProfileKeys[] = {"description", "secured_only",
                                                                  "exclude_rules"};

std::string join(Keys words) {
  std::string out;
  for (auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Decimal or 0x-hexadecimal, no sign.
std::optional<uint64_t> parse_unsigned(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool ranges_overlap(const std::vector<PortRange>& a, const std::vector<PortRange>& b,
                    uint16_t* first_common) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (std::max(x.first, y.first) <= std::min(x.last, y.last)) {
        *first_common = std::max(x.first, y.first);
        return true;
      }
  return false;
}

bool peer_sets_overlap(const PeerSet& a, const PeerSet& b) {
  for (const auto& x : a.cidrs)
    for (const auto& y : b.cidrs)
      if (cidrs_overlap(x, y)) return true;
  return false;
}

uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string loc_string(const SourceLocation& w) {
  return w.file + ":" + std::to_string(w.line) + ":" + std::to_string(w.column);
}

struct Field {
  YAML::Node key;
  YAML::Node value;
};
using Fields = std::map<std::string, Field, std::less<>>;

// Per-rule facts the cross-rule checks need.
struct RuleInfo {
  bool valid = true;  // no error in the rule itself
  SourceLocation peers_at;
};

class PolicyParser {
 public:
  PolicyParser(std::string_view text, std::string display_name, std::string base_dir,
               ParseOptions options)
      : text_(text), file_(std::move(display_name)), base_dir_(std::move(base_dir)),
        options_(options) {}

  ParseResult run();

 private:
  SourceLocation at(const YAML::Mark& m) const {
    if (m.is_null()) return {file_, 0, 0};
    return {file_, m.line + 1, m.column + 1};
  }
  SourceLocation at(const YAML::Node& n) const { return at(n.Mark()); }
  // yaml-cpp marks an empty value at the next token; its key is the better place.
  SourceLocation at(const Field& f) const { return f.value.IsNull() ? at(f.key) : at(f.value); }

  void error(SourceLocation where, std::string message) {
    errors_.push_back({std::move(where), std::move(message)});
  }

  Fields fields(const YAML::Node& map, Keys allowed);
  static const Field* get(const Fields& f, std::string_view key) {
    auto it = f.find(key);
    return it == f.end() ? nullptr : &it->second;
  }
  const Field* require(const Fields& f, std::string_view key, const SourceLocation& where,
                       const std::string& what);

  std::optional<std::string> string_value(const Field& f, std::string_view key);
  std::optional<bool> bool_value(const Field& f, std::string_view key);
  std::vector<YAML::Node> items(const Field& f, std::string_view key);
  std::optional<std::vector<PortRange>> ports(const Field& f, std::string_view key);
  std::optional<std::vector<uint8_t>> icmp_types(const Field& f);
  std::optional<std::vector<uint16_t>> ethertypes(const Field& f);
  template <class E>
  std::optional<E> choice(const Field& f, std::string_view key,
                          std::initializer_list<std::pair<std::string_view, E>> options);

  // The entries of a mapping of names (peer sets, interface roles,
  // profiles): `each(name, key, value)` for every well-formed name not seen
  // before (`earlier(name)` is where it was, or nullptr); errors for the rest.
  template <class Earlier, class Each>
  void named_entries(const Field& f, const std::string& not_a_mapping, const std::string& what,
                     size_t max_len, Earlier earlier, Each each);
  void parse_peer_sets(const Field& f);
  void parse_interface_roles(const Field& f);
  std::vector<std::string> rule_roles(const Field& f);
  void read_peer_file(PeerSet& set, const Field& f);
  void parse_rule_list(const Field& f, bool essential);
  void parse_rule(const YAML::Node& node, bool essential);
  void parse_profiles(const Field& f);
  void parse_settings(const Field& f);
  std::optional<uint32_t> bounded(const Field& f, const std::string& key, uint32_t min,
                                  uint32_t max, const char* unit);
  void check_peer_references();
  void check_contradictions();
  bool share_an_interface(const Rule& a, const Rule& b) const;

  std::string_view text_;
  std::string file_;
  std::string base_dir_;
  ParseOptions options_;
  Policy policy_;
  std::vector<RuleInfo> info_;  // parallel to policy_.rules
  std::map<std::string, SourceLocation, std::less<>> rule_ids_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
};

Fields PolicyParser::fields(const YAML::Node& map, Keys allowed) {
  Fields out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: the iterator's pair is a temporary proxy.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      error(at(key), "keys must be plain names");
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      error(at(key), "unknown key '" + name + "' (expected one of: " + join(allowed) + ")" +
                         did_you_mean(name, allowed));
      continue;
    }
    if (auto prev = out.find(name); prev != out.end()) {
      error(at(key), "duplicate key '" + name + "' (first at line " +
                         std::to_string(at(prev->second.key).line) + ")");
      continue;
    }
    out.emplace(name, Field{key, value});
  }
  return out;
}

const Field* PolicyParser::require(const Fields& f, std::string_view key,
                                   const SourceLocation& where, const std::string& what) {
  const Field* field = get(f, key);
  if (!field) error(where, what + "missing required key '" + std::string(key) + "'");
  return field;
}

std::optional<std::string> PolicyParser::string_value(const Field& f, std::string_view key) {
  if (!f.value.IsScalar()) {
    error(at(f), std::string(key) + ": must be a string");
    return std::nullopt;
  }
  return f.value.Scalar();
}

std::optional<bool> PolicyParser::bool_value(const Field& f, std::string_view key) {
  if (f.value.IsScalar()) {
    const std::string& s = f.value.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  error(at(f), std::string(key) + ": must be true or false");
  return std::nullopt;
}

// A single value or a list of them; an empty result has been reported.
std::vector<YAML::Node> PolicyParser::items(const Field& f, std::string_view key) {
  std::vector<YAML::Node> out;
  if (f.value.IsScalar()) {
    out.push_back(f.value);
  } else if (f.value.IsSequence()) {
    for (const auto& n : f.value) out.push_back(n);
    if (out.empty()) error(at(f), std::string(key) + ": must not be empty");
  } else {
    error(at(f), std::string(key) + ": must be a value or a list of values");
  }
  return out;
}

std::optional<std::vector<PortRange>> PolicyParser::ports(const Field& f, std::string_view key) {
  std::vector<PortRange> out;
  bool ok = true;
  for (const auto& n : items(f, key)) {
    if (!n.IsScalar()) {
      error(at(n), std::string(key) + ": must be a port, a \"first-last\" range, or a list of those");
      ok = false;
      continue;
    }
    const std::string& s = n.Scalar();
    const auto dash = s.find('-');
    std::optional<uint64_t> first = parse_unsigned(s.substr(0, dash));
    std::optional<uint64_t> last =
        dash == std::string::npos ? first : parse_unsigned(s.substr(dash + 1));
    if (!first || !last) {
      error(at(n), std::string(key) + ": '" + s + "' is not a port or a \"first-last\" range");
      ok = false;
      continue;
    }
    bool in_range = true;
    for (uint64_t p : {*first, *last})
      if (p == 0 || p > 65535) {
        error(at(n), std::string(key) + ": port " + std::to_string(p) + " is out of range 1-65535");
        in_range = false;
        break;
      }
    if (!in_range) {
      ok = false;
      continue;
    }
    if (*first > *last) {
      error(at(n), std::string(key) + ": range " + s + " has first port greater than last");
      ok = false;
      continue;
    }
    out.push_back({static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)});
  }
  if (!ok || out.empty()) return std::nullopt;
  return out;
}

std::optional<std::vector<uint8_t>> PolicyParser::icmp_types(const Field& f) {
  std::vector<uint8_t> out;
  bool ok = true;
  for (const auto& n : items(f, "icmp_types")) {
    std::optional<uint64_t> v = n.IsScalar() ? parse_unsigned(n.Scalar()) : std::nullopt;
    if (!v || *v > 255) {
      error(at(n), "icmp_types: '" + (n.IsScalar() ? n.Scalar() : std::string("?")) +
                       "' is not an ICMP type (0-255)");
      ok = false;
      continue;
    }
    out.push_back(static_cast<uint8_t>(*v));
  }
  if (!ok || out.empty()) return std::nullopt;
  return out;
}

std::optional<std::vector<uint16_t>> PolicyParser::ethertypes(const Field& f) {
  std::vector<uint16_t> out;
  bool ok = true;
  for (const auto& n : items(f, "ethertypes")) {
    const std::string s = n.IsScalar() ? n.Scalar() : std::string("?");
    std::optional<uint64_t> v = n.IsScalar() ? parse_unsigned(s) : std::nullopt;
    if (!v || *v < 0x0600 || *v > 0xffff) {
      error(at(n), "ethertypes: '" + s + "' is not an ethertype (0x0600-0xFFFF)");
      ok = false;
    } else if (*v == 0x0800 || *v == 0x86dd) {
      error(at(n), "ethertypes: " + s +
                       " is IP; IPv4 and IPv6 are admitted by tcp, udp and icmp rules only");
      ok = false;
    } else if (*v == 0x8100 || *v == 0x88a8) {
      error(at(n), "ethertypes: " + s + " is a VLAN tag; the datapath decides on the inner type");
      ok = false;
    } else {
      out.push_back(static_cast<uint16_t>(*v));
    }
  }
  if (!ok || out.empty()) return std::nullopt;
  return out;
}

template <class E>
std::optional<E> PolicyParser::choice(const Field& f, std::string_view key,
                                      std::initializer_list<std::pair<std::string_view, E>> options) {
  if (f.value.IsScalar())
    for (const auto& [name, value] : options)
      if (f.value.Scalar() == name) return value;
  std::vector<std::string_view> names;
  for (const auto& [name, value] : options) names.push_back(name);
  error(at(f), std::string(key) + ": " +
                   (f.value.IsScalar() ? "'" + f.value.Scalar() + "'" : std::string("value")) +
                   " is not one of " + join(names) +
                   (f.value.IsScalar() ? did_you_mean(f.value.Scalar(), names) : ""));
  return std::nullopt;
}

template <class Earlier, class Each>
void PolicyParser::named_entries(const Field& f, const std::string& not_a_mapping,
                                 const std::string& what, size_t max_len, Earlier earlier,
                                 Each each) {
  if (!f.value.IsMap()) {
    error(at(f), not_a_mapping);
    return;
  }
  for (auto it = f.value.begin(); it != f.value.end(); ++it) {
    // Copies: the iterator's pair is a temporary proxy.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const std::string name = key.IsScalar() ? key.Scalar() : "";
    if (!is_name(name) || (max_len && name.size() > max_len)) {
      error(at(key), what + " name '" + name + "' must use only a-z, 0-9 and '-'" +
                         (max_len ? ", at most " + std::to_string(max_len) + " characters" : ""));
      continue;
    }
    if (const SourceLocation* prev = earlier(name)) {
      error(at(key), "duplicate " + what + " '" + name + "' (first at " + loc_string(*prev) + ")");
      continue;
    }
    each(name, key, value);
  }
}

void PolicyParser::parse_peer_sets(const Field& f) {
  auto earlier = [&](const std::string& name) {
    const PeerSet* p = policy_.find_peer_set(name);
    return p ? &p->where : nullptr;
  };
  named_entries(f, "peer_sets: must be a mapping of set name to set", "peer set", 0, earlier,
                [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    PeerSet set;
    set.name = name;
    set.where = at(key);
    const Field body{key, value};
    if (!value.IsMap()) {
      error(at(body), "peer set '" + name + "': must be a mapping with cidrs and/or file");
      policy_.peer_sets.push_back(std::move(set));
      return;
    }
    Fields fs = fields(value, kPeerSetKeys);
    if (const Field* d = get(fs, "description"))
      if (auto s = string_value(*d, "description")) set.description = *s;
    const Field* cidrs = get(fs, "cidrs");
    const Field* file = get(fs, "file");
    if (!cidrs && !file) error(set.where, "peer set '" + name + "': needs 'cidrs' or 'file'");
    if (cidrs) set.cidrs_where = at(cidrs->key);
    set.from_file = file != nullptr;
    // `cidrs: []` is a set of nobody, said on purpose (learn --empty-unseen
    // writes it; a file may list nothing too): its rules admit no one, and
    // peer_set_warnings says so. Elsewhere an empty list is a slip.
    const bool said_empty = cidrs && cidrs->value.IsSequence() && cidrs->value.size() == 0;
    if (cidrs && !said_empty)
      for (const auto& n : items(*cidrs, "cidrs")) {
        if (!n.IsScalar()) {
          error(at(n), "cidrs: must be an address or CIDR");
          continue;
        }
        auto c = parse_cidr(n.Scalar());
        if (auto* msg = std::get_if<std::string>(&c))
          error(at(n), "cidrs: " + *msg);
        else
          set.cidrs.push_back(std::get<Cidr>(c));
      }
    if (file) read_peer_file(set, *file);
    policy_.peer_sets.push_back(std::move(set));
  });
}

// One CIDR per line; '#' starts a comment; blank lines are skipped.
void PolicyParser::read_peer_file(PeerSet& set, const Field& f) {
  auto rel = string_value(f, "file");
  if (!rel) return;
  const std::string path =
      (rel->starts_with('/') || base_dir_.empty()) ? *rel : base_dir_ + "/" + *rel;
  // A directory opens fine and reads as empty, a FIFO or a device blocks or
  // never ends: only a regular file is a list of CIDRs.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error(at(f), "peer set '" + set.name + "': cannot read '" + path + "': " + std::strerror(errno));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    error(at(f), "peer set '" + set.name + "': '" + path + "' is not a regular file");
    return;
  }
  if (auto loose = loosely_writable(st, path)) {
    error(at(f), "peer set '" + set.name + "': " + *loose);
    return;
  }
  std::ifstream in(path);
  if (!in) {
    error(at(f), "peer set '" + set.name + "': cannot read '" + path + "': " + std::strerror(errno));
    return;
  }
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const auto start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    const auto end = line.find_last_not_of(" \t\r");
    auto c = parse_cidr(std::string_view(line).substr(start, end - start + 1));
    if (auto* msg = std::get_if<std::string>(&c))
      errors_.push_back({{path, lineno, static_cast<int>(start) + 1}, *msg});
    else
      set.cidrs.push_back(std::get<Cidr>(c));
  }
}

// `interfaces:` role -> interface names (one name or a list; an empty list
// is a role no interface plays on this host).
void PolicyParser::parse_interface_roles(const Field& f) {
  auto earlier = [&](const std::string& name) {
    const InterfaceRole* r = policy_.find_role(name);
    return r ? &r->where : nullptr;
  };
  named_entries(f, "interfaces: must be a mapping of role name to interface names",
                "interface role", 0, earlier,
                [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    InterfaceRole role{name, {}, at(key)};
    const Field body{key, value};
    const bool said_empty = value.IsSequence() && value.size() == 0;
    if (said_empty)
      warnings_.push_back({role.where, "interface role '" + name +
                                           "' names no interface: rules scoped to it apply nowhere"});
    else
      for (const auto& n : items(body, "interfaces: " + name)) {
        const std::string iface = n.IsScalar() ? n.Scalar() : "";
        // The kernel's own limits on a name (IFNAMSIZ, dev_valid_name).
        const bool valid = !iface.empty() && iface.size() < 16 && iface != "." && iface != ".." &&
                           iface.find_first_of("/: \t\n") == std::string::npos;
        if (!valid)
          error(at(n), "interfaces: " + name + ": '" + iface +
                           "' is not an interface name (1-15 characters, no '/', ':' or space)");
        else
          role.ifaces.push_back(iface);
      }
    policy_.interface_roles.push_back(std::move(role));
  });
}

// A rule's `interfaces:`: roles of the top-level mapping, never interface
// names (a misspelt role must be an error, not a rule that applies nowhere).
std::vector<std::string> PolicyParser::rule_roles(const Field& f) {
  std::vector<std::string> out;
  std::vector<std::string_view> known;
  for (const auto& r : policy_.interface_roles) known.push_back(r.name);
  for (const auto& n : items(f, "interfaces")) {
    const std::string name = n.IsScalar() ? n.Scalar() : "";
    if (policy_.find_role(name))
      out.push_back(name);
    else if (known.empty())
      error(at(n), "interfaces: '" + name +
                       "' is not an interface role; the policy has no top-level 'interfaces:' "
                       "mapping roles to this host's interfaces");
    else
      error(at(n), "interfaces: unknown interface role '" + name + "' (the policy defines " +
                       join(known) + ")" + did_you_mean(name, known));
  }
  return out;
}

void PolicyParser::parse_rule_list(const Field& f, bool essential) {
  if (!f.value.IsSequence()) {
    error(at(f), f.key.Scalar() + ": must be a list of rules");
    return;
  }
  for (const auto& n : f.value) parse_rule(n, essential);
}

void PolicyParser::parse_rule(const YAML::Node& node, bool essential) {
  const size_t errors_before = errors_.size();
  Rule r;
  r.essential = essential;
  r.where = at(node);
  if (!node.IsMap()) {
    error(r.where, "a rule must be a mapping");
    return;
  }
  Fields fs = fields(node, kRuleKeys);
  RuleInfo info;

  std::string what = "rule: ";
  if (const Field* f = require(fs, "id", r.where, what)) {
    if (auto id = string_value(*f, "id")) {
      r.id = *id;
      what = "rule '" + r.id + "': ";
      if (!is_name(r.id))
        error(at(*f), "id: '" + r.id + "' must use only a-z, 0-9 and '-'");
      else if (r.id.size() > kMaxRuleIdLen)
        error(at(*f), "id: '" + r.id + "' is longer than " + std::to_string(kMaxRuleIdLen) +
                          " characters");
      if (auto prev = rule_ids_.find(r.id); prev != rule_ids_.end())
        error(at(*f), "duplicate rule id '" + r.id + "' (first at " + loc_string(prev->second) + ")");
      else
        rule_ids_.emplace(r.id, at(*f));
    }
  }

  // Documentation keys: optional, since they mean nothing to the datapath;
  // --strict holds vendor rows to saying where in the table they come from
  // (and every rule to saying what it is for).
  auto documented = [&](std::string_view key) -> const Field* {
    const bool required = options_.strict && (!essential || key == "purpose");
    const Field* f = get(fs, key);
    if (!f && required)
      error(r.where, what + "missing required key '" + std::string(key) +
                         "' (--strict: " + (essential ? "every rule says what it is for"
                                                      : "vendor rules document their table row") +
                         ")");
    return f;
  };
  for (auto [key, dest] : {std::pair{"section", &r.section}, std::pair{"row", &r.row},
                           std::pair{"purpose", &r.purpose}})
    if (const Field* f = documented(key))
      if (auto s = string_value(*f, key)) *dest = *s;
  if (r.row.size() > kMaxRowLen)
    warnings_.push_back({at(get(fs, "row")->value), "row: " + std::to_string(r.row.size()) +
                                                         " bytes; statistics show the first " +
                                                         std::to_string(kMaxRowLen)});

  if (const Field* f = documented("secured"))
    if (auto b = bool_value(*f, "secured")) r.secured = *b;

  if (const Field* f = get(fs, "enforced"))
    if (auto b = bool_value(*f, "enforced")) r.enforced = *b;
  if (const Field* f = get(fs, "interfaces")) r.interface_roles = rule_roles(*f);
  const Field* reason = get(fs, "not_enforced_reason");
  if (!r.enforced && !reason)
    error(r.where, what + "enforced: false needs a not_enforced_reason");
  if (reason) {
    if (r.enforced)
      error(at(reason->key), "not_enforced_reason: given, but the rule is enforced");
    else if (auto s = string_value(*reason, "not_enforced_reason"))
      r.not_enforced_reason = *s;
  }

  const Field* proto_f = require(fs, "protocol", r.where, what);
  std::optional<Protocol> proto;
  if (proto_f)
    proto = choice<Protocol>(*proto_f, "protocol",
                             {{"tcp", Protocol::Tcp},
                              {"udp", Protocol::Udp},
                              {"icmp", Protocol::Icmp},
                              {"icmpv6", Protocol::Icmpv6},
                              {"ethertype", Protocol::Ethertype}});
  if (proto) r.protocol = *proto;

  const Field* local_f = get(fs, "local_port");
  const Field* remote_f = get(fs, "remote_port");
  const Field* icmp_f = get(fs, "icmp_types");
  const Field* eth_f = get(fs, "ethertypes");
  const Field* peers_f = get(fs, "peers");
  const Field* init_f = get(fs, "initiator");
  const Field* flow_f = get(fs, "flow");

  if (local_f)
    if (auto p = ports(*local_f, "local_port")) r.local_ports = *p;
  if (remote_f)
    if (auto p = ports(*remote_f, "remote_port")) r.remote_ports = *p;
  if (icmp_f)
    if (auto t = icmp_types(*icmp_f)) r.icmp_types = *t;
  if (eth_f)
    if (auto e = ethertypes(*eth_f)) r.ethertypes = *e;
  if (peers_f) {
    if (auto s = string_value(*peers_f, "peers")) {
      r.peers = *s;
      info.peers_at = at(*peers_f);
    }
  }
  std::optional<Initiator> init;
  if (init_f)
    init = choice<Initiator>(*init_f, "initiator",
                             {{"remote", Initiator::Remote},
                              {"local", Initiator::Local},
                              {"both", Initiator::Both}});
  std::optional<Flow> flow;
  if (flow_f)
    flow = choice<Flow>(*flow_f, "flow",
                        {{"bidirectional", Flow::Bidirectional},
                         {"receive-only", Flow::ReceiveOnly},
                         {"send-only", Flow::SendOnly}});
  if (init) r.initiator = *init;
  if (flow) r.flow = *flow;

  auto forbid = [&](const Field* f, const std::string& why) {
    if (f) error(at(f->key), f->key.Scalar() + ": not allowed " + why);
  };
  // What an enforced rule must state; a documentation-only rule may leave it out.
  auto need = [&](const Field* f, std::string_view key, const std::string& why) {
    if (!f && r.enforced)
      error(r.where, what + "missing required key '" + std::string(key) + "'" + why);
  };

  if (proto) {
    const std::string p = to_string(*proto);
    switch (*proto) {
      case Protocol::Tcp:
      case Protocol::Udp:
        forbid(icmp_f, "for protocol " + p);
        forbid(eth_f, "for protocol " + p);
        need(peers_f, "peers", "");
        need(init_f, "initiator", "");
        if (init) {
          const std::string by = "with initiator " + std::string(to_string(*init));
          if (*init == Initiator::Remote) {
            need(local_f, "local_port", " (initiator remote: the port on this host that peers open)");
            forbid(remote_f, by + " (the host opens no connections for this rule)");
          } else if (*init == Initiator::Local) {
            need(remote_f, "remote_port", " (initiator local: the port on the peer that this host opens)");
            forbid(local_f, by + " (peers open no connections for this rule)");
          } else {
            need(local_f, "local_port", " (initiator both)");
            need(remote_f, "remote_port", " (initiator both)");
          }
        }
        break;
      case Protocol::Icmp:
      case Protocol::Icmpv6:
        forbid(local_f, "for protocol " + p + " (use icmp_types)");
        forbid(remote_f, "for protocol " + p + " (use icmp_types)");
        forbid(eth_f, "for protocol " + p);
        need(peers_f, "peers", "");
        need(icmp_f, "icmp_types", "");
        break;
      case Protocol::Ethertype:
        forbid(local_f, "for protocol ethertype");
        forbid(remote_f, "for protocol ethertype");
        forbid(icmp_f, "for protocol ethertype");
        forbid(peers_f, "for protocol ethertype (non-IP frames carry no address)");
        need(eth_f, "ethertypes", "");
        break;
    }
  }
  if (flow && flow_f) {
    if (*flow == Flow::ReceiveOnly && r.initiator != Initiator::Remote)
      error(at(*flow_f), "flow: receive-only needs initiator remote (the host never opens these)");
    if (*flow == Flow::SendOnly && r.initiator != Initiator::Local)
      error(at(*flow_f), "flow: send-only needs initiator local (peers never open these)");
  }

  info.valid = errors_.size() == errors_before;
  policy_.rules.push_back(std::move(r));
  info_.push_back(info);
}

void PolicyParser::parse_profiles(const Field& f) {
  auto earlier = [&](const std::string& name) {
    const Profile* p = policy_.find_profile(name);
    return p ? &p->where : nullptr;
  };
  named_entries(f, "profiles: must be a mapping of profile name to profile", "profile",
                kMaxProfileNameLen, earlier,
                [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    Profile prof;
    prof.name = name;
    prof.where = at(key);
    if (!value.IsMap()) {
      error(at(Field{key, value}), "profile '" + name + "': must be a mapping");
      return;
    }
    Fields fs = fields(value, kProfileKeys);
    if (const Field* d = get(fs, "description"))
      if (auto s = string_value(*d, "description")) prof.description = *s;
    if (const Field* s = get(fs, "secured_only"))
      if (auto b = bool_value(*s, "secured_only")) prof.secured_only = *b;
    if (const Field* ex = get(fs, "exclude_rules"))
      for (const auto& n : items(*ex, "exclude_rules")) {
        if (!n.IsScalar()) {
          error(at(n), "exclude_rules: must be rule ids");
          continue;
        }
        if (!rule_ids_.count(n.Scalar())) {
          std::vector<std::string_view> ids;
          for (const auto& [id, where] : rule_ids_) ids.push_back(id);
          error(at(n), "exclude_rules: profile '" + name + "' excludes unknown rule '" +
                           n.Scalar() + "'" + did_you_mean(n.Scalar(), ids));
        }
        else
          prof.exclude_rules.push_back(n.Scalar());
      }
    policy_.profiles.push_back(std::move(prof));
  });
}

std::optional<uint32_t> PolicyParser::bounded(const Field& f, const std::string& key,
                                              uint32_t min, uint32_t max, const char* unit) {
  std::optional<uint64_t> v = f.value.IsScalar() ? parse_unsigned(f.value.Scalar()) : std::nullopt;
  if (!v || *v < min || *v > max) {
    error(at(f), key + ": '" + (f.value.IsScalar() ? f.value.Scalar() : std::string("?")) +
                     "' must be a whole number of " + unit + " from " + std::to_string(min) +
                     " to " + std::to_string(max));
    return std::nullopt;
  }
  return static_cast<uint32_t>(*v);
}

void PolicyParser::parse_settings(const Field& f) {
  Settings& s = policy_.settings;
  s.where = at(f.key);
  if (!f.value.IsMap()) {
    error(at(f), "settings: must be a mapping with keys: " + join(kSettingsKeys));
    return;
  }
  Fields fs = fields(f.value, kSettingsKeys);
  if (const Field* m = get(fs, "mode"))
    if (auto audit = choice<bool>(*m, "mode", {{"enforce", false}, {"audit", true}}))
      s.audit = *audit;
  if (const Field* e = get(fs, "egress"))
    if (auto m = choice<EgressMode>(*e, "egress", {{"enforce", EgressMode::Enforce},
                                                   {"track", EgressMode::Track},
                                                   {"off", EgressMode::Off}}))
      s.egress = *m;
  if (const Field* n = get(fs, "flow_table_size"))
    if (auto v = bounded(*n, "flow_table_size", kMinFlowTable, kMaxFlowTable, "entries"))
      s.flow_table_size = *v;
  if (const Field* ev = get(fs, "events")) {
    if (!ev->value.IsMap()) {
      error(at(*ev), "events: must be a mapping with keys: " + join(kEventKeys));
    } else {
      Fields es = fields(ev->value, kEventKeys);
      if (const Field* r = get(es, "rate"))
        if (auto v = bounded(*r, "events: rate", 0, kMaxEventRate, "events per second"))
          s.event_rate = *v;
      if (const Field* b = get(es, "burst"))
        if (auto v = bounded(*b, "events: burst", 1, kMaxEventRate, "events"))
          s.event_burst = *v;
    }
  }
  if (const Field* l = get(fs, "learn")) {
    if (!l->value.IsMap()) {
      error(at(*l), "learn: must be a mapping with keys: " + join(kLearnKeys));
    } else {
      Fields ls = fields(l->value, kLearnKeys);
      if (const Field* e = get(ls, "enabled"))
        if (auto b = bool_value(*e, "learn: enabled")) s.learn = *b;
      if (const Field* n = get(ls, "entries"))
        if (auto v = bounded(*n, "learn: entries", 1, kMaxLearnEntries, "entries"))
          s.learn_entries = *v;
    }
  }
  if (const Field* u = get(fs, "unlisted_interfaces"))
    if (auto v = choice<UnlistedInterfaces>(*u, "unlisted_interfaces",
                                            {{"unscoped", UnlistedInterfaces::Unscoped},
                                             {"refuse", UnlistedInterfaces::Refuse}}))
      s.unlisted_interfaces = *v;
  const Field* t = get(fs, "timeouts");
  if (!t) return;
  if (!t->value.IsMap()) {
    error(at(*t), "timeouts: must be a mapping with keys: " + join(kTimeoutKeys));
    return;
  }
  Fields ts = fields(t->value, kTimeoutKeys);
  const struct {
    const char* key;
    uint32_t max;
    uint32_t* out;
  } timeouts[] = {{"tcp_established", kMaxTcpEstablished, &s.tcp_established_timeout},
                  {"tcp_closing", kMaxShortTimeout, &s.tcp_closing_timeout},
                  {"udp", kMaxUdpTimeout, &s.udp_timeout},
                  {"fragments", kMaxShortTimeout, &s.fragment_timeout}};
  for (const auto& to : timeouts)
    if (const Field* v = get(ts, to.key))
      if (auto secs = bounded(*v, std::string("timeouts: ") + to.key, 1, to.max, "seconds"))
        *to.out = *secs;
}

void PolicyParser::check_peer_references() {
  std::vector<bool> used(policy_.peer_sets.size(), false);
  for (size_t i = 0; i < policy_.rules.size(); ++i) {
    const Rule& r = policy_.rules[i];
    if (r.peers.empty()) continue;
    const PeerSet* set = policy_.find_peer_set(r.peers);
    if (!set) {
      std::vector<std::string_view> names;
      for (const auto& p : policy_.peer_sets) names.push_back(p.name);
      error(info_[i].peers_at,
            "peers: unknown peer set '" + r.peers + "'" + did_you_mean(r.peers, names));
      info_[i].valid = false;
      continue;
    }
    used[set - policy_.peer_sets.data()] = true;
  }
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      warnings_.push_back({policy_.peer_sets[i].where,
                           "peer set '" + policy_.peer_sets[i].name + "' is not used by any rule"});
}

// Whether two rules are ever in force on the same interface: an unscoped rule
// is everywhere; scoped ones meet where their roles name a common interface.
bool PolicyParser::share_an_interface(const Rule& a, const Rule& b) const {
  if (a.interface_roles.empty() || b.interface_roles.empty()) return true;
  for (const auto& role : policy_.interface_roles)
    for (const auto& iface : role.ifaces)
      if (policy_.applies_on(a, iface) && policy_.applies_on(b, iface)) return true;
  return false;
}

// Two rules in force that disagree about the same packets are an error: the
// datapath would let the first one decide, silently overriding the second.
void PolicyParser::check_contradictions() {
  const auto& rules = policy_.rules;
  for (size_t j = 0; j < rules.size(); ++j) {
    const Rule& b = rules[j];
    if (!b.enforced || !info_[j].valid) continue;
    if (b.protocol != Protocol::Tcp && b.protocol != Protocol::Udp) continue;
    for (size_t i = 0; i < j; ++i) {
      const Rule& a = rules[i];
      if (!a.enforced || !info_[i].valid || a.protocol != b.protocol) continue;
      const PeerSet* pa = policy_.find_peer_set(a.peers);
      const PeerSet* pb = policy_.find_peer_set(b.peers);
      if (!pa || !pb || !peer_sets_overlap(*pa, *pb)) continue;
      if (!share_an_interface(a, b)) continue;
      const std::string proto = to_string(a.protocol);
      uint16_t port = 0;
      auto report = [&](const char* side, Flow special) {
        const Rule& odd = a.flow == special ? a : b;
        const Rule& other = a.flow == special ? b : a;
        error(b.where, "rule '" + b.id + "' contradicts rule '" + a.id + "' (" + loc_string(a.where) +
                           "): both cover " + proto + " " + side + " port " + std::to_string(port) +
                           " for overlapping peer sets '" + a.peers + "' and '" + b.peers +
                           "', but '" + odd.id + "' is " + to_string(special) + " and '" +
                           other.id + "' is " + to_string(other.flow));
      };
      if ((a.flow == Flow::ReceiveOnly) != (b.flow == Flow::ReceiveOnly) &&
          ranges_overlap(a.local_ports, b.local_ports, &port))
        report("local", Flow::ReceiveOnly);
      // For tcp, send-only still needs the peer's segments back: same as bidirectional.
      if (a.protocol == Protocol::Udp && (a.flow == Flow::SendOnly) != (b.flow == Flow::SendOnly) &&
          ranges_overlap(a.remote_ports, b.remote_ports, &port))
        report("remote", Flow::SendOnly);
    }
  }
}

ParseResult PolicyParser::run() {
  ParseResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text_));
  } catch (const YAML::ParserException& e) {
    error(at(e.mark), "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    error(at(e.mark), "YAML error: " + e.msg);
  }
  if (!errors_.empty()) {
    result.errors = std::move(errors_);
    return result;
  }
  if (!root.IsMap()) {
    error(root.IsNull() ? SourceLocation{file_, 1, 1} : at(root),
          "a policy must be a mapping with keys: " + join(kTopKeys));
    result.errors = std::move(errors_);
    return result;
  }
  const SourceLocation top = at(root);
  Fields fs = fields(root, kTopKeys);

  if (const Field* f = require(fs, "version", top, "")) {
    std::optional<uint64_t> v = f->value.IsScalar() ? parse_unsigned(f->value.Scalar()) : std::nullopt;
    if (v != 1u)
      error(at(*f), "version: '" + (f->value.IsScalar() ? f->value.Scalar() : std::string()) +
                        "' is not supported; this xdpguard reads version 1");
  }
  if (const Field* f = require(fs, "name", top, "")) {
    if (auto s = string_value(*f, "name")) {
      policy_.name = *s;
      if (s->empty() || s->size() > kMaxPolicyNameLen)
        error(at(*f), "name: must be 1-" + std::to_string(kMaxPolicyNameLen) + " characters");
    }
  }
  if (const Field* f = get(fs, "description"))
    if (auto s = string_value(*f, "description")) policy_.description = *s;
  if (const Field* f = get(fs, "peer_sets")) parse_peer_sets(*f);
  // Before the rules, which name its roles.
  if (const Field* f = get(fs, "interfaces")) parse_interface_roles(*f);
  if (const Field* f = require(fs, "rules", top, "")) parse_rule_list(*f, false);
  if (const Field* f = get(fs, "host_essentials")) parse_rule_list(*f, true);
  if (const Field* f = get(fs, "profiles")) parse_profiles(*f);
  if (const Field* f = get(fs, "settings")) parse_settings(*f);
  check_peer_references();
  check_contradictions();

  result.warnings = std::move(warnings_);
  if (!errors_.empty()) {
    result.errors = std::move(errors_);
    return result;
  }
  policy_.version = 1;
  policy_.source_file = file_;
  policy_.source_hash = fnv1a(text_);
  result.policy = std::move(policy_);
  return result;
}

}  // namespace

ParseResult parse_policy_text(std::string_view text, const std::string& display_name,
                              const std::string& base_dir, ParseOptions options) {
  return PolicyParser(text, display_name, base_dir, options).run();
}

ParseResult parse_policy_file(const std::string& path, ParseOptions options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0)
    if (auto loose = loosely_writable(st, path)) {
      ParseResult r;
      r.errors.push_back({{path, 0, 0}, "refusing the policy: " + *loose});
      return r;
    }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ParseResult r;
    r.errors.push_back({{path, 0, 0}, std::string("cannot read policy: ") + std::strerror(errno)});
    return r;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  return parse_policy_text(buf.str(), path, dir, options);
}

std::variant<RuleSet, Diagnostic> select_rules(const Policy& policy, const std::string& profile,
                                               const std::string& iface) {
  if (!iface.empty() && !policy.interface_roles.empty() && !policy.names_interface(iface) &&
      policy.settings.unlisted_interfaces == UnlistedInterfaces::Refuse) {
    std::vector<std::string_view> named;
    for (const auto& role : policy.interface_roles)
      for (const auto& n : role.ifaces) named.push_back(n);
    return Diagnostic{policy.settings.where,
                      "interface '" + iface + "' is not in the policy's 'interfaces:' (" +
                          (named.empty() ? std::string("none named") : join(named)) +
                          ") and settings say unlisted_interfaces: refuse; add it to a role" +
                          did_you_mean(iface, named)};
  }
  const Profile* prof = nullptr;
  if (!profile.empty()) {
    prof = policy.find_profile(profile);
    if (!prof) {
      std::vector<std::string_view> known;
      for (const auto& p : policy.profiles) known.push_back(p.name);
      return Diagnostic{{policy.source_file, 0, 0},
                        "unknown profile '" + profile + "'; the policy defines " +
                            (known.empty() ? std::string("no profiles") : join(known)) +
                            did_you_mean(profile, known)};
    }
  }
  RuleSet set;
  set.policy = &policy;
  set.profile = profile;
  set.iface = iface;
  for (const Rule& r : policy.rules) {
    if (!r.enforced) continue;
    if (!iface.empty() && !policy.applies_on(r, iface)) continue;
    if (prof) {
      if (prof->secured_only && !r.essential && !r.secured) continue;
      if (std::find(prof->exclude_rules.begin(), prof->exclude_rules.end(), r.id) !=
          prof->exclude_rules.end())
        continue;
    }
    const PeerSet* peers =
        r.protocol == Protocol::Ethertype ? nullptr : policy.find_peer_set(r.peers);
    set.rules.push_back({&r, peers});
  }
  if (set.rules.size() > XDPG_MAX_RULES)
    return Diagnostic{prof ? prof->where : SourceLocation{policy.source_file, 0, 0},
                      "policy has " + std::to_string(set.rules.size()) +
                          " rules in force; the datapath holds at most " +
                          std::to_string(XDPG_MAX_RULES)};
  return set;
}

std::vector<Diagnostic> peer_set_warnings(const Policy& policy, const RuleSet& rules) {
  std::vector<Diagnostic> out;
  for (const PeerSet& set : policy.peer_sets) {
    const bool used = std::any_of(rules.rules.begin(), rules.rules.end(),
                                  [&](const RuleSet::Entry& e) { return e.peers == &set; });
    if (!used) continue;
    if (set.to_fill_in())
      out.push_back({set.where, "peer set '" + set.name +
                                    "' is open to any address; fill it in before production"});
    else if (set.cidrs.empty())
      out.push_back({set.where, "peer set '" + set.name + "' is empty: its rules admit no one"});
  }
  return out;
}

}  // namespace xdpguard::policy
