// Interface events as the daemon needs them: rtnetlink link messages parsed
// (RTM_NEWLINK / RTM_DELLINK), and what each one means for the interfaces
// the daemon protects, which it knows by name. XDP and TC programs are
// attached to an ifindex: down/up keeps them, a deleted interface takes them
// with it, and an interface re-created under the same name is a new ifindex
// with nothing attached.
//
// Pure logic (no socket): the daemon's LinkMonitor feeds it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace xdpguard::kernel {

// One RTM_NEWLINK or RTM_DELLINK.
struct LinkMessage {
  bool deleted = false;  // RTM_DELLINK
  int ifindex = 0;
  unsigned flags = 0;    // ifi_flags (IFF_UP, ...)
  std::string name;      // IFLA_IFNAME; empty when the message has none
};

// Every link message in one datagram read from a NETLINK_ROUTE socket; other
// message types are skipped, and parsing stops at the first malformed header
// (the kernel never sends one; a truncated read may end in one).
std::vector<LinkMessage> parse_link_messages(std::span<const uint8_t> datagram);

// An interface as seen now; ifindex 0: there is no interface by that name.
struct LinkState {
  int ifindex = 0;
  bool up = false;
  bool operator==(const LinkState&) const = default;
};

enum class LinkChange {
  Down,     // IFF_UP cleared, same ifindex: the programs stay attached
  Up,       // IFF_UP set, same ifindex
  Deleted,  // gone (deleted, or moved to another namespace)
  Created,  // the name is back with another ifindex: nothing of ours attached
  Renamed,  // our ifindex now has another name (`to`); the name is free
};
const char* to_string(LinkChange);

struct LinkEvent {
  std::string iface;  // the name the daemon was given
  LinkChange change = LinkChange::Up;
  int ifindex = 0;      // now (Created: the new one; Deleted/Renamed: the old one)
  int old_ifindex = 0;  // Created: the one before (0 if none was known)
  std::string to;       // Renamed: the new name
};

// What the daemon last knew of each of its interfaces.
class LinkTracker {
 public:
  void track(const std::string& iface, LinkState now) { links_[iface] = now; }
  std::optional<LinkState> state(const std::string& iface) const;

  // What `m` changes for the tracked interfaces (usually zero or one event).
  std::vector<LinkEvent> on_message(const LinkMessage& m);
  // A fresh look at one interface (after messages were lost): the change
  // since the last known state, if any.
  std::optional<LinkEvent> observe(const std::string& iface, LinkState now);

 private:
  std::map<std::string, LinkState> links_;
};

}  // namespace xdpguard::kernel
