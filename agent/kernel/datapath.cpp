#include "kernel/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
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
    case MapId::Flows: return skel->maps.flows;
    case MapId::FlowsV4: return skel->maps.flows_v4;
    case MapId::FlowCounters: return skel->maps.flow_counters;
    case MapId::RuleFlags: return skel->maps.rule_flags;
    case MapId::EgressRuleCounters: return skel->maps.egress_rule_counters;
    case MapId::EgressReasonCounters: return skel->maps.egress_reason_counters;
    case MapId::Events: return skel->maps.events;
    case MapId::EventLimits: return skel->maps.event_limits;
    case MapId::TopPorts: return skel->maps.top_ports;
    case MapId::TopPeers: return skel->maps.top_peers;
    case MapId::LearnPeers: return skel->maps.learn_peers;
    case MapId::LearnConfirmed: return skel->maps.learn_confirmed;
    case MapId::LearnOverflow: return skel->maps.learn_overflow;
  }
  return nullptr;
}

// `count` entries in one BPF_MAP_UPDATE_BATCH where the kernel supports it
// for this map type (arrays and hashes since 5.6), else one update each.
template <typename Key, typename Value>
Status write_entries(int fd, const Key* keys, const Value* values, size_t count,
                     const char* name, bool per_element) {
  if (count == 0) return {};
  if (!per_element) {
    uint32_t n = static_cast<uint32_t>(count);
    bpf_map_batch_opts opts{};
    opts.sz = sizeof(opts);
    int err = bpf_map_update_batch(fd, keys, values, &n, &opts);
    if (err == 0) return {};
    spdlog::debug("{} batch update failed ({}), writing entries one by one", name,
                  std::strerror(-err));
  }
  for (size_t i = 0; i < count; ++i)
    if (int e = bpf_map_update_elem(fd, &keys[i], &values[i], BPF_ANY); e)
      return errno_error(e, std::string("cannot write ") + name + " entry " + std::to_string(i));
  return {};
}

Status fill_port_table(int fd, const compile::CompiledPolicy& policy, bool per_element) {
  const auto& entries = policy.port_entries;
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
  // The array starts zeroed: only the nonzero slots are written.
  return write_entries(fd, keys.data(), values.data(), keys.size(), "port_table",
                       per_element);
}

template <typename Key>
Status fill_peers(int fd, const compile::PeerTable<Key>& table, const char* name,
                  bool per_element) {
  std::vector<Key> keys;
  std::vector<uint64_t> values;
  keys.reserve(table.entries.size());
  values.reserve(table.entries.size());
  for (const auto& [key, mask] : table.entries) {
    keys.push_back(key);
    values.push_back(mask);
  }
  return write_entries(fd, keys.data(), values.data(), keys.size(), name, per_element);
}

// Peer hashes are preallocated: exactly one slot per prefix (a map needs
// at least one). The probes and /0's mask go to rodata.
template <typename Table, typename Probe, size_t N>
Status configure_peers(bpf_map* map, const Table& table, __u32& probe_count,
                       Probe (&probes)[N], __u64& default_mask,
                       Probe (*probe_for)(uint8_t)) {
  if (table.lengths.size() > N)
    return plain_error(std::string(bpf_map__name(map)) + ": more prefix lengths than exist");
  size_t slots = std::max<size_t>(table.entries.size(), 1);
  if (int err = bpf_map__set_max_entries(map, static_cast<uint32_t>(slots)); err)
    return errno_error(err, std::string("cannot resize map ") + bpf_map__name(map));
  probe_count = static_cast<uint32_t>(table.lengths.size());
  for (size_t i = 0; i < table.lengths.size(); ++i) probes[i] = probe_for(table.lengths[i]);
  default_mask = table.default_mask;
  return {};
}

Status check_options(const DatapathOptions& o) {
  if (o.egress_mode > XDPG_EGRESS_ENFORCE)
    return plain_error("invalid egress mode " + std::to_string(o.egress_mode));
  if (o.flow_table_size == 0) return plain_error("the flow table needs at least one entry");
  if (o.learn_table_size == 0) return plain_error("the learn tables need at least one entry");
  return {};
}

