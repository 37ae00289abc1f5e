// What the datapath's learning records (maps.h learn_*; docs/learn.md),
// written plainly from the reference classifier's decisions: the definition
// the BPF maps are compared with in tests/bpf/flow_differential_test.cpp.
//
// - An observation is (rule, peer address): the source of an admitted inbound
//   packet, the destination of an admitted outbound one, on the rules whose
//   peer set is still to be filled in; in audit mode also on any rule whose
//   peer set would have dropped the packet (peer_not_in_set).
// - A confirmation belongs to the address: the host sent it, and the egress
//   program passed, a TCP segment with ACK and without SYN or RST (the kernel
//   only sends one on a connection whose handshake completed), or any packet
//   on a rule's remote port (a flow the host opens).
// - Both tables hold at most `capacity` entries; what does not fit is
//   counted, per rule for observations, at index XDPG_MAX_RULES for
//   confirmations.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>

#include "classify/decision.hpp"
#include "classify/reference.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::classify {

struct LearnOptions {
  uint64_t learn_rules = 0;  // by rule index (compile::CompiledPolicy::learn_rules)
  bool audit = false;
  size_t capacity = XDPG_LEARN_ENTRIES;
};

struct LearnedAddress {
  uint8_t family = 0;
  std::array<uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  auto operator<=>(const LearnedAddress&) const = default;
};

struct LearnedPeerKey {
  uint32_t rule = 0;
  LearnedAddress peer;
  auto operator<=>(const LearnedPeerKey&) const = default;
};

struct LearnedPeer {
  uint64_t packets = 0;
  uint64_t first_ns = 0, last_ns = 0;  // last_ns moves in steps of XDPG_LEARN_LAST_SEEN_STEP_NS
};

class LearnModel {
 public:
  explicit LearnModel(LearnOptions options) : options_(options) {}

  // The packet the reference classifier decided last, at `now`.
  void ingress(const PacketFacts&, const Decision&, uint64_t now);
  void egress(const PacketFacts&, const Decision&, uint64_t now);

  const std::map<LearnedPeerKey, LearnedPeer>& peers() const { return peers_; }
  // Address -> XDPG_CONFIRM_* bits.
  const std::map<LearnedAddress, uint32_t>& confirmed() const { return confirmed_; }
  const std::array<uint64_t, XDPG_LEARN_OVERFLOW_ENTRIES>& overflow() const { return overflow_; }
  void reset() { *this = LearnModel(options_); }

 private:
  bool learns(const Decision&) const;
  void observe(uint32_t rule, const LearnedAddress& peer, uint64_t now);

  LearnOptions options_;
  std::map<LearnedPeerKey, LearnedPeer> peers_;
  std::map<LearnedAddress, uint32_t> confirmed_;
  std::array<uint64_t, XDPG_LEARN_OVERFLOW_ENTRIES> overflow_{};
};

}  // namespace xdpguard::classify
