#include "kernel/maps_io.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace xdpguard::kernel {
namespace {

// Per-CPU values are laid out one per possible CPU, each rounded up to 8 bytes.
template <typename T>
Result<std::vector<T>> read_percpu(int fd, uint32_t entries, const char* name) {
  static_assert(sizeof(T) % 8 == 0, "per-CPU value must not need padding");
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return errno_error(ncpus, "cannot count possible CPUs");
  std::vector<T> sums(entries);
  std::vector<T> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t key = 0; key < entries; ++key) {
    if (int err = bpf_map_lookup_elem(fd, &key, per_cpu.data()); err)
      return errno_error(err, std::string("cannot read ") + name + "[" + std::to_string(key) + "]");
    auto* out = reinterpret_cast<uint64_t*>(&sums[key]);
    for (const T& v : per_cpu) {
      auto* in = reinterpret_cast<const uint64_t*>(&v);
      for (size_t i = 0; i < sizeof(T) / 8; ++i) out[i] += in[i];
    }
  }
  return sums;
}

template <typename T>
Status clear_percpu(int fd, uint32_t entries, const char* name) {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return errno_error(ncpus, "cannot count possible CPUs");
  std::vector<T> zeros(static_cast<size_t>(ncpus));
  for (uint32_t key = 0; key < entries; ++key)
    if (int err = bpf_map_update_elem(fd, &key, zeros.data(), BPF_ANY); err)
      return errno_error(err, std::string("cannot clear ") + name);
  return {};
}

}  // namespace

Result<std::vector<xdpg_rule_counters>> read_rule_counters(int map_fd) {
  return read_percpu<xdpg_rule_counters>(map_fd, XDPG_MAX_RULES, "rule_counters");
}

Result<std::vector<xdpg_reason_counters>> read_reason_counters(int map_fd) {
  return read_percpu<xdpg_reason_counters>(map_fd, XDPG_DROP_REASON_COUNT, "reason_counters");
}

Status clear_rule_counters(int map_fd) {
  return clear_percpu<xdpg_rule_counters>(map_fd, XDPG_MAX_RULES, "rule_counters");
}

Status clear_reason_counters(int map_fd) {
  return clear_percpu<xdpg_reason_counters>(map_fd, XDPG_DROP_REASON_COUNT, "reason_counters");
}

Result<xdpg_flow_counters> read_flow_counters(int map_fd) {
  auto v = read_percpu<xdpg_flow_counters>(map_fd, 1, "flow_counters");
  if (!v) return v.error();
  return (*v)[0];
}

Status clear_flow_counters(int map_fd) {
  return clear_percpu<xdpg_flow_counters>(map_fd, 1, "flow_counters");
}

namespace {
// Every entry of a hash map; keys deleted during the walk are skipped.
template <typename Key, typename Value, typename Fn>
Status walk_hash(int fd, const char* name, Fn fn) {
  Key key{}, next{};
  const Key* prev = nullptr;
  while (true) {
    int err = bpf_map_get_next_key(fd, prev, &next);
    if (err == -ENOENT) return {};
    if (err) return errno_error(err, std::string("cannot walk ") + name);
    Value value{};
    if (bpf_map_lookup_elem(fd, &next, &value) == 0) fn(next, value);
    key = next;
    prev = &key;
  }
}

// One flow map's walk; `Key` is its key type, `widen` turns it into xdpg_flow_key.
template <typename Key, typename Widen>
Status walk_flows(int fd, Widen widen,
                  const std::function<void(const xdpg_flow_key&, const xdpg_flow_value&)>& fn) {
  return walk_hash<Key, xdpg_flow_value>(
      fd, "the flow table", [&](const Key& k, const xdpg_flow_value& v) { fn(widen(k), v); });
}
}  // namespace

Result<LearnSnapshot> read_learn(int peers_fd, int confirmed_fd, int overflow_fd) {
  LearnSnapshot out;
  if (auto st = walk_hash<xdpg_learn_key, xdpg_learn_value>(
          peers_fd, "learn_peers",
          [&](const auto& k, const auto& v) { out.peers.emplace_back(k, v); });
      !st)
    return st.error();
  if (auto st = walk_hash<xdpg_learn_confirm_key, xdpg_learn_confirm_value>(
          confirmed_fd, "learn_confirmed",
          [&](const auto& k, const auto& v) { out.confirmed.emplace_back(k, v); });
      !st)
    return st.error();
  auto overflow = read_percpu<uint64_t>(overflow_fd, XDPG_LEARN_OVERFLOW_ENTRIES, "learn_overflow");
  if (!overflow) return overflow.error();
  out.overflow = std::move(*overflow);
  return out;
}

