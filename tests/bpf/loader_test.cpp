// The real XDP object through the kernel: load with a small hand-compiled
// policy, BPF_PROG_TEST_RUN, then attach/pin/stats/detach on a veth pair in a
// network namespace this test creates. Runs as root; nothing here skips.
//
// Expected behaviour:
// - every map holds exactly what the compiled policy says (port slots, peer
//   masks with covering prefixes folded in, rule_meta, info with the layout);
// - a frame that hits a rule passes and counts on it; a frame whose port is
//   covered but whose source is outside the peer set drops and counts both on
//   the rule and on peer_not_in_set; an uncovered port drops no_rule;
// - attach pins every map and both programs under <root>/<if>@netns<inode>,
//   puts the XDP program and the TC egress filter on the interface, refuses a
//   second attach, feeds stats from the pins alone, and detach leaves neither
//   program nor the pins (a clsact qdisc and filters of others stay);
// - the datapath clock is bpf_ktime_get_coarse_ns from Linux 5.11 on, the
//   precise clock before (5.10), as the probe finds and the load uses;
// - a failed attach (unknown interface, or a driver refusing native mode after
//   the pins were written, or a foreign filter at our TC handle) leaves
//   nothing behind;
// - a real UDP flow the host opens under a local-initiator rule is recorded
//   by egress, listed by read_flows, admits its reply, and a "reply" to
//   another port is dropped as no_flow.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <variant>

#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/fd.hpp"
#include "kernel/libbpf_log.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/attach.hpp"
#include "kernel/pin_readers.hpp"
#include "kernel/probe.hpp"
#include "policy/parser.hpp"

