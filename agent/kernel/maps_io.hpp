// Reading and writing xdpguard's maps by file descriptor, so the same code
// serves a freshly loaded Datapath and maps opened from pins.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/result.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::kernel {

// Per-CPU counters summed over every possible CPU.
// rule_counters: XDPG_MAX_RULES entries; reason_counters: XDPG_DROP_REASON_COUNT.
Result<std::vector<xdpg_rule_counters>> read_rule_counters(int map_fd);
Result<std::vector<xdpg_reason_counters>> read_reason_counters(int map_fd);
// Zero every CPU's slot of every entry.
Status clear_rule_counters(int map_fd);
Status clear_reason_counters(int map_fd);
// flow_counters: one entry, summed over CPUs.
Result<xdpg_flow_counters> read_flow_counters(int map_fd);
Status clear_flow_counters(int map_fd);

// Calls fn(key, value) for every flow of flows_v4 (`v4_fd`) and flows
// (`v6_fd`), IPv4 keys widened to xdpg_flow_key (family 4, first 4 address
// bytes). Keys deleted (evicted) during the walk are skipped; an LRU map may
// restart a walk, so a caller that cares remembers the keys it saw.
Status for_each_flow(int v4_fd, int v6_fd,
                     const std::function<void(const xdpg_flow_key&, const xdpg_flow_value&)>& fn);
xdpg_flow_key widen_flow_key(const xdpg_flow_v4_key&);

// Every entry of a hash map deleted. Deleting while iterating: always
// restart from the first key.
template <typename Key>
Status clear_hash(int fd, const char* name) {
  Key key{};
  while (bpf_map_get_next_key(fd, nullptr, &key) == 0)
    if (int err = bpf_map_delete_elem(fd, &key); err && err != -ENOENT)
      return errno_error(err, std::string("cannot clear ") + name);
  return {};
}

// What learning recorded (maps.h learn_*): every entry, overflow summed over CPUs.
struct LearnSnapshot {
  std::vector<std::pair<xdpg_learn_key, xdpg_learn_value>> peers;
  std::vector<std::pair<xdpg_learn_confirm_key, xdpg_learn_confirm_value>> confirmed;
  std::vector<uint64_t> overflow;  // XDPG_LEARN_OVERFLOW_ENTRIES
};
Result<LearnSnapshot> read_learn(int peers_fd, int confirmed_fd, int overflow_fd);
Status clear_learn(int peers_fd, int confirmed_fd, int overflow_fd);
// The peers and the overflow of one rule slot, for a slot a reload frees.
Status forget_learned_slot(int peers_fd, int overflow_fd, uint32_t slot);

// Keys now in a hash map (any key type) and its max_entries. Keys only, no
// values: a walk restarted by a deletion can count a key twice, so the count
// is clamped to the capacity (docs/telemetry.md, map pressure).
struct MapFill {
  uint64_t entries = 0;
  uint64_t capacity = 0;
};
Result<MapFill> map_fill(int map_fd, const char* name);
Result<uint32_t> map_capacity(int map_fd, const char* name);

Result<xdpg_info> read_info(int map_fd);
// Entries [0, count) of rule_meta.
Result<std::vector<xdpg_rule_meta>> read_rule_meta(int map_fd, uint32_t count);

// Refuses a map whose kernel-side shape is not what this build expects: a
// pinned map left by another xdpguard version is reported, not misread.
Status check_map_shape(int map_fd, const std::string& name, uint32_t key_size,
                       uint32_t value_size, uint32_t min_entries);

// A fixed-size NUL-terminated char array as a string, dropping a UTF-8
// sequence cut short by truncation.
std::string fixed_string(const char* data, size_t capacity);

}  // namespace xdpguard::kernel
