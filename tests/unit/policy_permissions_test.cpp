// A policy decides what reaches the host, so whoever may write it owns the
// firewall. Expected behaviour:
// - a policy file writable by its group or by others is refused, with an
//   error naming the file and its mode; writable by its owner only, it parses;
// - the same for a peer-set file the policy reads (`file:`), with the error
//   at the policy's `file:` line.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "policy/parser.hpp"

namespace xdpguard::policy {
namespace {
namespace fs = std::filesystem;

const char* kPolicy = R"(version: 1
name: perms
peer_sets:
  admins:
    file: admins.txt
rules:
  - id: ssh
    section: s
    row: r
    protocol: tcp
    local_port: 22
    peers: admins
    initiator: remote
    flow: bidirectional
    secured: true
    purpose: p
)";

class PolicyPermissions : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xdpguard-perms.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    policy_ = dir_ + "/policy.yaml";
    peers_ = dir_ + "/admins.txt";
    std::ofstream(policy_) << kPolicy;
    std::ofstream(peers_) << "192.0.2.0/24\n";
    ASSERT_EQ(chmod(policy_.c_str(), 0644), 0);
    ASSERT_EQ(chmod(peers_.c_str(), 0600), 0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string errors(const ParseResult& r) {
    std::string out;
    for (const auto& d : r.errors) out += d.to_string() + "\n";
    return out;
  }

  std::string dir_, policy_, peers_;
};

TEST_F(PolicyPermissions, OwnerWritableFilesParse) {
  auto r = parse_policy_file(policy_);
  EXPECT_TRUE(r.ok()) << errors(r);
  ASSERT_EQ(chmod(policy_.c_str(), 0400), 0);
  r = parse_policy_file(policy_);
  EXPECT_TRUE(r.ok()) << errors(r);
}

TEST_F(PolicyPermissions, PolicyWritableByGroupOrOthersIsRefused) {
  for (mode_t mode : {0664, 0646, 0666, 0777}) {
    ASSERT_EQ(chmod(policy_.c_str(), mode), 0);
    auto r = parse_policy_file(policy_);
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    ASSERT_EQ(r.errors.size(), 1u) << errors(r);
    const std::string e = r.errors[0].to_string();
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(e.find(policy_), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("mode ") + octal), std::string::npos) << e;
    EXPECT_NE(e.find(mode & S_IWOTH ? "writable by others" : "writable by its group"),
              std::string::npos)
        << e;
  }
}

TEST_F(PolicyPermissions, PeerSetFileWritableByOthersIsRefused) {
  ASSERT_EQ(chmod(peers_.c_str(), 0666), 0);
  auto r = parse_policy_file(policy_);
  ASSERT_FALSE(r.ok());
  const std::string e = errors(r);
  EXPECT_NE(e.find(policy_ + ":5:"), std::string::npos) << e;  // at `file: admins.txt`
  EXPECT_NE(e.find("peer set 'admins': '" + peers_ + "' is writable by others (mode 0666)"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace xdpguard::policy
