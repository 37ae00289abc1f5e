#include "kernel/reload.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "kernel/fd.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/netdev.hpp"

namespace xdpguard::kernel {
namespace fs = std::filesystem;
using namespace detail;
namespace {

// The state both generations share; the rest of the maps belong to one policy.
constexpr std::array kSharedMaps = {
    MapId::RuleCounters,       MapId::ReasonCounters, MapId::EgressRuleCounters,
    MapId::EgressReasonCounters, MapId::Flows,        MapId::FlowsV4, MapId::FlowCounters,
    MapId::Frags,              MapId::RuleMeta,
    // Drop telemetry: the agent keeps reading the same ring buffer.
    MapId::Events, MapId::EventLimits, MapId::TopPorts, MapId::TopPeers,
    // What learning saw survives a reload (reloading the proposal included).
    MapId::LearnPeers, MapId::LearnConfirmed, MapId::LearnOverflow};
constexpr std::array kPolicyMaps = {MapId::PortTable, MapId::PeersV4, MapId::PeersV6,
                                    MapId::RuleFlags, MapId::Info};
// Prefix of the pins of the next generation until they are renamed into place.
constexpr const char* kNextPrefix = "next_";  // bpffs refuses dots in names

Result<xdpg_info> pinned_info(const std::string& dir) {
  Fd fd = open_pinned_map(dir, MapId::Info);
  if (!fd.valid()) return errno_error(errno, "cannot open " + dir + "/info");
  if (auto st = check_map_shape(fd.get(), "info", sizeof(uint32_t), sizeof(xdpg_info), 1); !st)
    return plain_error("pins in " + dir + " are not this xdpguard's layout (" +
                       st.error().message + "); detach and attach again");
  auto info = read_info(fd.get());
  if (!info) return info.error();
  if (info->layout_version != XDPG_LAYOUT_VERSION)
    return plain_error("pins in " + dir + " use map layout version " +
                       std::to_string(info->layout_version) + ", this xdpguard writes version " +
                       std::to_string(XDPG_LAYOUT_VERSION) + "; detach and attach again");
  return *info;
}

// An exclusive lock on the pin directory, released when the Fd closes.
Result<Fd> lock_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(errno, "cannot open " + dir);
  if (::flock(fd.get(), LOCK_EX) != 0) return errno_error(errno, "cannot lock " + dir);
  return fd;
}

Status zero_percpu_slot(int fd, uint32_t slot, size_t value_size, const char* name) {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return errno_error(ncpus, "cannot count possible CPUs");
  std::vector<uint8_t> zeros(static_cast<size_t>(ncpus) * ((value_size + 7) / 8 * 8));
  if (int err = bpf_map_update_elem(fd, &slot, zeros.data(), BPF_ANY); err)
    return errno_error(err, std::string("cannot clear ") + name + "[" + std::to_string(slot) + "]");
  return {};
}

// A slot's counters in both directions, what learning saw on it and its
// meta back to empty.
Status free_slot(const std::map<MapId, Fd>& shared, uint32_t slot) {
  for (MapId id : {MapId::RuleCounters, MapId::EgressRuleCounters})
    if (auto st = zero_percpu_slot(shared.at(id).get(), slot, sizeof(xdpg_rule_counters),
                                   map_name(id));
        !st)
      return st;
  if (auto st = forget_learned_slot(shared.at(MapId::LearnPeers).get(),
                                    shared.at(MapId::LearnOverflow).get(), slot);
      !st)
    return st;
  xdpg_rule_meta empty{};
  if (int err = bpf_map_update_elem(shared.at(MapId::RuleMeta).get(), &slot, &empty, BPF_ANY); err)
    return errno_error(err, "cannot clear rule_meta[" + std::to_string(slot) + "]");
  return {};
}

struct SlotPlan {
  std::vector<uint8_t> slots;      // per new rule index
  std::vector<uint32_t> fresh;     // slots the new policy takes that held no rule in force
  std::vector<uint32_t> released;  // slots of removed rules, to free after the swap
  size_t kept = 0;
};

// Rules keep their slot by id; new rules take slots no rule in force uses.
SlotPlan plan_slots(const compile::CompiledPolicy& policy, const xdpg_info& old,
                    const std::vector<xdpg_rule_meta>& meta) {
  std::map<std::string, uint32_t> old_slot;  // id -> slot, rules in force only
  std::array<bool, XDPG_MAX_RULES> in_use{};
  for (uint32_t i = 0; i < old.rule_count && i < XDPG_MAX_RULES; ++i) {
    uint32_t s = old.rule_slot[i] % XDPG_MAX_RULES;
    in_use[s] = true;
    old_slot.emplace(fixed_string(meta[s].id, XDPG_RULE_ID_LEN), s);
  }
  SlotPlan plan;
  std::array<bool, XDPG_MAX_RULES> taken{};
  plan.slots.assign(policy.rule_meta.size(), 0);
  std::vector<size_t> unplaced;
  for (size_t i = 0; i < policy.rule_meta.size(); ++i) {
    auto it = old_slot.find(fixed_string(policy.rule_meta[i].id, XDPG_RULE_ID_LEN));
    if (it != old_slot.end() && !taken[it->second]) {
      plan.slots[i] = static_cast<uint8_t>(it->second);
      taken[it->second] = true;
      ++plan.kept;
    } else {
      unplaced.push_back(i);
    }
  }
  for (uint32_t s = 0; s < XDPG_MAX_RULES; ++s)
    if (in_use[s] && !taken[s]) plan.released.push_back(s);
  // Free slots first; only when 64 are not enough, slots of removed rules
  // (their last in-flight packets then count on the new rule).
  auto next_slot = [&](bool allow_released) -> int {
    for (uint32_t s = 0; s < XDPG_MAX_RULES; ++s)
      if (!taken[s] && (allow_released || !in_use[s])) return static_cast<int>(s);
    return -1;
  };
  for (size_t i : unplaced) {
    int s = next_slot(false);
    if (s < 0) {
      s = next_slot(true);
      std::erase(plan.released, static_cast<uint32_t>(s));
      spdlog::debug("no free counter slot; rule {} takes slot {} of a removed rule", i, s);
    }
    taken[s] = true;
    plan.slots[i] = static_cast<uint8_t>(s);
    plan.fresh.push_back(static_cast<uint32_t>(s));
  }
  return plan;
}

uint32_t xdp_mode_flag(XdpMode mode) {
  return mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
}

Status swap_xdp(int ifindex, XdpMode mode, int new_fd, int old_fd, const std::string& iface) {
  bpf_xdp_attach_opts opts{};
  opts.sz = sizeof(opts);
  opts.old_prog_fd = old_fd;
  if (int err = bpf_xdp_attach(ifindex, new_fd, xdp_mode_flag(mode) | XDP_FLAGS_REPLACE, &opts);
      err)
    return errno_error(err, "cannot replace the XDP program on " + iface);
  return {};
}

Status swap_tc(int ifindex, int new_fd, const std::string& iface) {
  bpf_tc_hook hook = egress_hook(ifindex);
  bpf_tc_opts opts = our_filter(new_fd);
  opts.flags = BPF_TC_F_REPLACE;
  if (int err = bpf_tc_attach(&hook, &opts); err)
    return errno_error(err, "cannot replace the TC egress filter on " + iface);
  return {};
}

}  // namespace

