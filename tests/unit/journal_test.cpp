// Drop events to journald's native protocol: the writer sends to an AF_UNIX
// datagram socket this test binds at a temporary path, and the test parses the
// datagram as journald would (both field forms), no journald needed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "telemetry/journal.hpp"

namespace xdpguard::telemetry {
namespace {

// NAME=value\n, or NAME\n<le64 size><value>\n: journald's parser, in short.
std::map<std::string, std::string> parse_datagram(const std::string& d) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < d.size()) {
    size_t nl = d.find('\n', pos);
    EXPECT_NE(nl, std::string::npos) << "unterminated field";
    if (nl == std::string::npos) break;
    std::string line = d.substr(pos, nl - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      EXPECT_FALSE(out.contains(line.substr(0, eq))) << "field twice: " << line;
      out[line.substr(0, eq)] = line.substr(eq + 1);
      pos = nl + 1;
      continue;
    }
    EXPECT_GE(d.size(), nl + 1 + 8) << "binary field without a size";
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(d[nl + 1 + i])) << (8 * i);
    size_t start = nl + 1 + 8;
    EXPECT_LT(start + n, d.size() + 1);
    out[line] = d.substr(start, n);
    EXPECT_EQ(d[start + n], '\n');
    pos = start + n + 1;
  }
  return out;
}

// A datagram socket bound at a temporary path, removed at the end.
class JournalSocket {
 public:
  JournalSocket() {
    path_ = (std::filesystem::temp_directory_path() /
             ("xdpguard-journal-test." + std::to_string(::getpid()) + ".sock"))
                .string();
    ::unlink(path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~JournalSocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }
  std::string receive() {
    std::string buf(65536, '\0');
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    buf.resize(n < 0 ? 0 : size_t(n));
    return buf;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

DropEvent tcp_drop() {
  DropEvent ev;
  ev.iface = "eth0";
  ev.rule_id = "nbif-clients-https";
  ev.raw.family = 4;
  ev.raw.protocol = IPPROTO_TCP;
  ev.raw.direction = 0;
  ev.raw.reason = XDPG_DROP_PEER_NOT_IN_SET;
  ev.raw.sport = 40001;
  ev.raw.dport = 443;
  ev.raw.tcp_flags = 0x02;
  ev.raw.packet_len = 74;
  const uint8_t src[4] = {192, 0, 2, 7}, dst[4] = {198, 51, 100, 1};
  std::memcpy(ev.raw.saddr, src, 4);
  std::memcpy(ev.raw.daddr, dst, 4);
  return ev;
}

TEST(Journal, FieldNames) {
  EXPECT_TRUE(valid_journal_field("RULE"));
  EXPECT_TRUE(valid_journal_field("TCP_FLAGS"));
  EXPECT_FALSE(valid_journal_field("_PID"));  // trusted fields are journald's
  EXPECT_FALSE(valid_journal_field("rule"));
  EXPECT_FALSE(valid_journal_field("9LIVES"));
  EXPECT_FALSE(valid_journal_field(""));
  EXPECT_FALSE(valid_journal_field(std::string(65, 'A')));
}

TEST(Journal, BinarySafeFormForNewlines) {
  std::string d = journal_datagram({{"A", "plain"}, {"B", "two\nlines"}});
  EXPECT_EQ(d, std::string("A=plain\nB\n\x09\0\0\0\0\0\0\0two\nlines\n", 28));
  auto f = parse_datagram(d);
  EXPECT_EQ(f.at("A"), "plain");
  EXPECT_EQ(f.at("B"), "two\nlines");
}

TEST(Journal, DropEventSentAsStructuredFields) {
  JournalSocket sock;
  ASSERT_TRUE(sock.bound()) << sock.path();
  JournalWriter writer(sock.path());
  auto st = writer.send(event_journal_fields(tcp_drop()));
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto f = parse_datagram(sock.receive());
  EXPECT_EQ(f.at("MESSAGE"), event_text(tcp_drop()));
  EXPECT_EQ(f.at("PRIORITY"), "5");
  EXPECT_EQ(f.at("SYSLOG_IDENTIFIER"), "xdpguard");
  EXPECT_EQ(f.at("MESSAGE_ID").size(), 32u);
  EXPECT_EQ(f.at("EVENT"), "drop");
  EXPECT_EQ(f.at("IFACE"), "eth0");
  EXPECT_EQ(f.at("DIRECTION"), "ingress");
  EXPECT_EQ(f.at("RULE"), "nbif-clients-https");
  EXPECT_EQ(f.at("REASON"), "peer_not_in_set");
  EXPECT_EQ(f.at("PROTO"), "tcp");
  EXPECT_EQ(f.at("SRC"), "192.0.2.7");
  EXPECT_EQ(f.at("DST"), "198.51.100.1");
  EXPECT_EQ(f.at("SPORT"), "40001");
  EXPECT_EQ(f.at("DPORT"), "443");
  EXPECT_EQ(f.at("TCP_FLAGS"), "S");
  EXPECT_EQ(f.at("LENGTH"), "74");
  EXPECT_TRUE(f.contains("EVENT_TIME"));

  // A would-drop with no rule: lower priority, no RULE field at all.
  DropEvent ev = tcp_drop();
  ev.rule_id.clear();
  ev.raw.flags |= XDPG_EVENT_PASSED;
  ev.raw.reason = XDPG_DROP_NO_RULE;
  ASSERT_TRUE(writer.send(event_journal_fields(ev)).ok());
  f = parse_datagram(sock.receive());
  EXPECT_EQ(f.at("EVENT"), "would-drop");
  EXPECT_EQ(f.at("PRIORITY"), "6");
  EXPECT_FALSE(f.contains("RULE"));
  EXPECT_EQ(f.at("REASON"), "no_rule");

  // A value with a newline (an interface name may hold any byte) arrives whole.
  ev.iface = "odd\nname";
  ASSERT_TRUE(writer.send(event_journal_fields(ev)).ok());
  f = parse_datagram(sock.receive());
  EXPECT_EQ(f.at("IFACE"), "odd\nname");
}

TEST(Journal, NoListenerIsAnErrorNotAHang) {
  JournalWriter writer("/nonexistent/xdpguard/journal.sock");
  auto st = writer.send(event_journal_fields(tcp_drop()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/nonexistent/xdpguard/journal.sock"), std::string::npos);
  EXPECT_FALSE(writer.send({{"bad name", "x"}}).ok());
}

TEST(Journal, StreamMatchesOnlyThisStderr) {
  EXPECT_TRUE(journal_stream_matches("8:12345", 8, 12345));
  EXPECT_FALSE(journal_stream_matches("8:12345", 8, 12346));  // inherited, stderr redirected
  EXPECT_FALSE(journal_stream_matches(nullptr, 8, 12345));
  EXPECT_FALSE(journal_stream_matches("", 0, 0));
  EXPECT_FALSE(journal_stream_matches("8:", 8, 0));
  EXPECT_FALSE(journal_stream_matches("8:12345x", 8, 12345));
}

}  // namespace
}  // namespace xdpguard::telemetry
