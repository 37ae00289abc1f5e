// The packet space of one or more rule sets, cut into cells that every rule
// of those sets treats alike, each decided by the reference classifier on one
// sample packet. `check`'s lint and `diff` are built on it, so that what they
// say about shadowing and counting is what the reference classifier (and so
// the datapath) does, not a second reading of the policy.
//
// A cell is one protocol, one side (to a local port, from a remote port, an
// ICMP type, an ethertype), a run of values no rule boundary splits, and one
// address class: addresses that every peer set in play holds whole or not at
// all. Cells that no rule of any set admits are left out (every set drops
// them).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "classify/decision.hpp"
#include "classify/packet_spec.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

enum class Side {
  LocalPort,   // inbound to a port of the host (a peer opens it); tcp: a bare SYN
  RemotePort,  // inbound from a port of a peer: replies to what the host opened
  Type,        // icmp / icmpv6 type
  Ethertype,   // non-IP frame
};

// Part of an address class: `prefix` less the more specific `except` ones.
struct AddressPiece {
  policy::Cidr prefix;
  std::vector<policy::Cidr> except;
  std::string to_string() const;  // "10.0.0.0/8" or "10.0.0.0/8 except 10.1.0.0/16"
};

struct AddressClass {
  int family = 4;
  std::vector<bool> members;  // per peer set of PacketSpace::peer_sets(): holds this class
  std::vector<AddressPiece> pieces;
  std::array<uint8_t, 16> sample{};
};

struct Cell {
  policy::Protocol protocol = policy::Protocol::Tcp;
  Side side = Side::LocalPort;
  uint16_t first = 0, last = 0;  // ports, types or ethertypes
  int address_class = -1;        // index into classes(); -1 for ethertype cells
};

class PacketSpace {
 public:
  // The sets (and the policies behind them) must outlive this.
  explicit PacketSpace(std::vector<const policy::RuleSet*> sets);

  const std::vector<Cell>& cells() const { return cells_; }
  const std::vector<AddressClass>& classes() const { return classes_; }
  // The peer sets in play, in the order of AddressClass::members.
  const std::vector<const policy::PeerSet*>& peer_sets() const { return peer_sets_; }

  // The reference classifier's decision for the cell's sample packet under
  // `rules` (one of the sets, or a subset of one). Egress is off, so a reply
  // from a remote port passes on its rule as it would with a live flow.
  Decision decide(const policy::RuleSet& rules, const Cell& cell) const;
  // The same for a packet from remote port `sport` to local port `dport`
  // (not a bare SYN) from the cell's address class: where two sides meet.
  Decision decide_ports(const policy::RuleSet& rules, const Cell& cell, uint16_t sport,
                        uint16_t dport) const;
  // What the egress program does with the host's answer to a LocalPort
  // cell's sample (from that port, to the peer; egress enforced): dropped
  // receive_only when every rule serving the port is receive-only.
  Decision decide_reply(const policy::RuleSet& rules, const Cell& cell) const;
  // Does rule `index` of `rules`, alone, admit the cell?
  bool admits(const policy::RuleSet& rules, size_t index, const Cell& cell) const;

 private:
  PacketSpec sample(const Cell& cell) const;
  static Decision classify(const policy::RuleSet& rules, const PacketSpec& packet);

  std::vector<const policy::RuleSet*> sets_;
  std::vector<const policy::PeerSet*> peer_sets_;
  std::vector<AddressClass> classes_;
  std::vector<Cell> cells_;
  // Per protocol (tcp, udp): a port no rule lists on the local (resp. remote)
  // side, used for the other end of a sample packet.
  std::array<uint16_t, 2> free_local_{}, free_remote_{};
};

// Cells (or parts of them) gathered for one message: their values and their
// address classes, each class once.
struct CellGroup {
  std::vector<std::pair<uint16_t, uint16_t>> values;
  std::vector<int> classes;
  void add(uint16_t first, uint16_t last, int address_class);
  void add(const Cell& c) { add(c.first, c.last, c.address_class); }
};

// "tcp to local port 443", "udp from remote ports 123, 160-170",
// "icmp type 8", "ethertype 0x0806": `ranges` are of one protocol and side.
std::string describe_values(policy::Protocol protocol, Side side,
                            const std::vector<std::pair<uint16_t, uint16_t>>& ranges);
// Adjacent or overlapping ranges joined, ascending.
std::vector<std::pair<uint16_t, uint16_t>> merge_ranges(
    std::vector<std::pair<uint16_t, uint16_t>> ranges);
// The pieces of several classes, "0.0.0.0/0, ::/0", at most `limit` then
// "and N more".
std::string describe_addresses(const PacketSpace& space, const std::vector<int>& classes,
                               size_t limit = 4);

}  // namespace xdpguard::classify
