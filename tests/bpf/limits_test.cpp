// Resource limits and hostile leftovers around loading and pinning.
//
// Expected behaviour:
// - a policy with more rules than the datapath holds (64) is refused with an
//   error naming both numbers, by select_rules and again by Datapath::load;
// - a peer set of 300,000 addresses loads whole: the loader sizes the peer
//   hash to the compiled prefixes (no truncation, no partial load), every
//   prefix is in the map and both ends of the set are admitted;
// - a peer set with a prefix of every length, /1 to /32 and /1 to /128 (the
//   most probes the datapath can need), loads: the verifier accepts the
//   longest probe loops; sources at the ends of the set are decided by it;
// - with the default policy and the every-length one, each program uses less
//   than half of the running kernel's verifier complexity limit (figures to
//   $XDPGUARD_VERIFIER_REPORT for docs/kernels.md);
// - the per-element map fill (the path of kernels without batch updates,
//   forced here) writes the same entries as the batch fill;
// - a flow table the kernel cannot create fails the load with an error that
//   names the flow table, and nothing stays loaded;
// - pins from another generation are refused by stats and flows with a
//   message naming the layout and what to do: an info map of another shape
//   (an older layout) and one of the right shape with another
//   layout_version; never read as if they were ours;
// - a pin root that is not on bpffs (a tmpfs directory) makes attach fail
//   with an error saying so, before anything is created there.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <tuple>
#include <variant>

#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/fd.hpp"
#include "kernel/libbpf_log.hpp"
#include "kernel/attach.hpp"
#include "kernel/pin_readers.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {
namespace fs = std::filesystem;

std::string contains_msg(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos ? "" : "'" + message + "' lacks '" + part + "'";
}

// A policy with `n` rules, each admitting one TCP port from 10.0.0.0/8.
std::string many_rules_policy(int n) {
  std::string text = "version: 1\nname: many\npeer_sets:\n  p:\n    cidrs: [10.0.0.0/8]\nrules:\n";
  for (int i = 0; i < n; ++i)
    text += "  - id: r" + std::to_string(i) + "\n    section: s\n    row: r\n    protocol: tcp\n"
            "    local_port: " + std::to_string(1000 + i) + "\n    peers: p\n"
            "    initiator: remote\n    flow: bidirectional\n    secured: true\n    purpose: p\n";
  return text;
}

// `pol` with `set` and one rule, TCP 443 from it, selected for loading.
auto https_over(policy::Policy& pol, const policy::PeerSet& set) {
  pol.peer_sets.push_back(set);
  policy::Rule rule;
  rule.id = "https";
  rule.protocol = policy::Protocol::Tcp;
  rule.local_ports = {{443, 443}};
  rule.peers = set.name;
  pol.rules.push_back(rule);
  return policy::select_rules(pol, "");
}

TEST(Limits, MoreRulesThanTheDatapathHoldsAreRefused) {
  auto ok = policy::parse_policy_text(many_rules_policy(64), "many.yaml", "");
  ASSERT_TRUE(ok.ok());
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(policy::select_rules(*ok.policy, "")));

  auto parsed = policy::parse_policy_text(many_rules_policy(65), "many.yaml", "");
  ASSERT_TRUE(parsed.ok()) << "the parser takes any number; select_rules enforces the limit";
  auto selected = policy::select_rules(*parsed.policy, "");
  ASSERT_TRUE(std::holds_alternative<policy::Diagnostic>(selected));
  const std::string msg = std::get<policy::Diagnostic>(selected).message;
  EXPECT_EQ(contains_msg(msg, "65"), "");
  EXPECT_EQ(contains_msg(msg, "64"), "");

  // The loader does not trust its caller either.
  compile::CompiledPolicy big;
  big.rule_meta.resize(65);
  big.info.rule_count = 65;
  auto dp = kernel::Datapath::load(big);
  ASSERT_FALSE(dp.ok());
  EXPECT_EQ(contains_msg(dp.error().message, "65 rules"), "");
  EXPECT_EQ(contains_msg(dp.error().message, "at most 64"), "");
}

