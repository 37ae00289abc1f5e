#include "policy/model.hpp"

namespace xdpguard::policy {

std::string Diagnostic::to_string() const {
  std::string out;
  if (!where.file.empty()) out += where.file + ":";
  if (where.line > 0) {
    out += std::to_string(where.line) + ":";
    if (where.column > 0) out += std::to_string(where.column) + ":";
  }
  if (!out.empty()) out += " ";
  return out + message;
}

bool PeerSet::is_open() const {
  for (const auto& c : cidrs)
    if (c.is_any()) return true;
  return false;
}

bool PeerSet::contains(int family, const uint8_t* addr) const {
  for (const auto& c : cidrs)
    if (c.contains(family, addr)) return true;
  return false;
}

const PeerSet* Policy::find_peer_set(const std::string& n) const {
  for (const auto& p : peer_sets)
    if (p.name == n) return &p;
  return nullptr;
}

const Profile* Policy::find_profile(const std::string& n) const {
  for (const auto& p : profiles)
    if (p.name == n) return &p;
  return nullptr;
}

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::Tcp: return "tcp";
    case Protocol::Udp: return "udp";
    case Protocol::Icmp: return "icmp";
    case Protocol::Icmpv6: return "icmpv6";
    case Protocol::Ethertype: return "ethertype";
  }
  return "?";
}

const char* to_string(Initiator i) {
  switch (i) {
    case Initiator::Remote: return "remote";
    case Initiator::Local: return "local";
    case Initiator::Both: return "both";
  }
  return "?";
}

const char* to_string(Flow f) {
  switch (f) {
    case Flow::Bidirectional: return "bidirectional";
    case Flow::ReceiveOnly: return "receive-only";
    case Flow::SendOnly: return "send-only";
  }
  return "?";
}

const char* to_string(EgressMode m) {
  switch (m) {
    case EgressMode::Off: return "off";
    case EgressMode::Track: return "track";
    case EgressMode::Enforce: return "enforce";
  }
  return "?";
}

}  // namespace xdpguard::policy
