// Learning under a spoofed-source flood (issue 12, docs/learn.md): the
// default policy with learning on, XDPGUARD_LEARN_FLOOD (default 1,000,000)
// SYNs to 443 from as many distinct addresses through the real ingress
// program (BPF_PROG_TEST_RUN, one frame per run). The learn table holds
// exactly its stated size, everything past it is counted as overflow on the
// rule, nothing is confirmed, and the map's memory (the kernel's own figure,
// fdinfo "memlock") does not grow once the table is full. The same for
// confirmations: flows the host opens to more addresses than the table holds.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <variant>

#include "classify/packet_spec.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {

uint64_t flood_size() {
  const char* env = std::getenv("XDPGUARD_LEARN_FLOOD");
  return env ? std::strtoull(env, nullptr, 10) : 1'000'000;
}

// The kernel's account of a map's memory: fdinfo's memlock (since 6.4 the
// memory in use; before, an estimate from the map's size).
uint64_t map_memlock(int fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
  std::string key;
  uint64_t value = 0;
  while (in >> key) {
    if (key == "memlock:") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// The IPv4 header checksum of a frame whose source address was rewritten.
void set_ipv4_checksum(std::vector<uint8_t>& frame) {
  uint8_t* ip = frame.data() + 14;
  ip[10] = ip[11] = 0;
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
}

TEST(LearnFlood, DistinctSpoofedSourcesStayWithinTheTableAndAreCountedAsOverflow) {
  const uint64_t total = flood_size();
  const uint64_t table = XDPG_LEARN_ENTRIES;
  ASSERT_GT(total, table) << "XDPGUARD_LEARN_FLOOD must exceed the table (" << table << ")";
  ASSERT_LE(total, 1u << 22) << "sources are drawn from 100.64.0.0/10";

  kernel::DatapathOptions options;
  options.learn = true;
  auto dp = kernel::Datapath::load(testing::compiled_default_policy(), options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  const int peers_fd = dp->map_fd(kernel::MapId::LearnPeers);
  const uint64_t empty_bytes = map_memlock(peers_fd);

  auto spec = classify::parse_packet_spec("tcp 100.64.0.0:40000 -> 192.0.2.1:443 flags S");
  ASSERT_TRUE(std::holds_alternative<classify::PacketSpec>(spec));
  std::vector<uint8_t> frame = classify::build_frame(std::get<classify::PacketSpec>(spec));
  auto run_sources = [&](uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; ++i) {
      const uint32_t src = htonl(0x64400000u + static_cast<uint32_t>(i));  // 100.64.0.0 + i
      std::memcpy(frame.data() + 14 + 12, &src, 4);
      set_ipv4_checksum(frame);
      auto action = dp->test_run(frame);
      ASSERT_TRUE(action.ok()) << action.error().message;
      ASSERT_EQ(*action, XDP_PASS) << "source #" << i;
    }
  };

  run_sources(0, table);
  if (::testing::Test::HasFatalFailure()) return;
  const uint64_t full_bytes = map_memlock(peers_fd);
  run_sources(table, total);
  if (::testing::Test::HasFatalFailure()) return;
  const uint64_t flooded_bytes = map_memlock(peers_fd);

  auto learned = dp->learned();
  ASSERT_TRUE(learned.ok()) << learned.error().message;
  EXPECT_EQ(learned->peers.size(), table);
  EXPECT_TRUE(learned->confirmed.empty()) << "a SYN alone confirmed an address";
  uint64_t recorded_packets = 0;
  for (const auto& [k, v] : learned->peers) recorded_packets += v.packets;
  EXPECT_EQ(recorded_packets, table);  // one SYN each
  size_t slots_overflowing = 0;
  for (size_t slot = 0; slot < XDPG_MAX_RULES; ++slot) slots_overflowing += learned->overflow[slot] > 0;
  EXPECT_EQ(slots_overflowing, 1u);  // nbif-clients-https, where 443 is counted
  EXPECT_EQ(std::accumulate(learned->overflow.begin(), learned->overflow.begin() + XDPG_MAX_RULES,
                            uint64_t{0}),
            total - table);
  EXPECT_EQ(flooded_bytes, full_bytes) << "the learn map grew past its table";
  std::printf("[ learn flood ] %llu sources: %llu recorded, %llu overflow; learn_peers memlock "
              "empty %llu B, full %llu B (%.1f B per entry), after the flood %llu B\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(table),
              static_cast<unsigned long long>(total - table),
              static_cast<unsigned long long>(empty_bytes),
              static_cast<unsigned long long>(full_bytes),
              static_cast<double>(full_bytes - empty_bytes) / static_cast<double>(table),
              static_cast<unsigned long long>(flooded_bytes));

  // Confirmations have a table of the same size: flows the host opens to
  // more addresses than it holds (SYNs to LDAP 389) fill it, the rest are
  // counted at the overflow map's last index.
  const int confirmed_fd = dp->map_fd(kernel::MapId::LearnConfirmed);
  const uint64_t confirm_empty_bytes = map_memlock(confirmed_fd);
  const uint64_t opened = table + 1000;
  auto out = classify::parse_packet_spec("tcp 192.0.2.1:40000 -> 100.64.0.0:389 flags S");
  ASSERT_TRUE(std::holds_alternative<classify::PacketSpec>(out));
  std::vector<uint8_t> syn = classify::build_frame(std::get<classify::PacketSpec>(out));
  for (uint64_t i = 0; i < opened; ++i) {
    const uint32_t dst = htonl(0x64400000u + static_cast<uint32_t>(i));
    std::memcpy(syn.data() + 14 + 16, &dst, 4);
    set_ipv4_checksum(syn);
    auto action = dp->test_run_egress(syn);
    ASSERT_TRUE(action.ok()) << action.error().message;
    ASSERT_EQ(*action, 0 /* TC_ACT_OK */) << "destination #" << i;
  }
  auto after = dp->learned();
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->confirmed.size(), table);
  EXPECT_EQ(after->overflow[XDPG_MAX_RULES], opened - table);
  const uint64_t confirm_full_bytes = map_memlock(confirmed_fd);
  std::printf("[ learn flood ] %llu flows opened: %llu confirmed, %llu overflow; learn_confirmed "
              "memlock empty %llu B, full %llu B (%.1f B per entry)\n",
              static_cast<unsigned long long>(opened), static_cast<unsigned long long>(table),
              static_cast<unsigned long long>(opened - table),
              static_cast<unsigned long long>(confirm_empty_bytes),
              static_cast<unsigned long long>(confirm_full_bytes),
              static_cast<double>(confirm_full_bytes - confirm_empty_bytes) /
                  static_cast<double>(table));
}

}  // namespace
}  // namespace xdpguard