Result<Inspection> inspect(const std::string& iface, const std::string& pin_root) {
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  Inspection out;
  std::error_code ec;
  out.pins_exist = fs::exists(*dir, ec);
  if (!out.pins_exist) {
    out.why_not = "no pins in " + *dir;
    return out;
  }
  auto ifindex = ifindex_of(iface);
  if (!ifindex) return ifindex.error();
  Fd prog = open_pinned_prog(*dir);
  Fd egress = open_pinned_prog(*dir, kEgressProgramName);
  if (!prog.valid() || !egress.valid()) {
    out.why_not = "the program pins in " + *dir + " are incomplete";
    return out;
  }
  auto id = prog_id_of(prog.get());
  if (!id) return id.error();
  auto egress_id = prog_id_of(egress.get());
  if (!egress_id) return egress_id.error();
  auto xdp = query_xdp(*ifindex, iface);
  if (!xdp) return xdp.error();
  auto tc = query_tc(*ifindex, iface);
  if (!tc) return tc.error();
  Installed inst;
  inst.pin_dir = *dir;
  inst.prog_id = *id;
  inst.egress_prog_id = *egress_id;
  if (xdp->drv == *id)
    inst.mode = XdpMode::Native;
  else if (xdp->skb == *id)
    inst.mode = XdpMode::Generic;
  else {
    out.why_not = "the pinned XDP program (id " + std::to_string(*id) + ") is not attached to " +
                  iface + (xdp->any() ? " (program " + std::to_string(xdp->any()) + " is)" : "");
    return out;
  }
  if (*tc != *egress_id) {
    out.why_not = "the pinned egress program (id " + std::to_string(*egress_id) +
                  ") is not xdpguard's TC egress filter on " + iface;
    return out;
  }
  auto info = pinned_info(*dir);
  if (!info) return info.error();
  inst.info = *info;
  out.installed = std::move(inst);
  return out;
}

