// rtnetlink link messages parsed, and what they mean for the daemon's
// interfaces (kernel/link_events.hpp).
#include "kernel/link_events.hpp"

#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cstring>
#include <vector>

namespace xdpguard::kernel {
namespace {

// One link message as the kernel lays it out, appended to `out`.
void append_link(std::vector<uint8_t>& out, uint16_t type, int ifindex, unsigned flags,
                 const char* name, bool extra_attr = true) {
  std::vector<uint8_t> msg(NLMSG_LENGTH(sizeof(ifinfomsg)));
  auto add_attr = [&](uint16_t attr_type, const void* data, size_t len) {
    rtattr a{static_cast<unsigned short>(RTA_LENGTH(len)), attr_type};
    size_t at = msg.size();
    msg.resize(at + RTA_SPACE(len));
    std::memcpy(msg.data() + at, &a, sizeof(a));
    std::memcpy(msg.data() + at + RTA_LENGTH(0), data, len);
  };
  uint32_t mtu = 1500;
  if (extra_attr) add_attr(IFLA_MTU, &mtu, sizeof(mtu));  // the name is not always first
  if (name) add_attr(IFLA_IFNAME, name, std::strlen(name) + 1);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(msg.size());
  h.nlmsg_type = type;
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = flags;
  std::memcpy(msg.data(), &h, sizeof(h));
  std::memcpy(msg.data() + NLMSG_HDRLEN, &ifi, sizeof(ifi));
  out.insert(out.end(), msg.begin(), msg.end());
}

TEST(ParseLinkMessages, NewAndDelWithNames) {
  std::vector<uint8_t> buf;
  append_link(buf, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING, "eth0");
  append_link(buf, RTM_DELLINK, 8, 0, "veth1", false);
  auto msgs = parse_link_messages(buf);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_FALSE(msgs[0].deleted);
  EXPECT_EQ(msgs[0].ifindex, 7);
  EXPECT_EQ(msgs[0].name, "eth0");
  EXPECT_TRUE(msgs[0].flags & IFF_UP);
  EXPECT_TRUE(msgs[1].deleted);
  EXPECT_EQ(msgs[1].ifindex, 8);
  EXPECT_EQ(msgs[1].name, "veth1");
}

TEST(ParseLinkMessages, SkipsOtherTypesAndStopsAtGarbage) {
  std::vector<uint8_t> buf;
  append_link(buf, RTM_NEWADDR, 3, 0, "lo");  // not a link message
  append_link(buf, RTM_NEWLINK, 4, 0, "a");
  size_t good = buf.size();
  append_link(buf, RTM_NEWLINK, 5, 0, "b");
  // A length running past the datagram ends parsing.
  uint32_t bogus = 4096;
  std::memcpy(buf.data() + good, &bogus, sizeof(bogus));
  auto msgs = parse_link_messages(buf);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].name, "a");
  // Truncated anywhere: never reads past the end, never invents a message.
  std::vector<uint8_t> one;
  append_link(one, RTM_NEWLINK, 9, 0, "eth9");
  for (size_t n = 0; n < one.size(); ++n) {
    auto part = parse_link_messages(std::span<const uint8_t>(one.data(), n));
    EXPECT_TRUE(part.empty()) << n;
  }
}

TEST(ParseLinkMessages, NameWithoutTerminatorIsBounded) {
  std::vector<uint8_t> buf;
  append_link(buf, RTM_NEWLINK, 4, 0, nullptr, false);
  // IFLA_IFNAME of 3 bytes, no NUL.
  rtattr a{static_cast<unsigned short>(RTA_LENGTH(3)), IFLA_IFNAME};
  size_t at = buf.size();
  buf.resize(at + RTA_SPACE(3));
  std::memcpy(buf.data() + at, &a, sizeof(a));
  std::memcpy(buf.data() + at + RTA_LENGTH(0), "xyz", 3);
  uint32_t len = static_cast<uint32_t>(buf.size());
  std::memcpy(buf.data(), &len, sizeof(len));
  auto msgs = parse_link_messages(buf);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].name, "xyz");
}

LinkMessage msg(bool deleted, int ifindex, bool up, std::string name) {
  return {deleted, ifindex, up ? unsigned(IFF_UP) : 0u, std::move(name)};
}

TEST(LinkTracker, DownUpDeleteRecreate) {
  LinkTracker t;
  t.track("eth0", {7, true});
  t.track("eth1", {9, true});
  // Another interface: nothing.
  EXPECT_TRUE(t.on_message(msg(false, 3, false, "lo")).empty());
  // A NEWLINK that changes nothing we watch (carrier, MTU): nothing.
  EXPECT_TRUE(t.on_message(msg(false, 7, true, "eth0")).empty());

  auto ev = t.on_message(msg(false, 7, false, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].iface, "eth0");
  EXPECT_EQ(ev[0].change, LinkChange::Down);
  EXPECT_TRUE(t.on_message(msg(false, 7, false, "eth0")).empty());  // still down
  ev = t.on_message(msg(false, 7, true, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Up);

  ev = t.on_message(msg(true, 7, false, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Deleted);
  EXPECT_EQ(ev[0].ifindex, 7);
  EXPECT_EQ(t.state("eth0")->ifindex, 0);
  EXPECT_TRUE(t.on_message(msg(true, 7, false, "eth0")).empty());  // once

  ev = t.on_message(msg(false, 12, false, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Created);
  EXPECT_EQ(ev[0].ifindex, 12);
  // Coming up after re-creation is an Up of the new ifindex.
  ev = t.on_message(msg(false, 12, true, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Up);
  EXPECT_EQ(t.state("eth1")->ifindex, 9);  // untouched throughout
}

TEST(LinkTracker, MissedDeleteStillSeesANewIfindex) {
  LinkTracker t;
  t.track("eth0", {7, true});
  auto ev = t.on_message(msg(false, 15, true, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Created);
  EXPECT_EQ(ev[0].old_ifindex, 7);
  // The old ifindex's late deletion is not ours any more.
  EXPECT_TRUE(t.on_message(msg(true, 7, false, "old")).empty());
}

TEST(LinkTracker, RenameFreesTheName) {
  LinkTracker t;
  t.track("eth0", {7, true});
  auto ev = t.on_message(msg(false, 7, true, "wan0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Renamed);
  EXPECT_EQ(ev[0].to, "wan0");
  EXPECT_TRUE(t.on_message(msg(true, 7, true, "wan0")).empty());
  ev = t.on_message(msg(false, 20, true, "eth0"));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].change, LinkChange::Created);
}

TEST(LinkTracker, ObserveAfterLostMessages) {
  LinkTracker t;
  t.track("eth0", {7, true});
  EXPECT_FALSE(t.observe("eth0", {7, true}));
  auto ev = t.observe("eth0", {7, false});
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->change, LinkChange::Down);
  ev = t.observe("eth0", {0, false});
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->change, LinkChange::Deleted);
  EXPECT_EQ(ev->ifindex, 7);
  EXPECT_FALSE(t.observe("eth0", {0, false}));
  ev = t.observe("eth0", {30, true});
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->change, LinkChange::Created);
  EXPECT_EQ(ev->ifindex, 30);
}

}  // namespace
}  // namespace xdpguard::kernel
