#include "classify/decision.hpp"

#include <array>

namespace xdpguard {
namespace {
constexpr std::array<const char*, kDropReasonCount> kNames = {
    "none", "no_rule", "peer_not_in_set", "malformed", "fragment_orphan", "bad_tcp_flags",
    "ext_hdr_limit", "no_flow", "receive_only"};
}  // namespace

const char* drop_reason_name(DropReason r) {
  auto i = static_cast<size_t>(r);
  return i < kNames.size() ? kNames[i] : "unknown";
}

std::optional<DropReason> drop_reason_from_name(const std::string& name) {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (name == kNames[i]) return static_cast<DropReason>(i);
  return std::nullopt;
}

std::string to_string(const Decision& d) {
  std::string s = d.verdict == Verdict::Pass ? "pass" : "drop";
  if (d.rule) s += " rule=" + std::to_string(*d.rule);
  if (d.verdict == Verdict::Drop) s += std::string(" reason=") + drop_reason_name(d.reason);
  return s;
}

void CounterSums::count(const Decision& d, size_t bytes) {
  if (d.verdict == Verdict::Pass) {
    rules.at(*d.rule).pass_packets++;
    rules.at(*d.rule).pass_bytes += bytes;
    return;
  }
  auto& reason = reasons.at(static_cast<size_t>(d.reason));
  reason.packets++;
  reason.bytes += bytes;
  if (d.rule) {
    rules.at(*d.rule).drop_packets++;
    rules.at(*d.rule).drop_bytes += bytes;
  }
}

}  // namespace xdpguard
