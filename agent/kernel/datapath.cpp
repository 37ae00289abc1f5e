#include "kernel/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernel/libbpf_log.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/probe.hpp"
#include "kernel/skeleton.hpp"

namespace xdpguard::kernel {
namespace {

bpf_map* skeleton_map(const gen::xdpguard* skel, MapId id) {
  switch (id) {
    case MapId::PortTable: return skel->maps.port_table;
    case MapId::PeersV4: return skel->maps.peers_v4;
    case MapId::PeersV6: return skel->maps.peers_v6;
    case MapId::RuleCounters: return skel->maps.rule_counters;
    case MapId::ReasonCounters: return skel->maps.reason_counters;
    case MapId::Frags: return skel->maps.frags;
    case MapId::RuleMeta: return skel->maps.rule_meta;
    case MapId::Info: return skel->maps.info;
  }
  return nullptr;
}

// Grow an LPM map to hold `needed` prefixes; never shrink below the object's size.
Status fit_max_entries(bpf_map* map, size_t needed) {
  if (needed <= bpf_map__max_entries(map)) return {};
  if (int err = bpf_map__set_max_entries(map, static_cast<uint32_t>(needed)); err)
    return errno_error(err, std::string("cannot resize map ") + bpf_map__name(map));
  return {};
}

Status fill_port_table(int fd, const compile::CompiledPolicy& policy) {
  const auto& entries = policy.port_entries;
  if (entries.empty()) return {};
  std::vector<uint32_t> keys;
  std::vector<uint64_t> values;
  keys.reserve(entries.size());
  values.reserve(entries.size());
  for (const auto& [k, v] : entries) {
    if (k >= XDPG_PORT_TABLE_ENTRIES)
      return plain_error("port_table index " + std::to_string(k) + " out of range");
    keys.push_back(k);
    values.push_back(v);
  }
  // The array starts zeroed: only the nonzero slots are written, in one batch
  // where the kernel supports it.
  uint32_t count = static_cast<uint32_t>(keys.size());
  bpf_map_batch_opts opts{};
  opts.sz = sizeof(opts);
  int err = bpf_map_update_batch(fd, keys.data(), values.data(), &count, &opts);
  if (err == 0) return {};
  spdlog::debug("port_table batch update failed ({}), writing entries one by one",
                std::strerror(-err));
  for (size_t i = 0; i < keys.size(); ++i)
    if (int e = bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY); e)
      return errno_error(e, "cannot write port_table[" + std::to_string(keys[i]) + "]");
  return {};
}

template <typename Key>
Status fill_lpm(int fd, const std::vector<std::pair<Key, uint64_t>>& entries, const char* name) {
  for (const auto& [key, mask] : entries)
    if (int err = bpf_map_update_elem(fd, &key, &mask, BPF_ANY); err)
      return errno_error(err, std::string("cannot write ") + name + " prefix /" +
                                  std::to_string(key.prefixlen));
  return {};
}

}  // namespace

const char* map_name(MapId id) {
  switch (id) {
    case MapId::PortTable: return "port_table";
    case MapId::PeersV4: return "peers_v4";
    case MapId::PeersV6: return "peers_v6";
    case MapId::RuleCounters: return "rule_counters";
    case MapId::ReasonCounters: return "reason_counters";
    case MapId::Frags: return "frags";
    case MapId::RuleMeta: return "rule_meta";
    case MapId::Info: return "info";
  }
  return "?";
}

void Datapath::SkeletonDeleter::operator()(gen::xdpguard* skel) const {
  gen::xdpguard__destroy(skel);
}

Datapath::Datapath(std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel)
    : skel_(std::move(skel)) {}
Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;
Datapath::~Datapath() = default;