// The slots as the rodata wants them: identity when none are given.
Result<std::array<uint8_t, XDPG_MAX_RULES>> slot_table(const DatapathOptions& o, size_t rules) {
  std::array<uint8_t, XDPG_MAX_RULES> slots{};
  for (uint32_t i = 0; i < XDPG_MAX_RULES; ++i) slots[i] = static_cast<uint8_t>(i);
  if (o.rule_slots.empty()) return slots;
  if (o.rule_slots.size() != rules)
    return plain_error("rule_slots has " + std::to_string(o.rule_slots.size()) +
                       " entries for " + std::to_string(rules) + " rules");
  std::array<bool, XDPG_MAX_RULES> used{};
  for (size_t i = 0; i < rules; ++i) {
    uint8_t s = o.rule_slots[i];
    if (s >= XDPG_MAX_RULES || used[s])
      return plain_error("rule_slots: slot " + std::to_string(s) + " out of range or repeated");
    used[s] = true;
    slots[i] = s;
  }
  // Indices past the last rule never occur in a decision; keep them distinct anyway.
  for (size_t i = rules, next = 0; i < XDPG_MAX_RULES; ++i) {
    while (used[next]) ++next;
    used[next] = true;
    slots[i] = static_cast<uint8_t>(next);
  }
  return slots;
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
    case MapId::Flows: return "flows";
    case MapId::FlowsV4: return "flows_v4";
    case MapId::FlowCounters: return "flow_counters";
    case MapId::RuleFlags: return "rule_flags";
    case MapId::EgressRuleCounters: return "egress_rule_counters";
    case MapId::EgressReasonCounters: return "egress_reason_counters";
    case MapId::Events: return "events";
    case MapId::EventLimits: return "event_limits";
    case MapId::TopPorts: return "top_ports";
    case MapId::TopPeers: return "top_peers";
    case MapId::LearnPeers: return "learn_peers";
    case MapId::LearnConfirmed: return "learn_confirmed";
    case MapId::LearnOverflow: return "learn_overflow";
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

VerifierStats parse_verifier_stats(std::string_view log) {
  VerifierStats st;
  // "processed 30156 insns (limit 1000000) max_states_per_insn 21
  //  total_states 1494 peak_states 543 mark_read 22", "verification time 2143 usec"
  auto number_after = [&](std::string_view key) -> uint64_t {
    size_t at = log.find(key);
    if (at == std::string_view::npos) return 0;
    return std::strtoull(std::string(log.substr(at + key.size(), 20)).c_str(), nullptr, 10);
  };
  st.insns_processed = static_cast<uint32_t>(number_after("processed "));
  st.insns_limit = static_cast<uint32_t>(number_after("insns (limit "));
  st.peak_states = static_cast<uint32_t>(number_after("peak_states "));
  st.verification_us = number_after("verification time ");
  return st;
}

Result<Datapath> Datapath::load(const compile::CompiledPolicy& policy,
                                const DatapathOptions& options) {
  route_libbpf_to_spdlog();
  if (auto st = probe_bpf_features(); !st) return st.error();
  if (policy.rule_meta.size() > XDPG_MAX_RULES)
    return plain_error("policy has " + std::to_string(policy.rule_meta.size()) +
                       " rules; the datapath holds at most " + std::to_string(XDPG_MAX_RULES));

  std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel(gen::xdpguard__open());
  if (!skel) return errno_error(errno, "cannot open the xdpguard BPF object");
  if (auto st = check_options(options); !st) return st.error();
  skel->rodata->frag_timeout_ns = options.frag_timeout_ns;
  skel->rodata->egress_mode = options.egress_mode;
  skel->rodata->tcp_established_timeout_ns = options.tcp_established_timeout_ns;
  skel->rodata->tcp_closing_timeout_ns = options.tcp_closing_timeout_ns;
  skel->rodata->udp_timeout_ns = options.udp_timeout_ns;
  skel->rodata->audit_mode = options.audit ? 1 : 0;
  skel->rodata->clock_kind =
      options.precise_clock ? uint8_t{XDPG_CLOCK_PRECISE} : probe_datapath_clock();
  // Frags-aware where the kernel has it: native XDP at MTU 9000.
  skel->rodata->xdp_frags = !options.single_buffer && probe_xdp_frags();
  if (bpf_program* xdp = skel->progs.xdpguard_ingress; skel->rodata->xdp_frags)
    if (int err = bpf_program__set_flags(xdp, bpf_program__flags(xdp) | BPF_F_XDP_HAS_FRAGS); err)
      return errno_error(err, "cannot load the XDP program multi-buffer aware");
  if (options.event_rate) {
    uint64_t interval = 1'000'000'000ULL / options.event_rate;
    skel->rodata->event_interval_ns = interval;
    skel->rodata->event_tolerance_ns = interval * (options.event_burst ? options.event_burst - 1 : 0);
  } else {
    skel->rodata->event_interval_ns = 0;
  }
  auto slots = slot_table(options, policy.rule_meta.size());
  if (!slots) return slots.error();
  for (uint32_t i = 0; i < XDPG_MAX_RULES; ++i) skel->rodata->rule_slot[i] = (*slots)[i];
  for (bpf_map* flows : {skel->maps.flows, skel->maps.flows_v4})
    if (int err = bpf_map__set_max_entries(flows, options.flow_table_size); err)
      return errno_error(err, "cannot size the flow table");
  skel->rodata->learn_enabled = options.learn ? 1 : 0;
  for (uint32_t i = 0; i < policy.rule_meta.size(); ++i)
    if (policy.learn_rules >> i & 1) skel->rodata->learn_slots |= 1ULL << (*slots)[i];
  for (bpf_map* learn : {skel->maps.learn_peers, skel->maps.learn_confirmed})
    if (int err = bpf_map__set_max_entries(learn, options.learn_table_size); err)
      return errno_error(err, "cannot size the learn tables");
  auto* rodata = skel->rodata;
  if (auto st = configure_peers(skel->maps.peers_v4, policy.peers_v4, rodata->peer_v4_probe_count,
                                rodata->peer_v4_probes, rodata->peer_v4_default,
                                compile::peer_probe_v4);
      !st)
    return st.error();
  if (auto st = configure_peers(skel->maps.peers_v6, policy.peers_v6, rodata->peer_v6_probe_count,
                                rodata->peer_v6_probes, rodata->peer_v6_default,
                                compile::peer_probe_v6);
      !st)
    return st.error();
  // After sizing: reuse_fd takes the shape (max_entries included) of the
  // existing map.
  for (const auto& [id, fd] : options.reuse_maps)
    if (int err = bpf_map__reuse_fd(skeleton_map(skel.get(), id), fd); err)
      return errno_error(err, std::string("cannot reuse map ") + map_name(id));
  // Stats only (level 4): a few lines, and no cost of a full trace.
  std::array<std::vector<char>, 2> stats_logs;
  bpf_program* const programs[] = {skel->progs.xdpguard_ingress, skel->progs.xdpguard_egress};
  if (options.verifier_stats)
    for (size_t i = 0; i < stats_logs.size(); ++i) {
      stats_logs[i].assign(4096, '\0');
      bpf_program__set_log_buf(programs[i], stats_logs[i].data(), stats_logs[i].size());
      bpf_program__set_log_level(programs[i], 4);
    }
  // Map creation fails here too (a flow table or peer set too big for the
  // kernel's limits or memory): name the sizes the policy chose.
  if (int err = gen::xdpguard__load(skel.get()); err)
    return errno_error(err, "the kernel refused the xdpguard object: a map could not be "
                            "created (flow tables " + std::to_string(options.flow_table_size) +
                            " entries each, " + std::to_string(policy.peers_v4.entries.size() +
                                                          policy.peers_v6.entries.size()) +
                            " peer prefixes) or the verifier rejected a program; libbpf's "
                            "message above says which (-v for details)");

  if (options.verifier_stats)
    for (size_t i = 0; i < stats_logs.size(); ++i) {
      VerifierStats st = parse_verifier_stats(stats_logs[i].data());
      st.program = bpf_program__name(programs[i]);
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(bpf_program__fd(programs[i]), &info, &len) == 0)
        st.xlated_insns = info.xlated_prog_len / 8;
      options.verifier_stats->push_back(st);
    }

  Datapath dp(std::move(skel));
  if (auto st = fill_port_table(dp.map_fd(MapId::PortTable), policy, options.per_element_fill); !st) return st.error();
  if (auto st = fill_peers(dp.map_fd(MapId::PeersV4), policy.peers_v4, "peers_v4",
                             options.per_element_fill); !st)
    return st.error();
  if (auto st = fill_peers(dp.map_fd(MapId::PeersV6), policy.peers_v6, "peers_v6",
                             options.per_element_fill); !st)
    return st.error();
  for (uint32_t i = 0; i < policy.rule_meta.size(); ++i) {
    uint32_t slot = (*slots)[i];
    if (int err = bpf_map_update_elem(dp.map_fd(MapId::RuleMeta), &slot, &policy.rule_meta[i],
                                      BPF_ANY);
        err)
      return errno_error(err, "cannot write rule_meta[" + std::to_string(slot) + "]");
  }
  for (uint32_t f = 0; f < XDPG_RULE_FLAG_COUNT; ++f)
    if (int err = bpf_map_update_elem(dp.map_fd(MapId::RuleFlags), &f, &policy.rule_flags[f],
                                      BPF_ANY);
        err)
      return errno_error(err, "cannot write rule_flags[" + std::to_string(f) + "]");
  xdpg_info info = policy.info;
  info.layout_version = XDPG_LAYOUT_VERSION;
  info.rule_count = static_cast<uint32_t>(policy.rule_meta.size());
  info.egress_mode = options.egress_mode;
  info.flow_table_size = bpf_map__max_entries(dp.map(MapId::Flows));
  info.tcp_established_timeout_ns = options.tcp_established_timeout_ns;
  info.tcp_closing_timeout_ns = options.tcp_closing_timeout_ns;
  info.udp_timeout_ns = options.udp_timeout_ns;
  info.frag_timeout_ns = options.frag_timeout_ns;
  info.audit_mode = options.audit ? 1 : 0;
  info.clock = dp.clock();
  info.xdp_frags = dp.xdp_frags() ? 1 : 0;
  info.learn = options.learn ? 1 : 0;
  info.learn_table_size = bpf_map__max_entries(dp.map(MapId::LearnPeers));
  std::copy(slots->begin(), slots->end(), info.rule_slot);
  uint32_t zero = 0;
  if (int err = bpf_map_update_elem(dp.map_fd(MapId::Info), &zero, &info, BPF_ANY); err)
    return errno_error(err, "cannot write info");
  spdlog::debug("datapath loaded: {} rules, {} port slots, {} IPv4 and {} IPv6 prefixes "
                "({} and {} prefix lengths probed), {} clock, XDP multi-buffer {}",
                info.rule_count, policy.port_entries.size(), policy.peers_v4.entries.size(),
                policy.peers_v6.entries.size(), policy.peers_v4.lengths.size(),
                policy.peers_v6.lengths.size(), clock_name(info.clock),
                dp.xdp_frags() ? "yes" : "no");
  return dp;
}

