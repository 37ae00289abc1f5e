// Which directory holds an interface's pins when the process cannot tell
// whether it runs in the initial network namespace (a capability-bounded
// daemon on a kernel before 6.18), and the name pin_dir gives here.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kernel/pin_dir.hpp"

namespace xdpguard::kernel {
namespace {

constexpr uint64_t kSelf = 4026531992;
const std::string kBase = "/sys/fs/bpf/xdpguard/eth0";
const std::string kOwnNs = kBase + "@netns4026531992";

struct World {
  std::set<std::string> dirs;
  std::set<std::string> attached;  // dirs whose program is on this namespace's eth0
  std::string choose(NetnsCertainty where) const {
    return choose_pin_dir(
        kBase, kSelf, where, [this](const std::string& d) { return dirs.count(d) > 0; },
        [this](const std::string& d) { return attached.count(d) > 0; });
  }
};

TEST(PinDir, NamesFollowTheNamespaceWhenNothingIsPinned) {
  World w;
  EXPECT_EQ(w.choose(NetnsCertainty::Initial), kBase);
  EXPECT_EQ(w.choose(NetnsCertainty::Other), kOwnNs);
  EXPECT_EQ(w.choose(NetnsCertainty::Unknown), kOwnNs);
}

TEST(PinDir, UnsureProcessFindsPinsARootShellMadeForThisInterface) {
  World w{{kBase}, {kBase}};
  EXPECT_EQ(w.choose(NetnsCertainty::Unknown), kBase);
}

TEST(PinDir, UnsureProcessIgnoresPinsOfAnotherNamespacesInterface) {
  World w{{kBase}, {}};  // the bare name's program is not attached here
  EXPECT_EQ(w.choose(NetnsCertainty::Unknown), kOwnNs);
}

TEST(PinDir, RootShellFindsPinsAnUnsureDaemonMade) {
  World w{{kOwnNs}, {kOwnNs}};
  EXPECT_EQ(w.choose(NetnsCertainty::Initial), kOwnNs);
  World stale{{kOwnNs}, {}};  // left by a dead namespace whose inode was reused
  EXPECT_EQ(stale.choose(NetnsCertainty::Initial), kBase);
}

TEST(PinDir, OwnNameWinsWhenBothExist) {
  World w{{kBase, kOwnNs}, {kBase, kOwnNs}};
  EXPECT_EQ(w.choose(NetnsCertainty::Initial), kBase);
  EXPECT_EQ(w.choose(NetnsCertainty::Unknown), kOwnNs);
}

TEST(PinDir, CertainOtherNamespaceNeverUsesTheBareName) {
  World w{{kBase}, {kBase}};
  EXPECT_EQ(w.choose(NetnsCertainty::Other), kOwnNs);
}

TEST(PinDir, InitialNamespaceHereUsesTheBareName) {
  // This test process runs in the initial namespace as root, where pid 1's
  // namespace is readable (or, on 6.18+, the inode is fixed).
  auto dir = pin_dir("lo", "/nonexistent-root");
  ASSERT_TRUE(dir) << dir.error().message;
  EXPECT_EQ(*dir, "/nonexistent-root/lo");
  EXPECT_FALSE(pin_dir("a/b"));
}

}  // namespace
}  // namespace xdpguard::kernel