Result<ReloadReport> reload(const compile::CompiledPolicy& policy, DatapathOptions options,
                            const std::string& iface, const std::string& pin_root) {
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  std::error_code ec;
  if (!fs::exists(*dir, ec))
    return plain_error("xdpguard is not attached to " + iface + " (no pins in " + *dir +
                       "); attach first");
  auto lock = lock_dir(*dir);
  if (!lock) return lock.error();

  auto found = inspect(iface, pin_root);
  if (!found) return found.error();
  if (!found->installed)
    return plain_error("cannot reload " + iface + ": " + found->why_not +
                       "; detach and attach again");
  const Installed& cur = *found->installed;
  auto ifindex = ifindex_of(iface);
  if (!ifindex) return ifindex.error();
  Fd old_prog = open_pinned_prog(*dir);
  Fd old_egress = open_pinned_prog(*dir, kEgressProgramName);
  if (!old_prog.valid() || !old_egress.valid())
    return errno_error(errno, "cannot open the pinned programs in " + *dir);
  // The pins may have been replaced between inspect() and here only by
  // someone not taking the lock; the REPLACE flags below catch that too.

  std::map<MapId, Fd> shared;
  for (MapId id : kSharedMaps) {
    Fd fd = open_pinned_map(*dir, id);
    if (!fd.valid()) return errno_error(errno, "cannot open " + *dir + "/" + map_name(id));
    shared.emplace(id, std::move(fd));
  }
  auto meta = read_rule_meta(shared.at(MapId::RuleMeta).get(), XDPG_MAX_RULES);
  if (!meta) return meta.error();
  if (policy.rule_meta.size() > XDPG_MAX_RULES)
    return plain_error("policy has too many rules");
  SlotPlan plan = plan_slots(policy, cur.info, *meta);
  if (options.flow_table_size != cur.info.flow_table_size)
    spdlog::warn("flow_table_size {} ignored on reload: the flow table ({} entries) is kept; "
                 "detach and attach to resize it",
                 options.flow_table_size, cur.info.flow_table_size);
  if (options.learn_table_size != cur.info.learn_table_size)
    spdlog::warn("learn entries {} ignored on reload: the learn tables ({} entries) are kept; "
                 "detach and attach to resize them",
                 options.learn_table_size, cur.info.learn_table_size);
  options.rule_slots = plan.slots;
  options.reuse_maps.clear();
  for (const auto& [id, fd] : shared) options.reuse_maps.emplace_back(id, fd.get());
  // Slots new to this policy start from zero (rule_meta is written by load).
  for (uint32_t s : plan.fresh)
    for (MapId id : {MapId::RuleCounters, MapId::EgressRuleCounters})
      if (auto st = zero_percpu_slot(shared.at(id).get(), s, sizeof(xdpg_rule_counters),
                                     map_name(id));
          !st)
        return st.error();

  auto dp = Datapath::load(policy, options);
  if (!dp) return dp.error();

  // Pin the next generation beside the current one; renamed into place after
  // the swap. Leftovers of an interrupted reload are replaced.
  std::vector<std::pair<std::string, std::string>> renames;  // next -> final
  auto unpin_next = [&] {
    for (const auto& [next, final_path] : renames) ::unlink(next.c_str());
  };
  auto pin_next = [&](int fd, const char* name) -> Status {
    std::string final_path = *dir + "/" + name;
    std::string next = *dir + "/" + kNextPrefix + name;
    ::unlink(next.c_str());
    if (int err = bpf_obj_pin(fd, next.c_str()); err)
      return errno_error(err, "cannot pin " + next);
    renames.emplace_back(next, final_path);
    return {};
  };
  for (MapId id : kPolicyMaps)
    if (auto st = pin_next(dp->map_fd(id), map_name(id)); !st) {
      unpin_next();
      return st.error();
    }
  for (auto [fd, name] : {std::pair{dp->prog_fd(), kProgramName},
                          {dp->egress_prog_fd(), kEgressProgramName}})
    if (auto st = pin_next(fd, name); !st) {
      unpin_next();
      return st.error();
    }

  // The swap: each hook flips from the old program to the new one in one
  // pointer exchange; the kernel refuses if the old one is no longer there.
  if (auto st = swap_xdp(*ifindex, cur.mode, dp->prog_fd(), old_prog.get(), iface); !st) {
    unpin_next();
    return st.error();
  }
  if (auto st = swap_tc(*ifindex, dp->egress_prog_fd(), iface); !st) {
    if (auto back = swap_xdp(*ifindex, cur.mode, old_prog.get(), dp->prog_fd(), iface); !back)
      spdlog::error("rollback of the XDP swap failed: {}", back.error().message);
    unpin_next();
    return st.error();
  }
  for (const auto& [next, final_path] : renames)
    if (::rename(next.c_str(), final_path.c_str()) != 0)
      return errno_error(errno, fmt::format("the new policy is in force on {} but its pin {} "
                                            "could not be updated", iface, final_path));
  for (uint32_t s : plan.released)
    if (auto st = free_slot(shared, s); !st)
      spdlog::warn("after reload of {}: {}", iface, st.error().message);

  ReloadReport rep;
  rep.old_prog_id = cur.prog_id;
  rep.old_egress_prog_id = cur.egress_prog_id;
  if (auto id = prog_id_of(dp->prog_fd())) rep.new_prog_id = *id;
  if (auto id = prog_id_of(dp->egress_prog_fd())) rep.new_egress_prog_id = *id;
  rep.kept = plan.kept;
  rep.added = plan.fresh.size();
  rep.removed = cur.info.rule_count - plan.kept;
  spdlog::debug("reloaded {}: prog {} -> {}, egress {} -> {}; rules kept {}, added {}, removed {}",
                iface, rep.old_prog_id, rep.new_prog_id, rep.old_egress_prog_id,
                rep.new_egress_prog_id, rep.kept, rep.added, rep.removed);
  return rep;
}

}  // namespace xdpguard::kernel