int Datapath::prog_fd() const { return bpf_program__fd(skel_->progs.xdpguard_ingress); }
int Datapath::egress_prog_fd() const { return bpf_program__fd(skel_->progs.xdpguard_egress); }
uint8_t Datapath::clock() const { return skel_->rodata->clock_kind; }
bool Datapath::xdp_frags() const { return skel_->rodata->xdp_frags != 0; }
int Datapath::map_fd(MapId id) const { return bpf_map__fd(map(id)); }
bpf_program* Datapath::program() const { return skel_->progs.xdpguard_ingress; }
bpf_program* Datapath::egress_program() const { return skel_->progs.xdpguard_egress; }
bpf_map* Datapath::map(MapId id) const { return skeleton_map(skel_.get(), id); }

namespace {
Result<int> run_once(int prog_fd, std::span<const uint8_t> frame, const char* what) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.repeat = 1;
  if (int err = bpf_prog_test_run_opts(prog_fd, &opts); err)
    return errno_error(err, std::string("BPF_PROG_TEST_RUN of ") + what + " failed on a " +
                                std::to_string(frame.size()) + "-byte frame");
  return static_cast<int>(opts.retval);
}
}  // namespace

Result<int> Datapath::test_run(std::span<const uint8_t> frame) const {
  return run_once(prog_fd(), frame, "the ingress program");
}