#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <poll.h>

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::kernel {
namespace {
namespace fs = std::filesystem;

constexpr uint64_t kRule0 = 1ULL << 0;  // tcp/443 from 10.0.0.0/8
constexpr uint64_t kRule1 = 1ULL << 1;  // udp/53 from anywhere

xdpg_peer_v4_key v4_key(const char* addr, uint32_t prefix) {
  xdpg_peer_v4_key k{};
  k.prefixlen = prefix;
  inet_pton(AF_INET, addr, k.addr);
  return k;
}

xdpg_rule_meta meta(const char* id, const char* row) {
  xdpg_rule_meta m{};
  std::strncpy(m.id, id, sizeof(m.id) - 1);
  std::strncpy(m.row, row, sizeof(m.row) - 1);
  return m;
}

compile::CompiledPolicy small_policy() {
  compile::CompiledPolicy p;
  p.port_entries = {{compile::port_table_index(XDPG_KIND_UDP_LOCAL, 53), kRule1},
                    {compile::port_table_index(XDPG_KIND_TCP_LOCAL, 443), kRule0}};
  p.peers_v4 = compile::peer_table<xdpg_peer_v4_key>(
      {{v4_key("0.0.0.0", 0), kRule1}, {v4_key("10.0.0.0", 8), kRule0 | kRule1}});
  p.rule_meta = {meta("https-in", "Clients | TCP | 443"), meta("dns-in", "Resolvers | UDP | 53")};
  p.info.rule_count = 2;
  std::strncpy(p.info.policy_name, "loader-test", sizeof(p.info.policy_name) - 1);
  std::strncpy(p.info.profile, "tiny", sizeof(p.info.profile) - 1);
  p.info.policy_hash = 0x1234;
  return p;
}

std::vector<uint8_t> frame(const char* text) {
  auto spec = classify::parse_packet_spec(text);
  if (auto* err = std::get_if<std::string>(&spec)) ADD_FAILURE() << text << ": " << *err;
  return classify::build_frame(std::get<classify::PacketSpec>(spec));
}

// small_policy plus what a host that opens flows needs: rule 2 lets it ask
// NTP servers in 10.0.0.0/8 (initiator local, remote port 123), rule 3 is ARP.
constexpr uint64_t kRuleNtp = 1ULL << 2;
constexpr uint64_t kRuleArp = 1ULL << 3;

compile::CompiledPolicy flow_policy() {
  compile::CompiledPolicy p = small_policy();
  p.port_entries = {{compile::port_table_index(XDPG_KIND_UDP_LOCAL, 53), kRule1},
                    {compile::port_table_index(XDPG_KIND_UDP_REMOTE, 123), kRuleNtp},
                    {compile::port_table_index(XDPG_KIND_TCP_LOCAL, 443), kRule0},
                    {compile::port_table_index(XDPG_KIND_ETHERTYPE, 0x0806), kRuleArp}};
  p.peers_v4 = compile::peer_table<xdpg_peer_v4_key>(
      {{v4_key("0.0.0.0", 0), kRule1}, {v4_key("10.0.0.0", 8), kRule0 | kRule1 | kRuleNtp}});
  p.rule_flags[XDPG_RULE_LOCAL_INIT] = kRuleNtp;
  p.rule_flags[XDPG_RULE_REMOTE_INIT] = kRule0 | kRule1;
  p.rule_meta.push_back(meta("ntp-out", "Server -> NTP | UDP | 123"));
  p.rule_meta.push_back(meta("arp", "host essential: ARP"));
  p.info.rule_count = 4;
  return p;
}

Datapath load_small() {
  auto dp = Datapath::load(small_policy());
  if (!dp) throw std::runtime_error(dp.error().message);
  return std::move(*dp);
}

int run(const Datapath& dp, const std::vector<uint8_t>& f) {
  auto action = dp.test_run(f);
  EXPECT_TRUE(action.ok()) << (action ? "" : action.error().message);
  return action ? *action : -1;
}

// The datapath clock is the coarse one exactly where the kernel has it for
// XDP and TC (5.11, Debian's 6.1 and later), else the precise one (5.10):
// the probe decides, and a load uses what it decided.
bool kernel_at_least(unsigned want_major, unsigned want_minor) {
  utsname uts{};
  unsigned major = 0, minor = 0;
  if (uname(&uts) != 0 || std::sscanf(uts.release, "%u.%u", &major, &minor) != 2)
    ADD_FAILURE() << "cannot read the kernel release";
  return major > want_major || (major == want_major && minor >= want_minor);
}

TEST(DatapathLoad, ClockFollowsTheKernel) {
  const bool has_coarse = kernel_at_least(5, 11);
  const uint8_t want = has_coarse ? XDPG_CLOCK_COARSE : XDPG_CLOCK_PRECISE;
  EXPECT_EQ(kernel::probe_datapath_clock(), want);
  auto dp = kernel::Datapath::load(compile::CompiledPolicy{});
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  EXPECT_EQ(dp->clock(), want);
}

// Multi-buffer XDP exactly where the kernel has it (5.18: not 5.10, Debian's
// 6.1 and later), and a load uses what the probe decided, recorded in info.
// There a 9000-byte frame, which BPF_PROG_TEST_RUN hands to the program in
// several buffers, is decided on its headers and counted with all its bytes;
// the plain program is what older kernels load.
TEST(DatapathLoad, MultiBufferFollowsTheKernel) {
  const bool has_frags = kernel_at_least(5, 18);
  EXPECT_EQ(kernel::probe_xdp_frags(), has_frags);
  for (bool single : {false, true}) {
    SCOPED_TRACE(single ? "plain program forced" : "program of this kernel");
    DatapathOptions options;
    options.single_buffer = single;
    auto dp = Datapath::load(small_policy(), options);
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    EXPECT_EQ(dp->xdp_frags(), has_frags && !single);
    auto info = read_info(dp->map_fd(MapId::Info));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->xdp_frags, dp->xdp_frags() ? 1 : 0);
    if (!dp->xdp_frags()) continue;
    auto jumbo = frame("udp 192.0.2.7:5000 -> 10.0.0.2:53 len 8958");
    ASSERT_EQ(jumbo.size(), 9000u);
    EXPECT_EQ(run(*dp, jumbo), XDP_PASS);
    auto counts = dp->rule_counters();
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ((*counts)[1].pass_packets, 1u);
    EXPECT_EQ((*counts)[1].pass_bytes, 9000u);
  }
}

TEST(DatapathLoad, FillsEveryMapFromTheCompiledPolicy) {
  Datapath dp = load_small();

  for (auto [index, expected] : {std::pair{compile::port_table_index(XDPG_KIND_TCP_LOCAL, 443), kRule0},
                                 {compile::port_table_index(XDPG_KIND_UDP_LOCAL, 53), kRule1},
                                 {compile::port_table_index(XDPG_KIND_TCP_LOCAL, 80), 0ULL},
                                 {compile::port_table_index(XDPG_KIND_TCP_REMOTE, 443), 0ULL}}) {
    uint64_t value = ~0ULL;
    ASSERT_EQ(bpf_map_lookup_elem(dp.map_fd(MapId::PortTable), &index, &value), 0);
    EXPECT_EQ(value, expected) << "port_table[" << index << "]";
  }

  // The peer hash holds the /8 with /0's rule folded in, sized to it; /0
  // itself is the rodata default, no entry.
  uint64_t mask = 0;
  auto ten = v4_key("10.0.0.0", 8);
  ASSERT_EQ(bpf_map_lookup_elem(dp.map_fd(MapId::PeersV4), &ten, &mask), 0);
  EXPECT_EQ(mask, kRule0 | kRule1);
  for (auto absent : {v4_key("0.0.0.0", 0), v4_key("10.9.8.7", 32)})
    EXPECT_NE(bpf_map_lookup_elem(dp.map_fd(MapId::PeersV4), &absent, &mask), 0)
        << "/" << absent.prefixlen;
  EXPECT_EQ(bpf_map__max_entries(dp.map(MapId::PeersV4)), 1u);
  EXPECT_EQ(bpf_map__max_entries(dp.map(MapId::PeersV6)), 1u);  // empty: the minimum

  auto info = read_info(dp.map_fd(MapId::Info));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->layout_version, XDPG_LAYOUT_VERSION);
  EXPECT_EQ(info->rule_count, 2u);
  EXPECT_STREQ(info->policy_name, "loader-test");
  EXPECT_EQ(info->policy_hash, 0x1234u);

  auto metas = read_rule_meta(dp.map_fd(MapId::RuleMeta), 2);
  ASSERT_TRUE(metas.ok()) << metas.error().message;
  EXPECT_STREQ((*metas)[0].id, "https-in");
  EXPECT_STREQ((*metas)[1].row, "Resolvers | UDP | 53");
}

