#include "kernel/pin_readers.hpp"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "kernel/maps_io.hpp"
#include "kernel/netdev.hpp"
#include "kernel/probe.hpp"

namespace xdpguard::kernel {
namespace fs = std::filesystem;
using namespace detail;

namespace {

// The pin directory of `iface` with its info map read and checked, and the
// maps a reader asked for opened and checked against this build's layout.
struct OpenPins {
  std::string dir;
  xdpg_info info{};
  std::vector<Fd> fds;  // in the order asked
};

Result<OpenPins> open_pins(const std::string& iface, const std::string& pin_root,
                           std::initializer_list<MapId> ids) {
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  std::error_code ec;
  if (!fs::exists(*dir, ec))
    return plain_error("xdpguard is not attached to " + iface + " (no pins in " + *dir + ")");
  OpenPins out;
  out.dir = *dir;
  const std::string layout_hint = "; detach and attach again with this xdpguard";

  Fd info_fd = open_pinned_map(*dir, MapId::Info);
  if (!info_fd.valid())
    return errno_error(errno, "cannot open pinned map " + *dir + "/" + map_name(MapId::Info));
  // Check the info map before trusting its layout_version field.
  if (auto st = check_map_shape(info_fd.get(), "info", sizeof(uint32_t), sizeof(xdpg_info), 1);
      !st)
    return plain_error("pins in " + *dir + " are not this xdpguard's layout (" +
                       st.error().message + ")" + layout_hint);
  auto info = read_info(info_fd.get());
  if (!info) return info.error();
  if (info->layout_version != XDPG_LAYOUT_VERSION)
    return plain_error("pins in " + *dir + " use map layout version " +
                       std::to_string(info->layout_version) + ", this xdpguard reads version " +
                       std::to_string(XDPG_LAYOUT_VERSION) + layout_hint);
  out.info = *info;

  for (MapId id : ids) {
    Fd fd = open_pinned_map(*dir, id);
    if (!fd.valid())
      return errno_error(errno, "cannot open pinned map " + *dir + "/" + map_name(id));
    uint32_t key = sizeof(uint32_t), value = 0, entries = 1;
    switch (id) {
      case MapId::RuleMeta: value = sizeof(xdpg_rule_meta), entries = XDPG_MAX_RULES; break;
      case MapId::RuleCounters:
      case MapId::EgressRuleCounters:
        value = sizeof(xdpg_rule_counters), entries = XDPG_MAX_RULES;
        break;
      case MapId::ReasonCounters:
      case MapId::EgressReasonCounters:
        value = sizeof(xdpg_reason_counters), entries = XDPG_DROP_REASON_COUNT;
        break;
      case MapId::FlowCounters: value = sizeof(xdpg_flow_counters); break;
      case MapId::Flows: key = sizeof(xdpg_flow_key), value = sizeof(xdpg_flow_value); break;
      case MapId::FlowsV4: key = sizeof(xdpg_flow_v4_key), value = sizeof(xdpg_flow_value); break;
      case MapId::LearnPeers: key = sizeof(xdpg_learn_key), value = sizeof(xdpg_learn_value); break;
      case MapId::LearnConfirmed:
        key = sizeof(xdpg_learn_confirm_key), value = sizeof(xdpg_learn_confirm_value);
        break;
      case MapId::LearnOverflow: value = sizeof(uint64_t), entries = XDPG_LEARN_OVERFLOW_ENTRIES; break;
      case MapId::Frags: key = sizeof(xdpg_frag_key), value = sizeof(xdpg_frag_value); break;
      case MapId::PeersV4: key = sizeof(xdpg_peer_v4_key), value = sizeof(uint64_t); break;
      case MapId::PeersV6: key = sizeof(xdpg_peer_v6_key), value = sizeof(uint64_t); break;
      default: return plain_error(std::string("no shape check for map ") + map_name(id));
    }
    if (auto st = check_map_shape(fd.get(), map_name(id), key, value, entries); !st)
      return plain_error(st.error().message + layout_hint);
    out.fds.push_back(std::move(fd));
  }
  return out;
}

DatapathSettings settings_of(const xdpg_info& info) {
  return DatapathSettings{info.egress_mode,    info.tcp_established_timeout_ns,
                          info.tcp_closing_timeout_ns, info.udp_timeout_ns,
                          info.frag_timeout_ns, info.clock, info.xdp_frags != 0};
}

// max_entries of flows_v4 and flows together.
Result<uint64_t> flow_capacity(int v4_fd, int v6_fd) {
  uint64_t sum = 0;
  for (int fd : {v4_fd, v6_fd}) {
    auto cap = map_capacity(fd, "the flow maps");
    if (!cap) return cap.error();
    sum += *cap;
  }
  return sum;
}

// Rules in policy order; rule i's meta and counters live at its slot.
std::vector<RuleStats> rule_stats(const xdpg_info& info, const std::vector<xdpg_rule_meta>& meta,
                                  const std::vector<xdpg_rule_counters>& counts) {
  std::vector<RuleStats> out;
  for (uint32_t i = 0; i < info.rule_count && i < XDPG_MAX_RULES; ++i) {
    uint32_t slot = info.rule_slot[i] % XDPG_MAX_RULES;
    out.push_back(RuleStats{i, fixed_string(meta[slot].id, sizeof(meta[slot].id)),
                            fixed_string(meta[slot].row, sizeof(meta[slot].row)), counts[slot]});
  }
  return out;
}

}  // namespace

std::vector<ReasonStats> reason_stats(const std::vector<xdpg_reason_counters>& counts) {
  std::vector<ReasonStats> out;
  for (int r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    out.push_back(ReasonStats{static_cast<DropReason>(r), counts[r]});
  return out;
}

const char* egress_mode_name(uint8_t mode) {
  switch (mode) {
    case XDPG_EGRESS_OFF: return "off";
    case XDPG_EGRESS_TRACK: return "track";
    case XDPG_EGRESS_ENFORCE: return "enforce";
  }
  return "?";
}

uint64_t flow_timeout_ns(const xdpg_flow_key& key, const xdpg_flow_value& value,
                         const DatapathSettings& s) {
  if (key.protocol != IPPROTO_TCP) return s.udp_timeout_ns;
  return value.tcp_state != 0 ? s.tcp_closing_timeout_ns : s.tcp_established_timeout_ns;
}

bool flow_live(const xdpg_flow_key& key, const xdpg_flow_value& value, const DatapathSettings& s,
               uint64_t now_ns) {
  if (now_ns < value.last_seen_ns) return true;  // refreshed on another CPU after `now`
  return now_ns - value.last_seen_ns < flow_timeout_ns(key, value, s);
}

std::string policy_hash_text(uint64_t hash) { return fmt::format("{:016x}", hash); }

Result<PinnedStats> read_stats(const std::string& iface, const std::string& pin_root) {
  auto pins = open_pins(iface, pin_root,
                        {MapId::RuleMeta, MapId::RuleCounters, MapId::ReasonCounters,
                         MapId::EgressRuleCounters, MapId::EgressReasonCounters, MapId::Flows,
                         MapId::FlowCounters, MapId::FlowsV4, MapId::Frags, MapId::PeersV4,
                         MapId::PeersV6, MapId::LearnPeers, MapId::LearnConfirmed});
  if (!pins) return pins.error();
  const auto& fds = pins->fds;
  const xdpg_info& info = pins->info;

  auto meta = read_rule_meta(fds[0].get(), XDPG_MAX_RULES);
  if (!meta) return meta.error();
  auto rule_counts = read_rule_counters(fds[1].get());
  if (!rule_counts) return rule_counts.error();
  auto reason_counts = read_reason_counters(fds[2].get());
  if (!reason_counts) return reason_counts.error();
  auto egress_rule_counts = read_rule_counters(fds[3].get());
  if (!egress_rule_counts) return egress_rule_counts.error();
  auto egress_reason_counts = read_reason_counters(fds[4].get());
  if (!egress_reason_counts) return egress_reason_counts.error();
  auto flow_counts = read_flow_counters(fds[6].get());
  if (!flow_counts) return flow_counts.error();
  auto capacity = flow_capacity(fds[7].get(), fds[5].get());
  if (!capacity) return capacity.error();
  uint64_t entries = 0, entries_v4 = 0;
  if (auto st = for_each_flow(fds[7].get(), fds[5].get(),
                              [&](const xdpg_flow_key& k, const auto&) {
                                ++entries;
                                entries_v4 += k.family == 4;
                              });
      !st)
    return st.error();
  std::vector<MapPressure> maps;
  for (auto [id, fd] : {std::pair{MapId::FlowsV4, 7}, std::pair{MapId::Flows, 5}}) {
    auto cap = map_capacity(fds[fd].get(), map_name(id));
    if (!cap) return cap.error();
    uint64_t n = id == MapId::FlowsV4 ? entries_v4 : entries - entries_v4;
    maps.push_back({map_name(id), std::min<uint64_t>(n, *cap), *cap});
  }
  for (auto [id, fd] : {std::pair{MapId::Frags, 8}, std::pair{MapId::PeersV4, 9},
                        std::pair{MapId::PeersV6, 10}, std::pair{MapId::LearnPeers, 11},
                        std::pair{MapId::LearnConfirmed, 12}}) {
    auto fill = map_fill(fds[fd].get(), map_name(id));
    if (!fill) return fill.error();
    maps.push_back({map_name(id), fill->entries, fill->capacity});
  }

  PinnedStats out;
  out.iface = iface;
  out.pin_dir = pins->dir;
  out.policy_name = fixed_string(info.policy_name, sizeof(info.policy_name));
  out.profile = fixed_string(info.profile, sizeof(info.profile));
  out.policy_hash = info.policy_hash;
  out.settings = settings_of(info);
  out.audit = info.audit_mode != 0;
  out.rules = rule_stats(info, *meta, *rule_counts);
  out.reasons = reason_stats(*reason_counts);
  out.egress_rules = rule_stats(info, *meta, *egress_rule_counts);
  out.egress_reasons = reason_stats(*egress_reason_counts);
  out.flow_table.entries = entries;
  out.flow_table.capacity = *capacity;
  out.flow_table.inserts = flow_counts->inserts;
  // A flow inserted while we counted can make entries exceed inserts read earlier.
  out.flow_table.evictions = flow_counts->inserts > entries ? flow_counts->inserts - entries : 0;
  out.maps = std::move(maps);

  // Whether the pinned programs are still the ones on the interface.
  if (auto ifindex = ifindex_of(iface)) {
    Fd prog = open_pinned_prog(pins->dir);
    auto state = query_xdp(*ifindex, iface);
    if (prog.valid() && state) {
      if (auto id = prog_id_of(prog.get())) {
        if (state->drv == *id) out.attached_mode = XdpMode::Native;
        if (state->skb == *id) out.attached_mode = XdpMode::Generic;
      }
    }
    Fd egress = open_pinned_prog(pins->dir, kEgressProgramName);
    auto tc = query_tc(*ifindex, iface);
    if (egress.valid() && tc && *tc != 0)
      if (auto id = prog_id_of(egress.get())) out.egress_attached = *id == *tc;
  }
  return out;
}

Result<FlowTable> read_flows(const std::string& iface, const std::string& pin_root) {
  auto pins = open_pins(iface, pin_root, {MapId::RuleMeta, MapId::Flows, MapId::FlowsV4});
  if (!pins) return pins.error();
  // Flows carry the slot of their rule (bpf/xdpguard.bpf.c, xdpg_rule_of).
  auto meta = read_rule_meta(pins->fds[0].get(), XDPG_MAX_RULES);
  if (!meta) return meta.error();
  auto capacity = flow_capacity(pins->fds[2].get(), pins->fds[1].get());
  if (!capacity) return capacity.error();

  FlowTable out;
  out.iface = iface;
  out.settings = settings_of(pins->info);
  out.capacity = *capacity;
  // The datapath's own clock: the coarse one lags the precise one by up to a tick.
  const uint64_t now = clock_now_ns(out.settings.clock);
  auto st = for_each_flow(pins->fds[2].get(), pins->fds[1].get(), [&](const xdpg_flow_key& k,
                                                                    const xdpg_flow_value& v) {
    FlowEntry e;
    e.key = k;
    e.value = v;
    if (v.rule < meta->size()) e.rule_id = fixed_string((*meta)[v.rule].id, XDPG_RULE_ID_LEN);
    e.age_ns = now > v.created_ns ? now - v.created_ns : 0;
    e.idle_ns = now > v.last_seen_ns ? now - v.last_seen_ns : 0;
    e.live = flow_live(k, v, out.settings, now);
    out.flows.push_back(e);
  });
  if (!st) return st.error();
  return out;
}

Result<PinnedLearn> read_learned(const std::string& iface, const std::string& pin_root) {
  auto pins = open_pins(iface, pin_root, {MapId::RuleMeta, MapId::LearnPeers,
                                          MapId::LearnConfirmed, MapId::LearnOverflow});
  if (!pins) return pins.error();
  auto meta = read_rule_meta(pins->fds[0].get(), XDPG_MAX_RULES);
  if (!meta) return meta.error();
  auto snap = read_learn(pins->fds[1].get(), pins->fds[2].get(), pins->fds[3].get());
  if (!snap) return snap.error();
  PinnedLearn out;
  out.settings = settings_of(pins->info);
  out.learning = pins->info.learn != 0;
  out.audit = pins->info.audit_mode != 0;
  out.table_size = pins->info.learn_table_size;
  for (const auto& m : *meta) out.slot_rule_ids.push_back(fixed_string(m.id, XDPG_RULE_ID_LEN));
  out.snapshot = std::move(*snap);
  out.now_ns = clock_now_ns(out.settings.clock);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(pins->fds[1].get(), &info, &len) == 0) out.peers_map_id = info.id;
  return out;
}

}  // namespace xdpguard::kernel
