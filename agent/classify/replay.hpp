// `xdpguard replay`: a capture of the protected interface's traffic, run
// through the reference classifier as the datapath would have seen it. Frames
// the host sent go through the egress decision and create the flows; the
// others through the ingress decision; the capture's timestamps are the
// clock, so flows and fragments expire as they would have.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "classify/decision.hpp"
#include "classify/reference.hpp"
#include "policy/model.hpp"

namespace xdpguard::classify {

// The reference classifier's options for a policy's settings (the programs'
// rodata, docs/datapath.md 8.4).
ReferenceOptions reference_options(const policy::Settings& settings);

using Mac = std::array<uint8_t, 6>;

// Which frames the host sent. A frame whose source MAC is one of `macs`, or
// an IP frame whose source address is in `addresses`, is egress; the MAC of
// an IP frame sent from the host's addresses is learnt, so its ARP and other
// non-IP frames follow.
struct HostIdentity {
  std::vector<policy::Cidr> addresses;
  std::vector<Mac> macs;
};

// A conversation as the host sees it, whichever side sent the frame.
struct ReplayFlow {
  uint16_t ethertype = 0;  // 0x0800, 0x86DD, or the non-IP frame's
  uint8_t protocol = 0;    // IP protocol; 0 for non-IP
  std::string host, peer;  // "addr:port", "addr" without ports, the MAC for non-IP
  auto operator<=>(const ReplayFlow&) const = default;
  std::string to_string() const;
};

struct ReplayFrame {
  bool egress = false;
  std::optional<Decision> decision;  // nullopt: egress off, nothing decided or counted
  // What the program returns: XDP_PASS / TC_ACT_OK (audit mode passes all).
  bool passes = true;
  ReplayFlow flow;
};

class Replay {
 public:
  // `rules` must outlive this.
  Replay(const policy::RuleSet& rules, const policy::Settings& settings, HostIdentity host);

  // One captured frame, `ns` its capture time.
  ReplayFrame feed(std::span<const uint8_t> frame, uint64_t ns);

  const CounterSums& ingress() const { return ingress_; }
  const CounterSums& egress() const { return egress_; }
  uint64_t frames() const { return frames_; }

 private:
  bool sent_by_host(std::span<const uint8_t> frame);

  HostIdentity host_;
  bool audit_;
  ReferenceClassifier reference_;
  CounterSums ingress_, egress_;
  uint64_t frames_ = 0;
};

}  // namespace xdpguard::classify