// The kernel builds an skb from the frame (eth_type_trans sets protocol), as
// for a packet leaving through an Ethernet device.
Result<int> Datapath::test_run_egress(std::span<const uint8_t> frame) const {
  return run_once(egress_prog_fd(), frame, "the egress program");
}

Result<std::vector<xdpg_rule_counters>> Datapath::rule_counters() const {
  return read_rule_counters(map_fd(MapId::RuleCounters));
}

Result<std::vector<xdpg_reason_counters>> Datapath::reason_counters() const {
  return read_reason_counters(map_fd(MapId::ReasonCounters));
}

Result<std::vector<xdpg_rule_counters>> Datapath::egress_rule_counters() const {
  return read_rule_counters(map_fd(MapId::EgressRuleCounters));
}

Result<std::vector<xdpg_reason_counters>> Datapath::egress_reason_counters() const {
  return read_reason_counters(map_fd(MapId::EgressReasonCounters));
}

Status Datapath::reset_state() const {
  for (MapId id : {MapId::RuleCounters, MapId::EgressRuleCounters})
    if (auto st = clear_rule_counters(map_fd(id)); !st) return st;
  for (MapId id : {MapId::ReasonCounters, MapId::EgressReasonCounters})
    if (auto st = clear_reason_counters(map_fd(id)); !st) return st;
  if (auto st = clear_flow_counters(map_fd(MapId::FlowCounters)); !st) return st;
  if (auto st = clear_hash<xdpg_frag_key>(map_fd(MapId::Frags), "frags"); !st) return st;
  if (auto st = clear_hash<xdpg_flow_v4_key>(map_fd(MapId::FlowsV4), "flows_v4"); !st) return st;
  if (auto st = clear_learn(map_fd(MapId::LearnPeers), map_fd(MapId::LearnConfirmed),
                            map_fd(MapId::LearnOverflow));
      !st)
    return st;
  return clear_hash<xdpg_flow_key>(map_fd(MapId::Flows), "flows");
}

Result<LearnSnapshot> Datapath::learned() const {
  return read_learn(map_fd(MapId::LearnPeers), map_fd(MapId::LearnConfirmed),
                    map_fd(MapId::LearnOverflow));
}

}  // namespace xdpguard::kernel