TEST(Limits, AHugePeerSetLoadsWhole) {
  constexpr uint32_t kAddresses = 300'000;
  policy::Policy pol;
  pol.name = "huge";
  policy::PeerSet set;
  set.name = "many";
  for (uint32_t i = 0; i < kAddresses; ++i) {
    policy::Cidr c;
    c.family = 4;
    const uint32_t a = (10u << 24) | (i * 2);  // every other address: no merging into prefixes
    c.address = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
                 static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
    c.prefix_length = 32;
    set.cidrs.push_back(c);
  }
  auto selected = https_over(pol, set);
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(selected));

  const auto start = std::chrono::steady_clock::now();
  auto compiled = compile::compile(std::get<policy::RuleSet>(selected));
  ASSERT_EQ(compiled.peers_v4.entries.size(), kAddresses);
  auto dp = kernel::Datapath::load(compiled);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const int fd = dp->map_fd(kernel::MapId::PeersV4);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
  EXPECT_GE(info.max_entries, kAddresses);
  size_t entries = 0;
  xdpg_peer_v4_key key{}, next{};
  for (const void* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
    key = next;
    ++entries;
  }
  EXPECT_EQ(entries, kAddresses);

  auto probe = [&](const char* src) {
    auto spec = classify::parse_packet_spec(std::string("tcp ") + src + ":5000 -> 192.0.2.1:443");
    auto r = dp->test_run(classify::build_frame(std::get<classify::PacketSpec>(spec)));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(probe("10.0.0.0"), XDP_PASS);      // first
  EXPECT_EQ(probe("10.9.39.190"), XDP_PASS);   // last: 10.0.0.0 + 2 * 299,999
  EXPECT_EQ(probe("10.0.0.1"), XDP_DROP);      // between two members
  EXPECT_EQ(probe("10.9.39.192"), XDP_DROP);   // past the end
  std::printf("[ limits ] %u prefixes compiled and loaded in %.2f s, peers_v4 max_entries %u\n",
              kAddresses, seconds, info.max_entries);
}

// TCP 443 from a peer set with a prefix of every length of 10.1.2.3 and
// 2001:db8::1 (/1 to /32, /1 to /128): the most probes the datapath can
// need, so the most the verifier walks.
compile::CompiledPolicy every_length_policy() {
  policy::Policy pol;
  pol.name = "lengths";
  policy::PeerSet set;
  set.name = "chain";
  for (int family : {4, 6}) {
    policy::Cidr host;
    host.family = family;
    host.address = family == 4 ? std::array<uint8_t, 16>{10, 1, 2, 3}
                               : std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                                         0, 0, 0, 0, 0, 0, 0, 1};
    for (int len = 1; len <= (family == 4 ? 32 : 128); ++len) {
      policy::Cidr c = host;
      c.prefix_length = static_cast<uint8_t>(len);
      for (int bit = len; bit < 128; ++bit)
        c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
      set.cidrs.push_back(c);
    }
  }
  auto selected = https_over(pol, set);
  return compile::compile(std::get<policy::RuleSet>(selected));
}

