// The reference classifier: docs/datapath.md written as plainly as possible.
//
// It is the definition of what a policy means. It walks the rules in policy
// order and tests each one directly against the packet (ports, types,
// ethertypes, PeerSet::contains, the rule's initiator and flow direction),
// never the compiled port table, LPM masks or rule_flags, so that the
// differential tests against the XDP and TC programs compare two independent
// implementations of the same contract.
//
// It models both directions and the state joining them: the fragment table
// (per direction) and the flow table (section 8), unbounded (no LRU), with a
// clock the caller controls.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "classify/decision.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

// How the attributed rule covered the packet (section 7 of docs/datapath.md).
enum class MatchKind {
  None,
  LocalPort,
  RemotePort,
  IcmpType,
  Icmpv6Type,
  Ethertype,
  QuotedFlow,  // an ICMP error admitted because it quotes a tracked flow (5.2 step 2)
};
const char* to_string(MatchKind);

// A decision with the reasoning behind it, for `xdpguard explain`.
struct Explanation {
  Decision decision;
  MatchKind kind = MatchKind::None;  // how the attributed rule matched by port/type
  std::vector<std::string> steps;    // one line per header / rule step
};

// The rodata of the programs (docs/datapath.md 8.4), same defaults as
// kernel::DatapathOptions, and the clock.
struct ReferenceOptions {
  uint8_t egress_mode = XDPG_EGRESS_ENFORCE;  // enum xdpg_egress_mode
  uint64_t frag_timeout_ns = 30'000'000'000ULL;
  uint64_t tcp_established_timeout_ns = 3'600'000'000'000ULL;
  uint64_t tcp_closing_timeout_ns = 30'000'000'000ULL;
  uint64_t udp_timeout_ns = 60'000'000'000ULL;
  // "now" for a packet, read once per packet. Empty: the time set with
  // set_now(), 0 until then (time stands still, so nothing with a non-zero
  // timeout expires).
  std::function<uint64_t()> clock;
};

// A flow as the host sees it (section 8.1); IPv4 addresses use the first 4 bytes.
struct FlowKey {
  uint8_t family = 0;  // 4 or 6
  uint8_t protocol = 0;
  uint16_t local_port = 0, remote_port = 0;
  std::array<uint8_t, 16> local_addr{}, remote_addr{};
  auto operator<=>(const FlowKey&) const = default;
};

struct FlowState {
  uint64_t last_seen_ns = 0;
  uint64_t created_ns = 0;
  uint32_t rule = 0;
  uint8_t tcp_state = 0;  // XDPG_FLOW_FIN_LOCAL | XDPG_FLOW_FIN_REMOTE | XDPG_FLOW_RST
  uint8_t flags = 0;      // XDPG_FLOW_REPLIED
  bool operator==(const FlowState&) const = default;
};

// What the datapath's learning reads of a packet it has decided (the fields
// the program's xdpg_describe finds; docs/learn.md): the addresses, and for
// TCP whose header is in this packet (not a later fragment) the flags.
struct PacketFacts {
  int family = 0;  // 4 or 6; 0 for a frame that is not IP
  std::array<uint8_t, 16> saddr{}, daddr{};
  bool tcp = false;
  uint8_t tcp_flags = 0;
  bool host_opened = false;  // egress: passed on a rule's remote port (a flow the host opens)
};

// What the TC egress program does with a packet (section 9).
struct EgressDecision {
  // nullopt with egress off: the program returns at once, decides and counts
  // nothing. Otherwise the decision, counted in the egress counters.
  std::optional<Decision> decision;
  // TC_ACT_OK. False only for a drop in enforce mode; in track mode a drop
  // decision is counted as a drop and the packet is sent anyway.
  bool sent = true;
};

class ReferenceClassifier {
 public:
  // Keeps a reference: `rules` (and the Policy behind it) must outlive this.
  explicit ReferenceClassifier(const policy::RuleSet& rules, ReferenceOptions options = {});

  // Decides one Ethernet frame arriving at the XDP program (sections 1-5).
  // Updates the fragment table and refreshes flows (5.1 step 3).
  Decision classify(std::span<const uint8_t> frame);
  Decision classify_ingress(std::span<const uint8_t> frame) { return classify(frame); }
  // The same ingress decision (and the same state effects) with the steps.
  Explanation explain(std::span<const uint8_t> frame);

  // Decides one Ethernet frame leaving through the TC egress program
  // (sections 1-4, 9); creates and refreshes flows (9.2).
  EgressDecision classify_egress(std::span<const uint8_t> frame);

  // The facts of the packet decided last, either direction.
  const PacketFacts& last_packet() const { return last_; }

  const ReferenceOptions& options() const { return options_; }
  void set_now(uint64_t ns) { now_ = ns; }

  // Section 8.3: is this flow live at `now`?
  bool live(const FlowKey&, const FlowState&, uint64_t now) const;
  const std::map<FlowKey, FlowState>& flows() const { return flows_; }
  // New keys egress added (flow_counters.inserts of section 8.5).
  uint64_t flow_inserts() const { return flow_inserts_; }

  void reset_fragments() { frags_.clear(); }
  size_t fragment_entries() const { return frags_.size(); }
  // Forget fragments and flows (Datapath::reset_state's model).
  void reset_state() {
    frags_.clear();
    flows_.clear();
    flow_inserts_ = 0;
  }

 private:
  // {family, protocol, direction, id, saddr, daddr}; IPv4 addresses use the first 4 bytes.
  using FragKey = std::tuple<uint8_t, uint8_t, uint8_t, uint32_t, std::array<uint8_t, 16>,
                             std::array<uint8_t, 16>>;
  struct FragRecord {
    Decision decision;
    uint64_t seen_ns;
  };
  struct Walk;  // per-packet state, defined in reference.cpp

  Decision decide(std::span<const uint8_t> frame, uint8_t direction, Explanation* ex);
  Decision decide_ipv4(Walk& w, std::span<const uint8_t> packet);
  Decision decide_ipv6(Walk& w, std::span<const uint8_t> packet);
  Decision decide_non_first_fragment(Walk& w, const FragKey& key, uint8_t protocol,
                                     uint32_t offset);
  Decision decide_transport(Walk& w, uint8_t protocol, std::span<const uint8_t> l4);
  Decision choose_ethertype(Walk& w);
  Decision choose_ingress(Walk& w);
  Decision choose_egress(Walk& w);
  Decision ingress_icmp(Walk& w);
  void flow_outbound(const Walk& w, uint32_t rule);

  const policy::RuleSet& rules_;
  ReferenceOptions options_;
  uint64_t now_ = 0;
  std::map<FragKey, FragRecord> frags_;
  std::map<FlowKey, FlowState> flows_;
  uint64_t flow_inserts_ = 0;
  PacketFacts last_;
};

}  // namespace xdpguard::classify
