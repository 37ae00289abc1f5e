#include "daemon/link_monitor.hpp"

#include <fmt/format.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "daemon/loop.hpp"
#include "kernel/attach.hpp"
#include "kernel/reload.hpp"

namespace xdpguard::daemon {
using kernel::LinkChange;

kernel::LinkState current_link_state(const std::string& iface) {
  unsigned idx = ::if_nametoindex(iface.c_str());
  if (idx == 0) return {};
  kernel::LinkState st{static_cast<int>(idx), false};
  // Any socket carries the interface ioctls; AF_UNIX needs no protocol stack.
  kernel::Fd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (s.valid() && ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0) st.up = (ifr.ifr_flags & IFF_UP) != 0;
  return st;
}

LinkMonitor::LinkMonitor(kernel::Fd sock, std::vector<std::string> ifaces, LinkHooks hooks)
    : sock_(std::move(sock)), ifaces_(std::move(ifaces)), hooks_(std::move(hooks)) {}

kernel::Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open(
    const std::vector<std::string>& ifaces, LinkHooks hooks) {
  kernel::Fd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!sock.valid()) return kernel::errno_error(errno, "cannot open an rtnetlink socket");
  // Room for a burst (a veth pair torn down and rebuilt is dozens of
  // messages); an overrun is handled anyway, by a resync.
  int rcvbuf = 1 << 20;
  (void)::setsockopt(sock.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0)
    return kernel::errno_error(errno, "cannot subscribe to link events (RTMGRP_LINK)");
  std::unique_ptr<LinkMonitor> m(new LinkMonitor(std::move(sock), ifaces, std::move(hooks)));
  for (const auto& iface : m->ifaces_) m->tracker_.track(iface, current_link_state(iface));
  return m;
}

void LinkMonitor::consume() {
  // Aligned for the headers; 32 KiB holds any single link message.
  alignas(nlmsghdr) static std::array<uint8_t, 32768> buf;
  bool overrun = false;
  for (;;) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(sock_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overrun = true;  // the socket reports it once, then delivers again
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        spdlog::error("link events: {}", std::strerror(errno));
      break;
    }
    if (from.nl_pid != 0) continue;  // only the kernel speaks for the links
    for (const auto& msg : kernel::parse_link_messages({buf.data(), static_cast<size_t>(n)}))
      for (const auto& ev : tracker_.on_message(msg)) handle(ev);
  }
  if (overrun) {
    spdlog::warn("link events were lost (netlink socket overrun, ENOBUFS); re-checking {}",
                 fmt::join(ifaces_, ", "));
    resync();
  }
}

void LinkMonitor::resync() {
  for (const auto& iface : ifaces_) {
    auto now = current_link_state(iface);
    if (auto ev = tracker_.observe(iface, now)) {
      handle(*ev);
    } else if (now.ifindex != 0) {
      verify(iface);
    } else {
      spdlog::error("interface {} is still missing; waiting for it to come back", iface);
    }
  }
}

void LinkMonitor::verify(const std::string& iface) {
  auto found = kernel::inspect(iface);
  if (!found) {
    spdlog::error("{}: cannot check the attached programs: {}", iface, found.error().message);
    return;
  }
  if (found->installed) {
    spdlog::info("{}: xdpguard's programs are still attached (XDP id {}, egress id {})", iface,
                 found->installed->prog_id, found->installed->egress_prog_id);
    return;
  }
  reattach(iface, found->why_not);
}

void LinkMonitor::reattach(const std::string& iface, const std::string& why) {
  spdlog::warn("{}: {}; re-attaching", iface, why);
  if (hooks_.bring_up && hooks_.bring_up(iface)) {
    spdlog::info("{}: re-attached; enforcing again", iface);
    sd_notify(fmt::format("STATUS={} re-attached", iface));
    return;
  }
  spdlog::error("{}: cannot re-attach (reason above); it is NOT protected; still watching it",
                iface);
  sd_notify(fmt::format("STATUS={} is not protected: re-attach failed", iface));
}

void LinkMonitor::handle(const kernel::LinkEvent& ev) {
  const std::string& iface = ev.iface;
  switch (ev.change) {
    case LinkChange::Down:
      spdlog::warn("{}: link down (ifindex {}); the programs stay attached and enforce when it "
                   "is up again",
                   iface, ev.ifindex);
      return;
    case LinkChange::Up:
      spdlog::info("{}: link up (ifindex {})", iface, ev.ifindex);
      verify(iface);
      return;
    case LinkChange::Deleted:
      spdlog::error("interface {} deleted; enforcement on it is gone; waiting for it to come back",
                    iface);
      sd_notify(fmt::format("STATUS=interface {} deleted; waiting for it", iface));
      // The pins hold only dead programs and maps now. If the name is back
      // already, the re-attach replaces them instead.
      if (current_link_state(iface).ifindex == 0) {
        auto dir = kernel::pin_dir(iface);
        std::error_code ec;
        if (dir && std::filesystem::exists(*dir, ec))
          if (auto st = kernel::detach(iface); !st)
            spdlog::warn("{}: cannot remove the stale pins: {}", iface, st.error().message);
      }
      return;
    case LinkChange::Created:
      spdlog::info("interface {} appeared (ifindex {}{})", iface, ev.ifindex,
                   ev.old_ifindex ? fmt::format(", was {}", ev.old_ifindex) : "");
      reattach(iface, "a new interface, nothing of xdpguard's attached");
      return;
    case LinkChange::Renamed:
      spdlog::error("interface {} (ifindex {}) was renamed to {}: xdpguard's programs stay on it, "
                    "but this daemon protects the name {} and re-attaches when it reappears",
                    iface, ev.ifindex, ev.to, iface);
      return;
  }
}

}  // namespace xdpguard::daemon