Status forget_learned_slot(int peers_fd, int overflow_fd, uint32_t slot) {
  std::vector<xdpg_learn_key> doomed;
  if (auto st = walk_hash<xdpg_learn_key, xdpg_learn_value>(
          peers_fd, "learn_peers",
          [&](const auto& k, const auto&) {
            if (k.slot == slot) doomed.push_back(k);
          });
      !st)
    return st;
  for (const auto& k : doomed)
    if (int err = bpf_map_delete_elem(peers_fd, &k); err && err != -ENOENT)
      return errno_error(err, "cannot clear learn_peers");
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return errno_error(ncpus, "cannot count possible CPUs");
  std::vector<uint64_t> zeros(static_cast<size_t>(ncpus));
  if (int err = bpf_map_update_elem(overflow_fd, &slot, zeros.data(), BPF_ANY); err)
    return errno_error(err, "cannot clear learn_overflow");
  return {};
}

Status clear_learn(int peers_fd, int confirmed_fd, int overflow_fd) {
  if (auto st = clear_hash<xdpg_learn_key>(peers_fd, "learn_peers"); !st) return st;
  if (auto st = clear_hash<xdpg_learn_confirm_key>(confirmed_fd, "learn_confirmed"); !st)
    return st;
  return clear_percpu<uint64_t>(overflow_fd, XDPG_LEARN_OVERFLOW_ENTRIES, "learn_overflow");
}

xdpg_flow_key widen_flow_key(const xdpg_flow_v4_key& k) {
  xdpg_flow_key out{};
  out.family = 4;
  out.protocol = k.protocol;
  out.local_port = k.local_port;
  out.remote_port = k.remote_port;
  std::memcpy(out.local_addr, k.local_addr, 4);
  std::memcpy(out.remote_addr, k.remote_addr, 4);
  return out;
}

Status for_each_flow(int v4_fd, int v6_fd,
                     const std::function<void(const xdpg_flow_key&, const xdpg_flow_value&)>& fn) {
  if (auto st = walk_flows<xdpg_flow_v4_key>(v4_fd, widen_flow_key, fn); !st) return st;
  return walk_flows<xdpg_flow_key>(v6_fd, [](const xdpg_flow_key& k) { return k; }, fn);
}

Result<xdpg_info> read_info(int map_fd) {
  xdpg_info info{};
  uint32_t key = 0;
  if (int err = bpf_map_lookup_elem(map_fd, &key, &info); err)
    return errno_error(err, "cannot read info");
  return info;
}

Result<std::vector<xdpg_rule_meta>> read_rule_meta(int map_fd, uint32_t count) {
  if (count > XDPG_MAX_RULES)
    return plain_error("rule count " + std::to_string(count) + " exceeds " +
                       std::to_string(XDPG_MAX_RULES));
  std::vector<xdpg_rule_meta> meta(count);
  for (uint32_t key = 0; key < count; ++key)
    if (int err = bpf_map_lookup_elem(map_fd, &key, &meta[key]); err)
      return errno_error(err, "cannot read rule_meta[" + std::to_string(key) + "]");
  return meta;
}

Result<uint32_t> map_capacity(int map_fd, const char* name) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(map_fd, &info, &len); err)
    return errno_error(err, std::string("cannot inspect map ") + name);
  return info.max_entries;
}

Result<MapFill> map_fill(int map_fd, const char* name) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(map_fd, &info, &len); err)
    return errno_error(err, std::string("cannot inspect map ") + name);
  MapFill out{0, info.max_entries};
  std::vector<uint8_t> key(info.key_size), next(info.key_size);
  const void* prev = nullptr;
  // Bounded: under churn a walk can restart from the first key.
  for (uint64_t steps = 0; steps < 2 * out.capacity + 1; ++steps) {
    int err = bpf_map_get_next_key(map_fd, prev, next.data());
    if (err == -ENOENT) break;
    if (err) return errno_error(err, std::string("cannot walk ") + name);
    ++out.entries;
    key.swap(next);
    prev = key.data();
  }
  out.entries = std::min(out.entries, out.capacity);
  return out;
}

Status check_map_shape(int map_fd, const std::string& name, uint32_t key_size,
                       uint32_t value_size, uint32_t min_entries) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(map_fd, &info, &len); err)
    return errno_error(err, "cannot inspect map " + name);
  if (info.key_size != key_size || info.value_size != value_size ||
      info.max_entries < min_entries)
    return plain_error("map " + name + " has key/value size " + std::to_string(info.key_size) +
                       "/" + std::to_string(info.value_size) + " and " +
                       std::to_string(info.max_entries) + " entries, expected " +
                       std::to_string(key_size) + "/" + std::to_string(value_size) +
                       ": it was created by a different xdpguard layout");
  return {};
}

std::string fixed_string(const char* data, size_t capacity) {
  std::string s(data, strnlen(data, capacity));
  // Drop a trailing multi-byte UTF-8 sequence that truncation cut short.
  size_t i = s.size();
  size_t cont = 0;
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80 && cont < 3) {
    --i;
    ++cont;
  }
  if (i > 0) {
    auto lead = static_cast<unsigned char>(s[i - 1]);
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && cont < need) s.resize(i - 1);
  }
  return s;
}

}  // namespace xdpguard::kernel
