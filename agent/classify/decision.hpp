// What the firewall decided about one packet. Shared vocabulary of the
// reference classifier, the differential tests and `xdpguard explain`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xdpguard/maps.h"

namespace xdpguard {

enum class Verdict { Pass, Drop };

enum class DropReason : uint8_t {
  None = XDPG_REASON_NONE,
  NoRule = XDPG_DROP_NO_RULE,
  PeerNotInSet = XDPG_DROP_PEER_NOT_IN_SET,
  Malformed = XDPG_DROP_MALFORMED,
  FragmentOrphan = XDPG_DROP_FRAGMENT_ORPHAN,
  BadTcpFlags = XDPG_DROP_BAD_TCP_FLAGS,
  ExtHdrLimit = XDPG_DROP_EXT_HDR_LIMIT,
  NoFlow = XDPG_DROP_NO_FLOW,
  ReceiveOnly = XDPG_DROP_RECEIVE_ONLY,
};
inline constexpr int kDropReasonCount = XDPG_DROP_REASON_COUNT;

// Stable snake_case names, used in stats, JSON and metrics labels.
const char* drop_reason_name(DropReason);
std::optional<DropReason> drop_reason_from_name(const std::string&);

struct Decision {
  Verdict verdict = Verdict::Drop;
  std::optional<uint32_t> rule;  // rule index: the passing rule, or the rule a drop is attributed to
  DropReason reason = DropReason::NoRule;  // None when passed
  bool operator==(const Decision&) const = default;
};

std::string to_string(const Decision&);

// The per-rule and per-reason counters one program holds after the decisions
// counted here (what `xdpguard stats` shows), bytes being frame lengths.
struct CounterSums {
  std::vector<xdpg_rule_counters> rules = std::vector<xdpg_rule_counters>(XDPG_MAX_RULES);
  std::vector<xdpg_reason_counters> reasons =
      std::vector<xdpg_reason_counters>(XDPG_DROP_REASON_COUNT);
  void count(const Decision& d, size_t bytes);
};

}  // namespace xdpguard