TEST(DatapathLoad, TestRunDecidesAndCountsPerRuleAndReason) {
  Datapath dp = load_small();
  auto pass = frame("tcp 10.1.2.3:40000 -> 192.0.2.1:443 flags S");
  auto not_in_set = frame("tcp 198.51.100.9:40000 -> 192.0.2.1:443 flags S");
  auto dns = frame("udp 198.51.100.9:5353 -> 192.0.2.1:53");
  auto no_rule = frame("udp 10.1.2.3:5353 -> 192.0.2.1:9999");

  EXPECT_EQ(run(dp, pass), XDP_PASS);
  EXPECT_EQ(run(dp, pass), XDP_PASS);
  EXPECT_EQ(run(dp, not_in_set), XDP_DROP);
  EXPECT_EQ(run(dp, dns), XDP_PASS);
  EXPECT_EQ(run(dp, no_rule), XDP_DROP);

  auto rules = dp.rule_counters();
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  ASSERT_EQ(rules->size(), size_t{XDPG_MAX_RULES});
  EXPECT_EQ((*rules)[0].pass_packets, 2u);
  EXPECT_EQ((*rules)[0].pass_bytes, 2 * pass.size());
  EXPECT_EQ((*rules)[0].drop_packets, 1u);
  EXPECT_EQ((*rules)[0].drop_bytes, not_in_set.size());
  EXPECT_EQ((*rules)[1].pass_packets, 1u);
  EXPECT_EQ((*rules)[1].drop_packets, 0u);
  EXPECT_EQ((*rules)[2].pass_packets + (*rules)[2].drop_packets, 0u);

  auto reasons = dp.reason_counters();
  ASSERT_TRUE(reasons.ok()) << reasons.error().message;
  EXPECT_EQ((*reasons)[XDPG_DROP_PEER_NOT_IN_SET].packets, 1u);
  EXPECT_EQ((*reasons)[XDPG_DROP_NO_RULE].packets, 1u);
  EXPECT_EQ((*reasons)[XDPG_DROP_NO_RULE].bytes, no_rule.size());
  EXPECT_EQ((*reasons)[XDPG_REASON_NONE].packets, 0u);

  ASSERT_TRUE(dp.reset_state().ok());
  auto cleared = dp.rule_counters();
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ((*cleared)[0].pass_packets, 0u);
}

size_t flow_count(const Datapath& dp) {
  size_t n = 0;
  auto st = for_each_flow(dp.map_fd(MapId::FlowsV4), dp.map_fd(MapId::Flows),
                          [&](const auto&, const auto&) { ++n; });
  EXPECT_TRUE(st.ok());
  return n;
}

