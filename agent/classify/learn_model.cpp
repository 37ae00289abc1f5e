#include "classify/learn_model.hpp"

namespace xdpguard::classify {
namespace {
constexpr uint8_t kTcpSyn = 0x02, kTcpRst = 0x04, kTcpAck = 0x10;
}  // namespace

bool LearnModel::learns(const Decision& d) const {
  if (!d.rule) return false;
  if (d.verdict == Verdict::Pass) return *d.rule < 64 && (options_.learn_rules >> *d.rule & 1);
  return options_.audit && d.reason == DropReason::PeerNotInSet;
}

void LearnModel::observe(uint32_t rule, const LearnedAddress& peer, uint64_t now) {
  LearnedPeerKey key{rule, peer};
  auto it = peers_.find(key);
  if (it == peers_.end()) {
    if (peers_.size() >= options_.capacity) {
      ++overflow_[rule % XDPG_MAX_RULES];
      return;
    }
    peers_[key] = LearnedPeer{1, now, now};
    return;
  }
  LearnedPeer& p = it->second;
  ++p.packets;
  if (now > p.last_ns && now - p.last_ns >= XDPG_LEARN_LAST_SEEN_STEP_NS) p.last_ns = now;
}

void LearnModel::ingress(const PacketFacts& f, const Decision& d, uint64_t now) {
  if (f.family && learns(d)) observe(*d.rule, {static_cast<uint8_t>(f.family), f.saddr}, now);
}

void LearnModel::egress(const PacketFacts& f, const Decision& d, uint64_t now) {
  if (!f.family) return;
  const LearnedAddress peer{static_cast<uint8_t>(f.family), f.daddr};
  if (learns(d)) observe(*d.rule, peer, now);
  if (d.verdict != Verdict::Pass) return;
  uint32_t how = 0;
  if (f.tcp && (f.tcp_flags & kTcpAck) && !(f.tcp_flags & (kTcpSyn | kTcpRst)))
    how |= XDPG_CONFIRM_TCP_ESTABLISHED;
  if (f.host_opened) how |= XDPG_CONFIRM_HOST_OPENED;
  if (!how) return;
  auto it = confirmed_.find(peer);
  if (it != confirmed_.end()) {
    it->second |= how;
  } else if (confirmed_.size() >= options_.capacity) {
    ++overflow_[XDPG_MAX_RULES];
  } else {
    confirmed_[peer] = how;
  }
}

}  // namespace xdpguard::classify
