// Interface events in `xdpguard run`: an rtnetlink socket (RTMGRP_LINK) on
// the event loop, and what the daemon does about each change to one of its
// interfaces:
//   down       a warning; the programs stay attached to the ifindex
//   up         checks that our programs are still the attached ones
//              (kernel::inspect), re-attaches if not
//   deleted    an error; the stale pins are removed; it waits
//   re-created re-attaches the policy in force (as at startup); on failure
//              says why and keeps watching
//   lost messages (ENOBUFS): every interface is checked afresh.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/link_events.hpp"
#include "kernel/result.hpp"

namespace xdpguard::daemon {

struct LinkHooks {
  // Adopts or attaches the policy in force on `iface`, exactly as at
  // startup; false when it could not (the callee logs why).
  std::function<bool(const std::string&)> bring_up;
};

class LinkMonitor {
 public:
  // Subscribes before reading the interfaces' state, so no change between
  // the two is missed.
  static kernel::Result<std::unique_ptr<LinkMonitor>> open(const std::vector<std::string>& ifaces,
                                                           LinkHooks hooks);

  int fd() const { return sock_.get(); }
  // Reads every pending message and reacts to each change; after an overrun
  // (ENOBUFS: messages were lost), re-checks every interface.
  void consume();
  // Re-checks every interface: its ifindex and state, and on a live one
  // whether our programs are the attached ones.
  void resync();

 private:
  LinkMonitor(kernel::Fd sock, std::vector<std::string> ifaces, LinkHooks hooks);
  void handle(const kernel::LinkEvent& ev);
  void verify(const std::string& iface);
  void reattach(const std::string& iface, const std::string& why);

  kernel::Fd sock_;
  std::vector<std::string> ifaces_;
  LinkHooks hooks_;
  kernel::LinkTracker tracker_;
};

// The interface's ifindex and IFF_UP now ({0, false}: no such interface).
kernel::LinkState current_link_state(const std::string& iface);

}  // namespace xdpguard::daemon
