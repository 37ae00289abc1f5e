#include "kernel/link_events.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cstring>

namespace xdpguard::kernel {
namespace {

// The datagram is a byte buffer of any alignment: headers are copied out.
template <typename T>
T read_at(std::span<const uint8_t> buf, size_t off) {
  T v;
  std::memcpy(&v, buf.data() + off, sizeof(T));
  return v;
}

std::string ifname_attr(std::span<const uint8_t> buf, size_t begin, size_t end) {
  size_t off = begin;
  while (off + sizeof(rtattr) <= end) {
    auto a = read_at<rtattr>(buf, off);
    if (a.rta_len < sizeof(rtattr) || a.rta_len > end - off) break;
    if ((a.rta_type & NLA_TYPE_MASK) == IFLA_IFNAME) {
      const auto* p = reinterpret_cast<const char*>(buf.data() + off + RTA_LENGTH(0));
      size_t max = a.rta_len - RTA_LENGTH(0);
      return std::string(p, ::strnlen(p, max));
    }
    off += RTA_ALIGN(a.rta_len);
  }
  return {};
}

}  // namespace

std::vector<LinkMessage> parse_link_messages(std::span<const uint8_t> buf) {
  std::vector<LinkMessage> out;
  size_t off = 0;
  while (off + sizeof(nlmsghdr) <= buf.size()) {
    auto h = read_at<nlmsghdr>(buf, off);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > buf.size() - off) break;
    const size_t body = off + NLMSG_HDRLEN;
    if ((h.nlmsg_type == RTM_NEWLINK || h.nlmsg_type == RTM_DELLINK) &&
        h.nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
      auto ifi = read_at<ifinfomsg>(buf, body);
      LinkMessage m;
      m.deleted = h.nlmsg_type == RTM_DELLINK;
      m.ifindex = ifi.ifi_index;
      m.flags = ifi.ifi_flags;
      m.name = ifname_attr(buf, body + NLMSG_ALIGN(sizeof(ifinfomsg)), off + h.nlmsg_len);
      out.push_back(std::move(m));
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return out;
}

const char* to_string(LinkChange c) {
  switch (c) {
    case LinkChange::Down: return "down";
    case LinkChange::Up: return "up";
    case LinkChange::Deleted: return "deleted";
    case LinkChange::Created: return "created";
    case LinkChange::Renamed: return "renamed";
  }
  return "?";
}

std::optional<LinkState> LinkTracker::state(const std::string& iface) const {
  auto it = links_.find(iface);
  if (it == links_.end()) return std::nullopt;
  return it->second;
}

std::vector<LinkEvent> LinkTracker::on_message(const LinkMessage& m) {
  std::vector<LinkEvent> out;
  const bool up = (m.flags & IFF_UP) != 0;
  for (auto& [iface, st] : links_) {
    const bool ours = st.ifindex != 0 && st.ifindex == m.ifindex;
    if (m.deleted) {
      // By ifindex; by name too, in case a creation was missed.
      if (ours || (st.ifindex != 0 && m.name == iface)) {
        out.push_back({iface, LinkChange::Deleted, m.ifindex, 0, {}});
        st = {};
      }
      continue;
    }
    if (m.name == iface) {
      if (st.ifindex != m.ifindex) {
        out.push_back({iface, LinkChange::Created, m.ifindex, st.ifindex, {}});
        st = {m.ifindex, up};
      } else if (st.up != up) {
        out.push_back({iface, up ? LinkChange::Up : LinkChange::Down, m.ifindex, 0, {}});
        st.up = up;
      }
    } else if (ours && m.name.empty()) {
      if (st.up != up) {
        out.push_back({iface, up ? LinkChange::Up : LinkChange::Down, m.ifindex, 0, {}});
        st.up = up;
      }
    } else if (ours) {
      out.push_back({iface, LinkChange::Renamed, m.ifindex, 0, m.name});
      st = {};
    }
  }
  return out;
}

std::optional<LinkEvent> LinkTracker::observe(const std::string& iface, LinkState now) {
  LinkState& st = links_[iface];
  const LinkState prev = st;
  st = now;
  if (prev == now) return std::nullopt;
  if (now.ifindex == 0) return LinkEvent{iface, LinkChange::Deleted, prev.ifindex, 0, {}};
  if (prev.ifindex != now.ifindex)
    return LinkEvent{iface, LinkChange::Created, now.ifindex, prev.ifindex, {}};
  return LinkEvent{iface, now.up ? LinkChange::Up : LinkChange::Down, now.ifindex, 0, {}};
}

}  // namespace xdpguard::kernel