Result<Datapath> Datapath::load(const compile::CompiledPolicy& policy,
                                const DatapathOptions& options) {
  route_libbpf_to_spdlog();
  if (auto st = probe_bpf_features(); !st) return st.error();
  if (policy.rule_meta.size() > XDPG_MAX_RULES)
    return plain_error("policy has " + std::to_string(policy.rule_meta.size()) +
                       " rules; the datapath holds at most " + std::to_string(XDPG_MAX_RULES));

  std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel(gen::xdpguard__open());
  if (!skel) return errno_error(errno, "cannot open the xdpguard BPF object");
  skel->rodata->frag_timeout_ns = options.frag_timeout_ns;
  skel->rodata->egress_mode = options.egress_mode;
  if (auto st = fit_max_entries(skel->maps.peers_v4, policy.peers_v4.size()); !st)
    return st.error();
  if (auto st = fit_max_entries(skel->maps.peers_v6, policy.peers_v6.size()); !st)
    return st.error();
  if (int err = gen::xdpguard__load(skel.get()); err)
    return errno_error(err, "the kernel refused the xdpguard program (verifier log above; "
                            "-v for libbpf details)");

  Datapath dp(std::move(skel));
  if (auto st = fill_port_table(dp.map_fd(MapId::PortTable), policy); !st) return st.error();
  if (auto st = fill_lpm(dp.map_fd(MapId::PeersV4), policy.peers_v4, "peers_v4"); !st)
    return st.error();
  if (auto st = fill_lpm(dp.map_fd(MapId::PeersV6), policy.peers_v6, "peers_v6"); !st)
    return st.error();
  for (uint32_t i = 0; i < policy.rule_meta.size(); ++i)
    if (int err = bpf_map_update_elem(dp.map_fd(MapId::RuleMeta), &i, &policy.rule_meta[i],
                                      BPF_ANY);
        err)
      return errno_error(err, "cannot write rule_meta[" + std::to_string(i) + "]");
  xdpg_info info = policy.info;
  info.layout_version = XDPG_LAYOUT_VERSION;
  info.rule_count = static_cast<uint32_t>(policy.rule_meta.size());
  uint32_t zero = 0;
  if (int err = bpf_map_update_elem(dp.map_fd(MapId::Info), &zero, &info, BPF_ANY); err)
    return errno_error(err, "cannot write info");
  spdlog::debug("datapath loaded: {} rules, {} port slots, {} IPv4 and {} IPv6 prefixes",
                info.rule_count, policy.port_entries.size(), policy.peers_v4.size(),
                policy.peers_v6.size());
  return dp;
}

int Datapath::prog_fd() const { return bpf_program__fd(skel_->progs.xdpguard_ingress); }
int Datapath::map_fd(MapId id) const { return bpf_map__fd(map(id)); }
bpf_program* Datapath::program() const { return skel_->progs.xdpguard_ingress; }
bpf_map* Datapath::map(MapId id) const { return skeleton_map(skel_.get(), id); }

Result<int> Datapath::test_run(std::span<const uint8_t> frame) const {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.repeat = 1;
  if (int err = bpf_prog_test_run_opts(prog_fd(), &opts); err)
    return errno_error(err, "BPF_PROG_TEST_RUN failed on a " + std::to_string(frame.size()) +
                                "-byte frame");
  return static_cast<int>(opts.retval);
}

Result<std::vector<xdpg_rule_counters>> Datapath::rule_counters() const {
  return read_rule_counters(map_fd(MapId::RuleCounters));
}

Result<std::vector<xdpg_reason_counters>> Datapath::reason_counters() const {
  return read_reason_counters(map_fd(MapId::ReasonCounters));
}

Status Datapath::reset_state() const {
  if (auto st = clear_rule_counters(map_fd(MapId::RuleCounters)); !st) return st;
  if (auto st = clear_reason_counters(map_fd(MapId::ReasonCounters)); !st) return st;
  // Deleting while iterating: always restart from the first key.
  int fd = map_fd(MapId::Frags);
  xdpg_frag_key key{};
  while (bpf_map_get_next_key(fd, nullptr, &key) == 0)
    if (int err = bpf_map_delete_elem(fd, &key); err)
      return errno_error(err, "cannot clear frags");
  return {};
}

}  // namespace xdpguard::kernel
