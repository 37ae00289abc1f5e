#include "policy/model.hpp"

#include <algorithm>

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

const InterfaceRole* Policy::find_role(const std::string& n) const {
  for (const auto& r : interface_roles)
    if (r.name == n) return &r;
  return nullptr;
}

bool Policy::names_interface(const std::string& iface) const {
  for (const auto& r : interface_roles)
    if (std::find(r.ifaces.begin(), r.ifaces.end(), iface) != r.ifaces.end()) return true;
  return false;
}

bool Policy::applies_on(const Rule& rule, const std::string& iface) const {
  if (rule.interface_roles.empty()) return true;
  for (const auto& name : rule.interface_roles)
    if (const InterfaceRole* role = find_role(name))
      if (std::find(role->ifaces.begin(), role->ifaces.end(), iface) != role->ifaces.end())
        return true;
  return false;
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

const char* to_string(UnlistedInterfaces u) {
  switch (u) {
    case UnlistedInterfaces::Unscoped: return "unscoped";
    case UnlistedInterfaces::Refuse: return "refuse";
  }
  return "?";
}

}  // namespace xdpguard::policy
