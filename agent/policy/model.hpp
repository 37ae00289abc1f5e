// The policy as the operator wrote it, after parsing and validation.
// No kernel dependency: parse, validate, compile and the reference classifier
// all work on these types and are unit-tested without root.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xdpguard/maps.h"

namespace xdpguard::policy {

// Where something was written, for `file:line:column: message` errors.
// line and column are 1-based; 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

struct Diagnostic {
  SourceLocation where;
  std::string message;
  // "file:line:column: message" (fields that are unknown are left out).
  std::string to_string() const;
};

enum class Protocol { Tcp, Udp, Icmp, Icmpv6, Ethertype };
// Who opens the connection: the peer, the host itself, or either.
enum class Initiator { Remote, Local, Both };
// What the vendor table calls "flow direction".
enum class Flow { Bidirectional, ReceiveOnly, SendOnly };

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;  // inclusive; == first for a single port
  bool contains(uint16_t port) const { return port >= first && port <= last; }
};

struct Cidr {
  int family = 4;                       // 4 or 6
  std::array<uint8_t, 16> address{};    // network order; IPv4 uses the first 4 bytes
  uint8_t prefix_length = 0;            // host bits of `address` are zero
  bool contains(int fam, const uint8_t* addr) const;  // addr: 4 or 16 bytes
  bool is_any() const { return prefix_length == 0; }  // 0.0.0.0/0 or ::/0
  std::string to_string() const;
};

// The one peer set that is open on purpose (ICMP errors, NDP): no warning,
// nothing to learn.
inline constexpr std::string_view kAnywhereSet = "anywhere";

struct PeerSet {
  std::string name;
  std::string description;
  std::vector<Cidr> cidrs;
  SourceLocation where;
  SourceLocation cidrs_where;  // of the `cidrs` key; line 0 without one
  bool from_file = false;      // some of `cidrs` came from `file:`
  bool is_open() const;  // contains 0.0.0.0/0 or ::/0
  // Open and not `anywhere`: the operator has still to fill it in, so
  // `xdpguard learn` observes its peers (docs/learn.md).
  bool to_fill_in() const { return is_open() && name != kAnywhereSet; }
  bool contains(int family, const uint8_t* addr) const;
};

struct Rule {
  std::string id;            // unique, [a-z0-9-], at most XDPG_RULE_ID_LEN-1 chars
  std::string section;       // vendor table section ("OVOC server and OVOC Managed Devices")
  std::string row;           // vendor table row this rule encodes; empty for host essentials
  bool essential = false;    // from the host-essentials section, not the vendor table
  Protocol protocol = Protocol::Tcp;
  std::vector<PortRange> local_ports;   // tcp/udp: ports on the host that peers open
  std::vector<PortRange> remote_ports;  // tcp/udp: ports on the peer that the host opens
  std::vector<uint8_t> icmp_types;      // icmp/icmpv6: inbound types admitted
  std::vector<uint16_t> ethertypes;     // ethertype: non-IP frames admitted
  std::string peers;         // name of a PeerSet; unused for ethertype rules
  Initiator initiator = Initiator::Remote;
  Flow flow = Flow::Bidirectional;
  bool secured = false;
  std::string purpose;
  bool enforced = true;      // false: kept as documentation, not compiled
  std::string not_enforced_reason;
  // `interfaces:`: the interface roles this rule applies on; empty: every
  // interface (docs/policy-format.md, "Interfaces").
  std::vector<std::string> interface_roles;
  SourceLocation where;
};

// A role of the top-level `interfaces:` mapping: the host's interfaces that
// play it (e.g. devices: [ens224]). Rules name roles, so one policy file
// serves hosts whose NICs are named differently: only this mapping changes.
struct InterfaceRole {
  std::string name;
  std::vector<std::string> ifaces;
  SourceLocation where;
};

// What an interface that no role names gets: only the rules without
// `interfaces:` (the stated default), or nothing: attaching there is refused.
enum class UnlistedInterfaces { Unscoped, Refuse };

// A named selection of rules, e.g. "secured-only".
struct Profile {
  std::string name;
  std::string description;
  bool secured_only = false;  // leave out vendor rows with secured: false
  std::vector<std::string> exclude_rules;  // rule ids left out
  SourceLocation where;
};

// What the egress program does (docs/datapath.md 9): drop what no rule
// allows, only record flows and count, or nothing (no flow tracking at all:
// replies are then admitted statelessly).
enum class EgressMode { Off, Track, Enforce };

// The optional top-level `settings:` block; defaults apply when it is absent.
struct Settings {
  // `mode: audit`: both programs decide and count as in enforce mode but pass
  // every packet (drops are "would-drop"), for rolling a policy out safely.
  bool audit = false;
  EgressMode egress = EgressMode::Enforce;
  // Flow lifetimes since the last packet either way, in seconds.
  uint32_t tcp_established_timeout = 3600;
  uint32_t tcp_closing_timeout = 30;  // after a FIN either way or a RST
  uint32_t udp_timeout = 60;
  uint32_t fragment_timeout = 30;     // a first fragment's decision, for the rest
  uint32_t flow_table_size = 65536;   // entries of the LRU flow table
  // Drop events: at most `event_rate` per second (0: none) and `event_burst`
  // at once, per CPU, direction and reason (docs/telemetry.md).
  uint32_t event_rate = 10;
  uint32_t event_burst = 20;
  // `learn:`: observe the peers of the sets still open (docs/learn.md), in
  // maps of at most `learn_entries` entries each.
  bool learn = false;
  uint32_t learn_entries = XDPG_LEARN_ENTRIES;
  UnlistedInterfaces unlisted_interfaces = UnlistedInterfaces::Unscoped;
  SourceLocation where;               // of `settings:`; line 0 if absent
};

struct Policy {
  int version = 1;
  std::string name;
  std::string description;
  std::string source_file;   // path it was read from (or "<embedded default>")
  uint64_t source_hash = 0;  // FNV-1a of the text
  std::vector<PeerSet> peer_sets;
  std::vector<Rule> rules;   // vendor rows first, then host essentials, in file order
  std::vector<Profile> profiles;
  std::vector<InterfaceRole> interface_roles;  // `interfaces:`, in file order
  Settings settings;

  const PeerSet* find_peer_set(const std::string& name) const;
  const Profile* find_profile(const std::string& name) const;
  const InterfaceRole* find_role(const std::string& name) const;
  // Whether some role names `iface`.
  bool names_interface(const std::string& iface) const;
  // Whether `rule` applies on `iface`: it is unscoped, or one of its roles
  // names the interface.
  bool applies_on(const Rule& rule, const std::string& iface) const;
};

// The rules in force: enforced rules of the chosen profile, in policy order.
// Index in `rules` is the rule index used by the BPF maps and counters.
struct RuleSet {
  const Policy* policy = nullptr;
  std::string profile;  // empty: all enforced rules
  std::string iface;    // the interface's view; empty: every rule whatever its scope
  struct Entry {
    const Rule* rule;
    const PeerSet* peers;  // nullptr for ethertype rules (any sender)
  };
  std::vector<Entry> rules;
};

const char* to_string(Protocol);
const char* to_string(Initiator);
const char* to_string(Flow);
const char* to_string(EgressMode);
const char* to_string(UnlistedInterfaces);

}  // namespace xdpguard::policy