// The options reach the programs (rodata), the flow table (max_entries) and
// the info map; egress decides, counts and records on its own maps; enforce
// drops where track only counts; reset_state forgets all of it.
TEST(DatapathLoad, EgressTestRunOptionsAndReset) {
  DatapathOptions options;
  options.flow_table_size = 4096;
  options.udp_timeout_ns = 5'000'000'000ULL;
  auto dp = Datapath::load(flow_policy(), options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  EXPECT_EQ(bpf_map__max_entries(dp->map(MapId::Flows)), 4096u);
  EXPECT_EQ(bpf_map__max_entries(dp->map(MapId::FlowsV4)), 4096u);
  auto info = read_info(dp->map_fd(MapId::Info));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->egress_mode, XDPG_EGRESS_ENFORCE);
  EXPECT_EQ(info->flow_table_size, 4096u);
  EXPECT_EQ(info->udp_timeout_ns, 5'000'000'000ULL);
  uint32_t flag = XDPG_RULE_LOCAL_INIT;
  uint64_t mask = 0;
  ASSERT_EQ(bpf_map_lookup_elem(dp->map_fd(MapId::RuleFlags), &flag, &mask), 0);
  EXPECT_EQ(mask, kRuleNtp);

  auto ntp = frame("udp 10.0.0.1:40123 -> 10.0.0.2:123");
  auto irc = frame("tcp 10.0.0.1:40000 -> 10.0.0.2:6667 flags S");
  auto reply = frame("udp 10.0.0.2:123 -> 10.0.0.1:40123");
  auto action = dp->test_run_egress(ntp);
  ASSERT_TRUE(action.ok()) << action.error().message;
  EXPECT_EQ(*action, TC_ACT_OK);
  EXPECT_EQ(*dp->test_run_egress(irc), TC_ACT_SHOT);
  EXPECT_EQ(run(*dp, reply), XDP_PASS);
  EXPECT_EQ(flow_count(*dp), 1u);
  auto er = dp->egress_rule_counters();
  auto eq = dp->egress_reason_counters();
  ASSERT_TRUE(er.ok() && eq.ok());
  EXPECT_EQ((*er)[2].pass_packets, 1u);
  EXPECT_EQ((*eq)[XDPG_DROP_NO_RULE].packets, 1u);
  EXPECT_EQ((*dp->rule_counters())[2].pass_packets, 1u);  // the reply, on ingress
  EXPECT_EQ(read_flow_counters(dp->map_fd(MapId::FlowCounters))->inserts, 1u);

  ASSERT_TRUE(dp->reset_state().ok());
  EXPECT_EQ(flow_count(*dp), 0u);
  EXPECT_EQ((*dp->egress_rule_counters())[2].pass_packets, 0u);
  EXPECT_EQ((*dp->egress_reason_counters())[XDPG_DROP_NO_RULE].packets, 0u);
  EXPECT_EQ(read_flow_counters(dp->map_fd(MapId::FlowCounters))->inserts, 0u);
  EXPECT_EQ(run(*dp, reply), XDP_DROP);  // its flow is gone
  EXPECT_EQ((*dp->reason_counters())[XDPG_DROP_NO_FLOW].packets, 1u);

  options.egress_mode = XDPG_EGRESS_TRACK;
  auto track = Datapath::load(flow_policy(), options);
  ASSERT_TRUE(track.ok()) << track.error().message;
  EXPECT_EQ(*track->test_run_egress(irc), TC_ACT_OK);
  EXPECT_EQ((*track->egress_reason_counters())[XDPG_DROP_NO_RULE].packets, 1u);

  options.flow_table_size = 0;
  EXPECT_FALSE(Datapath::load(flow_policy(), options).ok());
}

// The flow times are on the clock the datapath reports (info.clock), read
// from userspace with clock_now_ns: what `xdpguard flows` computes ages with.
// The coarse clock lags the precise one by up to a tick, so a mismatch puts
// last_seen outside [before, after]. Both clocks: the precise one is what
// kernels without bpf_ktime_get_coarse_ns run.
TEST(DatapathLoad, FlowTimesAreOnTheReportedClock) {
  for (bool precise : {false, true}) {
    SCOPED_TRACE(precise ? "precise clock forced" : "clock of this kernel");
    DatapathOptions options;
    options.precise_clock = precise;
    auto dp = Datapath::load(flow_policy(), options);
    ASSERT_TRUE(dp.ok()) << dp.error().message;
    EXPECT_EQ(dp->clock(), precise ? XDPG_CLOCK_PRECISE : probe_datapath_clock());
    auto info = read_info(dp->map_fd(MapId::Info));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->clock, dp->clock());

    auto ntp = frame("udp 10.0.0.1:40123 -> 10.0.0.2:123");
    const uint64_t before = clock_now_ns(dp->clock());
    ASSERT_EQ(*dp->test_run_egress(ntp), TC_ACT_OK);
    const uint64_t after = clock_now_ns(dp->clock());
    xdpg_flow_v4_key key{};
    ASSERT_EQ(bpf_map_get_next_key(dp->map_fd(MapId::FlowsV4), nullptr, &key), 0);
    xdpg_flow_value v{};
    ASSERT_EQ(bpf_map_lookup_elem(dp->map_fd(MapId::FlowsV4), &key, &v), 0);
    EXPECT_GE(v.last_seen_ns, before);
    EXPECT_LE(v.last_seen_ns, after);
    EXPECT_EQ(v.created_ns, v.last_seen_ns);
    // The reply is admitted on the same clock.
    EXPECT_EQ(run(*dp, frame("udp 10.0.0.2:123 -> 10.0.0.1:40123")), XDP_PASS);
  }
}