TEST(Limits, APeerSetOfEveryPrefixLengthLoads) {
  auto compiled = every_length_policy();
  ASSERT_EQ(compiled.peers_v4.lengths.size(), 32u);
  ASSERT_EQ(compiled.peers_v6.lengths.size(), 128u);

  const auto start = std::chrono::steady_clock::now();
  auto dp = kernel::Datapath::load(compiled);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto probe = [&](const std::string& src) {
    const char* dst = src[0] == '[' ? "[2001:db8:ffff::1]" : "192.0.2.1";
    auto spec = classify::parse_packet_spec("tcp " + src + ":5000 -> " + dst + ":443");
    auto r = dp->test_run(classify::build_frame(std::get<classify::PacketSpec>(spec)));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(probe("10.1.2.3"), XDP_PASS);         // the /32
  EXPECT_EQ(probe("127.255.255.255"), XDP_PASS);  // only the /1
  EXPECT_EQ(probe("128.0.0.0"), XDP_DROP);        // outside the /1
  EXPECT_EQ(probe("[2001:db8::1]"), XDP_PASS);
  EXPECT_EQ(probe("[7fff::1]"), XDP_PASS);
  EXPECT_EQ(probe("[8000::1]"), XDP_DROP);
  // The verifier's figures: EachProgramUsesLessThanHalfTheVerifierLimit
  // (bpf_prog_info.verified_insns is 0 before 5.16).
  std::printf("[ limits ] 32 + 128 prefix lengths loaded in %.2f s\n", seconds);
}

// Both programs, with the default policy and with the one the verifier walks
// the longest, learning off and on (docs/learn.md), use less than half of
// this kernel's complexity limit: a
// verifier release that tracks a little less precisely still takes them.
// The figures go to $XDPGUARD_VERIFIER_REPORT (tests/vm/matrix.sh gathers
// them per kernel for docs/kernels.md).
TEST(Limits, EachProgramUsesLessThanHalfTheVerifierLimit) {
  const compile::CompiledPolicy default_policy = testing::compiled_default_policy();
  const compile::CompiledPolicy every_length = every_length_policy();
  const struct {
    const char* name;
    const compile::CompiledPolicy& compiled;
    bool learn;
  } cases[] = {
      {"default", default_policy, false},
      {"every-prefix-length", every_length, false},
      {"default-learning", default_policy, true},
      {"every-prefix-length-learning", every_length, true},
  };
  utsname uts{};
  ASSERT_EQ(uname(&uts), 0);
  const char* report_path = std::getenv("XDPGUARD_VERIFIER_REPORT");
  FILE* report = report_path ? std::fopen(report_path, "a") : nullptr;
  ASSERT_TRUE(!report_path || report) << report_path;
  for (const auto& [name, compiled, learn] : cases) {
    std::vector<kernel::VerifierStats> stats;
    kernel::DatapathOptions options;
    options.verifier_stats = &stats;
    options.learn = learn;
    const auto start = std::chrono::steady_clock::now();
    auto dp = kernel::Datapath::load(compiled, options);
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(dp.ok()) << name << ": " << dp.error().message;
    ASSERT_EQ(stats.size(), 2u);
    for (const auto& st : stats) {
      ASSERT_GT(st.insns_limit, 0u) << name << " " << st.program << ": no statistics in the log";
      EXPECT_LT(st.insns_processed, st.insns_limit / 2)
          << name << " " << st.program << " on " << uts.release;
      std::printf("[ verifier ] %s %s %s: %u insns processed (limit %u), %u peak states, "
                  "%u insns after rewrites, verified in %llu us, load %.0f ms\n",
                  uts.release, name, st.program.c_str(), st.insns_processed, st.insns_limit,
                  st.peak_states, st.xlated_insns,
                  static_cast<unsigned long long>(st.verification_us), load_ms);
      if (report)
        std::fprintf(report, "%s\t%s\t%s\t%u\t%u\t%u\t%u\t%llu\t%.0f\n", uts.release, name,
                     st.program.c_str(), st.insns_processed, st.insns_limit, st.peak_states,
                     st.xlated_insns, static_cast<unsigned long long>(st.verification_us),
                     load_ms);
    }
  }
  if (report) std::fclose(report);
}

// The per-element fill (kernels before 5.6 have no batch updates) writes
// exactly what the batch fill does: same peer and port entries, same verdicts.
TEST(Limits, PerElementFillWritesWhatTheBatchFillWrites) {
  const auto compiled = every_length_policy();
  kernel::DatapathOptions per_element;
  per_element.per_element_fill = true;
  auto batch = kernel::Datapath::load(compiled);
  auto single = kernel::Datapath::load(compiled, per_element);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  ASSERT_TRUE(single.ok()) << single.error().message;

  auto entries = [](int fd, size_t key_size, size_t value_size) {
    std::map<std::vector<uint8_t>, std::vector<uint8_t>> out;
    std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
    for (const void* prev = nullptr; bpf_map_get_next_key(fd, prev, next.data()) == 0;
         prev = key.data()) {
      key = next;
      EXPECT_EQ(bpf_map_lookup_elem(fd, key.data(), value.data()), 0);
      out[key] = value;
    }
    return out;
  };
  const std::tuple<kernel::MapId, size_t, size_t> maps[] = {
      {kernel::MapId::PeersV4, sizeof(xdpg_peer_v4_key), sizeof(__u64)},
      {kernel::MapId::PeersV6, sizeof(xdpg_peer_v6_key), sizeof(__u64)},
  };
  for (const auto& [id, key_size, value_size] : maps) {
    auto want = entries(batch->map_fd(id), key_size, value_size);
    EXPECT_FALSE(want.empty());
    EXPECT_EQ(entries(single->map_fd(id), key_size, value_size), want);
  }
  // The port table is an array (every key exists): its written slots.
  ASSERT_FALSE(compiled.port_entries.empty());
  for (const auto& [key, bits] : compiled.port_entries) {
    __u64 got = 0;
    ASSERT_EQ(bpf_map_lookup_elem(single->map_fd(kernel::MapId::PortTable), &key, &got), 0);
    EXPECT_EQ(got, bits) << "port_table[" << key << "]";
  }
  for (const char* src : {"10.1.2.3", "127.255.255.255", "128.0.0.0", "[2001:db8::1]",
                          "[8000::1]"}) {
    const char* dst = src[0] == '[' ? "[2001:db8:ffff::1]" : "192.0.2.1";
    auto spec = classify::parse_packet_spec(std::string("tcp ") + src + ":5000 -> " + dst + ":443");
    auto frame = classify::build_frame(std::get<classify::PacketSpec>(spec));
    EXPECT_EQ(*single->test_run(frame), *batch->test_run(frame)) << src;
  }
}

TEST(Limits, AFlowTableTheKernelCannotCreateFailsTheLoad) {
  compile::CompiledPolicy p;
  kernel::DatapathOptions options;
  options.flow_table_size = 1u << 31;  // more buckets than a hash map may have
  kernel::QuietLibbpf quiet;
  auto dp = kernel::Datapath::load(p, options);
  ASSERT_FALSE(dp.ok());
  const std::string& msg = dp.error().message;
  EXPECT_NE(msg.find("flow"), std::string::npos) << msg;
  std::printf("[ limits ] flow_table_size 2^31: %s\n", msg.c_str());
}

// Pins planted by hand for an interface that need not exist: stats and flows
// read the pins alone.
class StalePins : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = "/sys/fs/bpf/xdpguard-stale-test-" + std::to_string(getpid());
    auto dir = kernel::pin_dir(kIface, root_);
    ASSERT_TRUE(dir.ok());
    dir_ = *dir;
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // An ARRAY[1] named info with `value_size`, holding `version` in its first word.
  void plant_info(uint32_t value_size, uint32_t version) {
    kernel::Fd fd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "info", sizeof(uint32_t), value_size, 1,
                                 nullptr));
    ASSERT_TRUE(fd.valid()) << std::strerror(errno);
    std::vector<uint8_t> value(value_size);
    std::memcpy(value.data(), &version, sizeof version);
    uint32_t zero = 0;
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &zero, value.data(), BPF_ANY), 0);
    ASSERT_EQ(bpf_obj_pin(fd.get(), (dir_ + "/info").c_str()), 0) << std::strerror(errno);
  }

  static constexpr const char* kIface = "xdpgstale0";
  std::string root_, dir_;
};