TEST(DatapathLoad, DefaultPolicyCompilesLoadsAndAdmitsHttps) {
  auto parsed = policy::parse_policy_text(kDefaultPolicyYaml, "<embedded default>", ".");
  ASSERT_TRUE(parsed.ok());
  auto selected = policy::select_rules(*parsed.policy, "");
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(selected));
  const auto& rules = std::get<policy::RuleSet>(selected);
  auto dp = Datapath::load(compile::compile(rules));
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  auto info = read_info(dp->map_fd(MapId::Info));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->rule_count, rules.rules.size());
  EXPECT_EQ(run(*dp, frame("tcp 192.0.2.7:51515 -> 198.51.100.10:443 flags S")), XDP_PASS);
  EXPECT_EQ(run(*dp, frame("tcp 192.0.2.7:51515 -> 198.51.100.10:7 flags S")), XDP_DROP);
}

// A network namespace with a veth pair, entered by this thread for the test.
// Pins go to a root of their own so a real xdpguard on the host is untouched.
class AttachTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int serial = 0;
    std::string tag = std::to_string(getpid()) + "-" + std::to_string(++serial);
    ns_ = "xdpg-loader-" + tag;
    pin_root_ = "/sys/fs/bpf/xdpguard-loader-test-" + tag;
    ASSERT_EQ(sh("ip netns add " + ns_), 0);
    ns_created_ = true;
    // No IPv6: its autoconfiguration chatter would land in the counters.
    ASSERT_EQ(sh("ip netns exec " + ns_ + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                 "net.ipv6.conf.default.disable_ipv6=1"),
              0);
    ASSERT_EQ(sh("ip -n " + ns_ + " link add " + va_ + " type veth peer name " + vb_), 0);
    ASSERT_EQ(sh("ip -n " + ns_ + " link set " + va_ + " up"), 0);
    ASSERT_EQ(sh("ip -n " + ns_ + " link set " + vb_ + " up"), 0);
    ASSERT_EQ(sh("ip -n " + ns_ + " link set lo up"), 0);
    home_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(home_.valid());
    Fd target(open(("/run/netns/" + ns_).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(target.valid());
    ASSERT_EQ(setns(target.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    entered_ = true;
  }

  void TearDown() override {
    if (entered_) EXPECT_EQ(setns(home_.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    std::error_code ec;
    fs::remove_all(pin_root_, ec);
    if (ns_created_) sh("ip netns del " + ns_);
    if (peer_created_) sh("ip netns del " + peer_ns_);
  }

  // Moves vb_ into a namespace of its own, so that traffic between
  // kServerAddr on va_ and kPeerAddr on vb_ really crosses the veth.
  void split_peer() {
    peer_ns_ = ns_ + "-peer";
    ASSERT_EQ(sh("ip netns add " + peer_ns_), 0);
    peer_created_ = true;
    ASSERT_EQ(sh("ip netns exec " + peer_ns_ + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1"), 0);
    ASSERT_EQ(sh("ip -n " + ns_ + " link set " + vb_ + " netns " + peer_ns_), 0);
    ASSERT_EQ(sh("ip -n " + ns_ + " addr add " + kServerAddr + "/24 dev " + va_), 0);
    ASSERT_EQ(sh("ip -n " + peer_ns_ + " addr add " + kPeerAddr + "/24 dev " + vb_), 0);
    ASSERT_EQ(sh("ip -n " + peer_ns_ + " link set " + vb_ + " up"), 0);
    ASSERT_EQ(sh("ip -n " + peer_ns_ + " link set lo up"), 0);
  }

  // A UDP socket bound to addr:port, created in namespace `ns` (a socket
  // stays in the namespace it was created in).
  Fd udp_socket_in(const std::string& ns, const char* addr, uint16_t port) {
    Fd here(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    Fd there(open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(here.valid() && there.valid());
    EXPECT_EQ(setns(there.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(setns(here.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    sockaddr_in sa = inet(addr, port);
    EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0)
        << addr << ":" << port << ": " << std::strerror(errno);
    return s;
  }

  static sockaddr_in inet(const char* addr, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    return sa;
  }

  static void send_to(const Fd& s, const char* addr, uint16_t port, std::string_view text) {
    sockaddr_in sa = inet(addr, port);
    EXPECT_EQ(sendto(s.get(), text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                     sizeof(sa)),
              static_cast<ssize_t>(text.size()))
        << std::strerror(errno);
  }

  // The datagram waiting on `s` within `ms`, or "" if none came.
  static std::string receive(const Fd& s, int ms) {
    pollfd p{s.get(), POLLIN, 0};
    if (poll(&p, 1, ms) != 1) return "";
    char buf[256];
    ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  static constexpr const char* kServerAddr = "10.9.0.1";
  static constexpr const char* kPeerAddr = "10.9.0.2";

  static int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

  static uint32_t attached_prog_id(const std::string& iface) {
    bpf_xdp_query_opts opts{};
    opts.sz = sizeof(opts);
    EXPECT_EQ(bpf_xdp_query(if_nametoindex(iface.c_str()), 0, &opts), 0);
    return opts.drv_prog_id ? opts.drv_prog_id : opts.skb_prog_id;
  }

  // Program id of the egress filter at xdpguard's handle/priority, 0 if none.
  static uint32_t tc_prog_id(const std::string& iface, uint32_t handle = kTcHandle,
                             uint32_t priority = kTcPriority) {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
    hook.attach_point = BPF_TC_EGRESS;
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = handle;
    opts.priority = priority;
    QuietLibbpf quiet;  // "not found" is an answer here
    return bpf_tc_query(&hook, &opts) == 0 ? opts.prog_id : 0;
  }

  static uint32_t prog_id(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    return info.id;
  }

  // Sends `f` out of vb_, so it arrives on va_'s receive path.
  void inject(const std::vector<uint8_t>& f) {
    Fd s(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.valid());
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_ifindex = static_cast<int>(if_nametoindex(vb_.c_str()));
    addr.sll_halen = 6;
    ASSERT_EQ(sendto(s.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr)),
              static_cast<ssize_t>(f.size()))
        << std::strerror(errno);
  }

  std::string ns_, peer_ns_, pin_root_;
  std::string va_ = "xdpgva", vb_ = "xdpgvb";
  Fd home_;
  bool ns_created_ = false, peer_created_ = false, entered_ = false;
};

TEST_F(AttachTest, PinsStatsAndDetach) {
  Datapath dp = load_small();
  auto dir = pin_dir(va_, pin_root_);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_NE(dir->find(va_ + "@netns"), std::string::npos) << *dir;

  auto st = attach(dp, va_, XdpMode::Native, pin_root_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  for (MapId id : kAllMaps) EXPECT_TRUE(fs::exists(*dir + "/" + map_name(id))) << map_name(id);
  for (const char* name : {"flows", "flow_counters", "rule_flags", "egress_rule_counters",
                           "egress_reason_counters", "xdpguard_ingress", "xdpguard_egress"})
    EXPECT_TRUE(fs::exists(*dir + "/" + name)) << name;
  EXPECT_EQ(attached_prog_id(va_), prog_id(dp.prog_fd()));
  EXPECT_EQ(tc_prog_id(va_), prog_id(dp.egress_prog_fd()));
  EXPECT_EQ(sh("tc filter show dev " + va_ + " egress | grep -q xdpguard_egress"), 0);

  auto again = attach(dp, va_, XdpMode::Native, pin_root_);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already attached to " + va_ + "; detach first"),
            std::string::npos)
      << again.error().message;

  // The pins must carry the program alone once the loader's objects are gone.
  dp = load_small();  // replaces (and frees) the attached skeleton's handles
  inject(frame("tcp 10.1.2.3:40000 -> 192.0.2.1:443 flags S"));
  inject(frame("udp 10.1.2.3:5353 -> 192.0.2.1:9999"));

  Result<PinnedStats> stats = plain_error("not read");
  for (int i = 0; i < 100; ++i) {  // veth XDP runs in NAPI, not in sendto()
    stats = read_stats(va_, pin_root_);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    if (stats->rules[0].counters.pass_packets == 1 && stats->reasons[0].counters.packets == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stats->policy_name, "loader-test");
  EXPECT_EQ(stats->profile, "tiny");
  EXPECT_EQ(stats->pin_dir, *dir);
  ASSERT_EQ(stats->rules.size(), 2u);
  EXPECT_EQ(stats->rules[0].id, "https-in");
  EXPECT_EQ(stats->rules[1].row, "Resolvers | UDP | 53");
  EXPECT_EQ(stats->rules[0].counters.pass_packets, 1u);
  ASSERT_EQ(stats->reasons.size(), size_t{XDPG_DROP_REASON_COUNT - 1});
  EXPECT_EQ(stats->reasons[0].reason, DropReason::NoRule);
  EXPECT_EQ(stats->reasons[0].counters.packets, 1u);
  ASSERT_TRUE(stats->attached_mode.has_value());
  EXPECT_EQ(*stats->attached_mode, XdpMode::Native);
  EXPECT_TRUE(stats->egress_attached);
  EXPECT_EQ(stats->settings.egress_mode, XDPG_EGRESS_ENFORCE);
  EXPECT_EQ(stats->settings.udp_timeout_ns, 60'000'000'000ULL);
  EXPECT_EQ(stats->settings.clock, probe_datapath_clock());
  EXPECT_EQ(stats->flow_table.capacity, 2 * uint64_t{XDPG_FLOW_ENTRIES});  // flows_v4 + flows
  EXPECT_EQ(stats->egress_rules.size(), 2u);
  EXPECT_EQ(stats->egress_reasons.size(), size_t{XDPG_DROP_REASON_COUNT - 1});

  auto gone = detach(va_, pin_root_);
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_FALSE(fs::exists(*dir));
  EXPECT_EQ(attached_prog_id(va_), 0u);
  EXPECT_EQ(tc_prog_id(va_), 0u);
  EXPECT_NE(sh("tc filter show dev " + va_ + " egress | grep -q xdpguard_egress"), 0);
  auto twice = detach(va_, pin_root_);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("not attached"), std::string::npos);
}

TEST_F(AttachTest, GenericModeDetachesInTheModeItWasAttachedIn) {
  Datapath dp = load_small();
  ASSERT_TRUE(attach(dp, va_, XdpMode::Generic, pin_root_).ok());
  bpf_xdp_query_opts opts{};
  opts.sz = sizeof(opts);
  ASSERT_EQ(bpf_xdp_query(if_nametoindex(va_.c_str()), 0, &opts), 0);
  EXPECT_EQ(opts.skb_prog_id, prog_id(dp.prog_fd()));
  EXPECT_EQ(opts.drv_prog_id, 0u);
  auto st = detach(va_, pin_root_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(attached_prog_id(va_), 0u);
}

TEST_F(AttachTest, FailedAttachLeavesNoPins) {
  Datapath dp = load_small();
  auto missing = attach(dp, "xdpg-nosuch0", XdpMode::Native, pin_root_);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("xdpg-nosuch0"), std::string::npos);
  EXPECT_FALSE(fs::exists(*pin_dir("xdpg-nosuch0", pin_root_)));

  // lo has no native XDP: the failure comes after the pins were written and
  // must take them back.
  auto refused = attach(dp, "lo", XdpMode::Native, pin_root_);
  ASSERT_FALSE(refused.ok());
  EXPECT_FALSE(fs::exists(*pin_dir("lo", pin_root_))) << refused.error().message;
  EXPECT_EQ(attached_prog_id("lo"), 0u);
  EXPECT_EQ(tc_prog_id("lo"), 0u);
}

// A foreign filter at xdpguard's TC handle blocks the attach before anything
// is applied; one at another priority coexists and outlives detach, and so
// does the clsact qdisc they share.
TEST_F(AttachTest, NeverReplacesAnotherTcFilter) {
  Datapath other = load_small();
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(if_nametoindex(va_.c_str()));
  hook.attach_point = BPF_TC_EGRESS;
  ASSERT_EQ(bpf_tc_hook_create(&hook), 0);
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = other.egress_prog_fd();
  ASSERT_EQ(bpf_tc_attach(&hook, &opts), 0);

  Datapath dp = load_small();
  auto st = attach(dp, va_, XdpMode::Native, pin_root_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("TC egress handle"), std::string::npos) << st.error().message;
  EXPECT_EQ(attached_prog_id(va_), 0u);
  EXPECT_EQ(tc_prog_id(va_), prog_id(other.egress_prog_fd()));
  EXPECT_FALSE(fs::exists(*pin_dir(va_, pin_root_)));

  // Move the foreign filter to priority 7: now both fit.
  bpf_tc_opts del{};
  del.sz = sizeof(del);
  del.handle = kTcHandle;
  del.priority = kTcPriority;
  ASSERT_EQ(bpf_tc_detach(&hook, &del), 0);
  opts.prog_id = 0;
  opts.priority = 7;
  ASSERT_EQ(bpf_tc_attach(&hook, &opts), 0);
  ASSERT_TRUE(attach(dp, va_, XdpMode::Native, pin_root_).ok());
  EXPECT_EQ(tc_prog_id(va_), prog_id(dp.egress_prog_fd()));
  ASSERT_TRUE(detach(va_, pin_root_).ok());
  EXPECT_EQ(tc_prog_id(va_), 0u);
  EXPECT_EQ(tc_prog_id(va_, kTcHandle, 7), prog_id(other.egress_prog_fd()));
}

TEST_F(AttachTest, NeverReplacesAnotherProgram) {
  Datapath other = load_small();
  ASSERT_EQ(bpf_xdp_attach(if_nametoindex(va_.c_str()), other.prog_fd(), XDP_FLAGS_SKB_MODE,
                           nullptr),
            0);
  Datapath dp = load_small();
  auto st = attach(dp, va_, XdpMode::Native, pin_root_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("another XDP program"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(attached_prog_id(va_), prog_id(other.prog_fd()));
  EXPECT_FALSE(fs::exists(*pin_dir(va_, pin_root_)));
  auto not_ours = detach(va_, pin_root_);
  EXPECT_FALSE(not_ours.ok());
  EXPECT_EQ(attached_prog_id(va_), prog_id(other.prog_fd()));
}

TEST_F(AttachTest, StatsRefusePinsOfAnotherLayout) {
  Datapath dp = load_small();
  ASSERT_TRUE(attach(dp, va_, XdpMode::Native, pin_root_).ok());
  auto dir = *pin_dir(va_, pin_root_);
  Fd info_fd(bpf_obj_get((dir + "/info").c_str()));
  ASSERT_TRUE(info_fd.valid());
  auto info = read_info(info_fd.get());
  ASSERT_TRUE(info.ok());
  info->layout_version = XDPG_LAYOUT_VERSION + 1;
  uint32_t zero = 0;
  ASSERT_EQ(bpf_map_update_elem(info_fd.get(), &zero, &*info, BPF_ANY), 0);

  auto stats = read_stats(va_, pin_root_);
  ASSERT_FALSE(stats.ok());
  EXPECT_NE(stats.error().message.find("layout version " + std::to_string(XDPG_LAYOUT_VERSION + 1)),
            std::string::npos)
      << stats.error().message;
  // Detach does not read the maps, so it still cleans up.
  ASSERT_TRUE(detach(va_, pin_root_).ok());
  EXPECT_FALSE(fs::exists(dir));
}

// The server (va_) sends to the peer's NTP port: egress records the flow,
// read_flows lists it, the peer's reply is admitted on the flow's rule, and a
// datagram from the same port to another local port is dropped no_flow.
TEST_F(AttachTest, RecordsAFlowTheHostOpensAndAdmitsOnlyItsReplies) {
  split_peer();
  auto dp = Datapath::load(flow_policy());
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  auto st = attach(*dp, va_, XdpMode::Native, pin_root_);
  ASSERT_TRUE(st.ok()) << st.error().message;

  // The peer listens first: a port unreachable back would be admitted too
  // (an ICMP error quoting the flow) and count on the rule.
  Fd peer = udp_socket_in(peer_ns_, kPeerAddr, 123);
  Fd server = udp_socket_in(ns_, kServerAddr, 40123);
  send_to(server, kPeerAddr, 123, "ntp?");
  Result<FlowTable> table = plain_error("not read");
  for (int i = 0; i < 200; ++i) {  // the datagram waits for ARP first
    table = read_flows(va_, pin_root_);
    ASSERT_TRUE(table.ok()) << table.error().message;
    if (!table->flows.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(table->flows.size(), 1u);
  const FlowEntry& f = table->flows[0];
  EXPECT_EQ(f.key.family, 4);
  EXPECT_EQ(f.key.protocol, IPPROTO_UDP);
  EXPECT_EQ(f.key.local_port, 40123);
  EXPECT_EQ(f.key.remote_port, 123);
  in_addr local{}, remote{};
  inet_pton(AF_INET, kServerAddr, &local);
  inet_pton(AF_INET, kPeerAddr, &remote);
  EXPECT_EQ(std::memcmp(f.key.local_addr, &local, 4), 0);
  EXPECT_EQ(std::memcmp(f.key.remote_addr, &remote, 4), 0);
  EXPECT_EQ(f.rule_id, "ntp-out");
  EXPECT_TRUE(f.live);
  EXPECT_LT(f.idle_ns, 10'000'000'000ULL);
  EXPECT_EQ(table->settings.egress_mode, XDPG_EGRESS_ENFORCE);

  EXPECT_EQ(receive(peer, 2000), "ntp?");
  send_to(peer, kServerAddr, 40999, "spoof");
  send_to(peer, kServerAddr, 40123, "reply");
  EXPECT_EQ(receive(server, 2000), "reply");

  Result<PinnedStats> stats = plain_error("not read");
  for (int i = 0; i < 100; ++i) {
    stats = read_stats(va_, pin_root_);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    if (stats->reasons[XDPG_DROP_NO_FLOW - 1].counters.packets >= 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stats->reasons[XDPG_DROP_NO_FLOW - 1].reason, DropReason::NoFlow);
  EXPECT_EQ(stats->reasons[XDPG_DROP_NO_FLOW - 1].counters.packets, 1u);
  EXPECT_EQ(stats->rules[2].counters.pass_packets, 1u);  // the reply
  EXPECT_EQ(stats->rules[2].counters.drop_packets, 1u);  // the spoof
  EXPECT_EQ(stats->egress_rules[2].counters.pass_packets, 1u);
  EXPECT_EQ(stats->flow_table.entries, 1u);
  EXPECT_EQ(stats->flow_table.inserts, 1u);
  EXPECT_EQ(stats->flow_table.evictions, 0u);

  table = read_flows(va_, pin_root_);
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->flows.size(), 1u);
  EXPECT_TRUE(table->flows[0].value.flags & XDPG_FLOW_REPLIED);
  ASSERT_TRUE(detach(va_, pin_root_).ok());
}

}  // namespace
}  // namespace xdpguard::kernel