TEST_F(StalePins, AnInfoMapOfAnotherShapeIsRefused) {
  plant_info(96, 1);  // what an early layout's info looked like: smaller
  auto stats = kernel::read_stats(kIface, root_);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(contains_msg(stats.error().message, "not this xdpguard's layout"), "");
  EXPECT_EQ(contains_msg(stats.error().message, dir_), "");
  EXPECT_EQ(contains_msg(stats.error().message, "detach and attach again"), "");
  auto flows = kernel::read_flows(kIface, root_);
  ASSERT_FALSE(flows.ok());
  EXPECT_EQ(contains_msg(flows.error().message, "not this xdpguard's layout"), "");
}

TEST_F(StalePins, AnotherLayoutVersionIsRefused) {
  plant_info(sizeof(xdpg_info), XDPG_LAYOUT_VERSION - 1);
  const std::string want = "map layout version " + std::to_string(XDPG_LAYOUT_VERSION - 1) +
                           ", this xdpguard reads version " + std::to_string(XDPG_LAYOUT_VERSION);
  auto stats = kernel::read_stats(kIface, root_);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(contains_msg(stats.error().message, want), "");
  auto flows = kernel::read_flows(kIface, root_);
  ASSERT_FALSE(flows.ok());
  EXPECT_EQ(contains_msg(flows.error().message, want), "");
}

TEST(PinRoot, NotOnBpffsIsRefusedBeforeAnythingIsCreated) {
  char tmpl[] = "/tmp/xdpguard-notbpf.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = std::string(tmpl) + "/pins";
  compile::CompiledPolicy p;
  auto dp = kernel::Datapath::load(p);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  // No such interface either: the bpffs check comes first, so even a wrong
  // order could not attach anything here.
  auto st = kernel::attach(*dp, "xdpgnone0", kernel::XdpMode::Generic, root);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(contains_msg(st.error().message, "is not on a bpf filesystem"), "");
  EXPECT_EQ(contains_msg(st.error().message, "mount -t bpf"), "");
  EXPECT_FALSE(fs::exists(root));
  fs::remove_all(tmpl);
}

}  // namespace
}  // namespace xdpguard
