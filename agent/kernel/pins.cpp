#include "kernel/pins.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>

#include "kernel/fd.hpp"
#include "kernel/libbpf_log.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/probe.hpp"
#include "kernel/netdev.hpp"

namespace xdpguard::kernel {
namespace fs = std::filesystem;
using namespace detail;
namespace {

Result<uint64_t> inode_of(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return errno_error(errno, std::string("cannot stat ") + path);
  return static_cast<uint64_t>(st.st_ino);
}

// Linux 6.18 gives the initial network namespace a fixed inode
// (PROC_NET_INIT_INO); before that it was numbered like any other.
constexpr uint64_t kInitNetInode = 0xEFFFFFF9;

// Whether the namespace with inode `self` is the initial one: compared with
// pid 1's where we may read it. Containers and capability-bounded services
// may not (the ptrace access check), and before Linux 6.18 the inode alone
// does not tell: then we do not know.
Result<NetnsCertainty> where_am_i(uint64_t self) {
  if (self == kInitNetInode) return NetnsCertainty::Initial;
  auto init = inode_of("/proc/1/ns/net");
  if (init) return self == *init ? NetnsCertainty::Initial : NetnsCertainty::Other;
  if (init.error().code == EACCES || init.error().code == EPERM) {
    spdlog::debug("{}; cannot tell whether netns {} is the initial one", init.error().message,
                  self);
    return NetnsCertainty::Unknown;
  }
  return init.error();
}

}  // namespace

namespace detail {

Result<int> ifindex_of(const std::string& iface) {
  if (iface.empty() || iface.size() >= IF_NAMESIZE || iface.find('/') != std::string::npos)
    return plain_error("invalid interface name '" + iface + "'");
  unsigned idx = if_nametoindex(iface.c_str());
  if (idx == 0) return errno_error(errno, "interface " + iface);
  return static_cast<int>(idx);
}

Result<uint32_t> prog_id_of(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(prog_fd, &info, &len); err)
    return errno_error(err, "cannot inspect BPF program");
  return info.id;
}

Result<XdpState> query_xdp(int ifindex, const std::string& iface) {
  bpf_xdp_query_opts opts{};
  opts.sz = sizeof(opts);
  if (int err = bpf_xdp_query(ifindex, 0, &opts); err)
    return errno_error(err, "cannot query XDP programs on " + iface);
  return XdpState{opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id};
}

// The program pinned in `dir` under `name`, if any.
Fd open_pinned_prog(const std::string& dir, const char* name) {
  return Fd(bpf_obj_get((dir + "/" + name).c_str()));
}

bpf_tc_hook egress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts our_filter(int prog_fd) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  opts.prog_fd = prog_fd;
  return opts;
}

// Id of the program in the egress filter at our handle and priority; 0 if
// there is none (no clsact qdisc, or no such filter).
Result<uint32_t> query_tc(int ifindex, const std::string& iface) {
  bpf_tc_hook hook = egress_hook(ifindex);
  bpf_tc_opts opts = our_filter();
  QuietLibbpf quiet;
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return 0u;  // EINVAL: no clsact qdisc
  if (err) return errno_error(err, "cannot query TC egress filters on " + iface);
  return opts.prog_id;
}

Fd open_pinned_map(const std::string& dir, MapId id) {
  return Fd(bpf_obj_get((dir + "/" + map_name(id)).c_str()));
}

}  // namespace detail

namespace {

Status detach_tc(int ifindex, const std::string& iface) {
  bpf_tc_hook hook = egress_hook(ifindex);
  bpf_tc_opts opts = our_filter();
  if (int err = bpf_tc_detach(&hook, &opts); err && err != -ENOENT)
    return errno_error(err, "cannot remove the TC egress filter from " + iface);
  return {};
}

Status remove_pin_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Error{ec.value(), "cannot remove pins in " + dir + ": " + ec.message()};
  return {};
}

// Undoes a partial attach unless dismissed: attachments first (newest
// first), then pins, then the directory.
class AttachUndo {
 public:
  explicit AttachUndo(std::string dir) : dir_(std::move(dir)) {}
  AttachUndo(const AttachUndo&) = delete;
  AttachUndo& operator=(const AttachUndo&) = delete;
  ~AttachUndo() {
    if (done_) return;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
    for (auto it = pins_.rbegin(); it != pins_.rend(); ++it)
      if (::unlink(it->c_str()) != 0)
        spdlog::warn("rollback: cannot remove pin {}: {}", *it, std::strerror(errno));
    if (dir_created_ && ::rmdir(dir_.c_str()) != 0)
      spdlog::warn("rollback: cannot remove {}: {}", dir_, std::strerror(errno));
  }
  void dir_created() { dir_created_ = true; }
  void pinned(std::string path) { pins_.push_back(std::move(path)); }
  void then_undo(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void dismiss() { done_ = true; }

 private:
  std::string dir_;
  std::vector<std::function<void()>> steps_;
  bool dir_created_ = false;
  std::vector<std::string> pins_;
  bool done_ = false;
};

std::string fmt_tc_owner(const std::string& iface, uint32_t prog_id) {
  return "another program (id " + std::to_string(prog_id) +
         ") holds xdpguard's TC egress handle and priority on " + iface +
         "; xdpguard does not replace it";
}

}  // namespace

const char* to_string(XdpMode mode) { return mode == XdpMode::Native ? "native" : "generic"; }

std::optional<XdpMode> xdp_mode_from_string(std::string_view s) {
  if (s == "native") return XdpMode::Native;
  if (s == "generic") return XdpMode::Generic;
  return std::nullopt;
}

std::string choose_pin_dir(const std::string& base, uint64_t self_inode, NetnsCertainty where,
                           const std::function<bool(const std::string&)>& exists,
                           const std::function<bool(const std::string&)>& attached_here) {
  const std::string own_ns = base + "@netns" + std::to_string(self_inode);
  const std::string primary = where == NetnsCertainty::Initial ? base : own_ns;
  if (where == NetnsCertainty::Other || exists(primary)) return primary;
  // Pins made by a process that answered the question the other way (a root
  // shell vs. a capability-bounded daemon) are still ours if the program
  // pinned there is the one attached to this namespace's interface.
  const std::string other = where == NetnsCertainty::Initial ? own_ns : base;
  return exists(other) && attached_here(other) ? other : primary;
}

Result<std::string> pin_dir(const std::string& iface, const std::string& pin_root) {
  if (iface.empty() || iface.size() >= IF_NAMESIZE || iface.find('/') != std::string::npos ||
      iface == "." || iface == "..")
    return plain_error("invalid interface name '" + iface + "'");
  auto self = inode_of("/proc/thread-self/ns/net");
  if (!self) return self.error();
  auto where = where_am_i(*self);
  if (!where) return where.error();
  auto exists = [](const std::string& dir) {
    std::error_code ec;
    return fs::is_directory(dir, ec);
  };
  auto attached_here = [&iface](const std::string& dir) {
    auto ifindex = ifindex_of(iface);
    if (!ifindex) return false;
    auto state = query_xdp(*ifindex, iface);
    Fd pinned = open_pinned_prog(dir);
    if (!state || state->any() == 0 || !pinned.valid()) return false;
    auto id = prog_id_of(pinned.get());
    return id && *id == state->any();
  };
  return choose_pin_dir(pin_root + "/" + iface, *self, *where, exists, attached_here);
}

Status attach(const Datapath& datapath, const std::string& iface, XdpMode mode,
              const std::string& pin_root) {
  if (auto st = check_bpffs(pin_root); !st) return st;
  auto ifindex = ifindex_of(iface);
  if (!ifindex) return ifindex.error();
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();

  auto state = query_xdp(*ifindex, iface);
  if (!state) return state.error();
  auto tc = query_tc(*ifindex, iface);
  if (!tc) return tc.error();
  Fd pinned = open_pinned_prog(*dir);
  Fd pinned_egress = open_pinned_prog(*dir, kEgressProgramName);
  auto is_pinned = [](const Fd& fd, uint32_t id) {
    if (!fd.valid()) return false;
    auto ours = prog_id_of(fd.get());
    return ours && *ours == id;
  };
  if (uint32_t current = state->any(); current != 0) {
    if (is_pinned(pinned, current))
      return plain_error("xdpguard is already attached to " + iface + "; detach first");
    return plain_error("another XDP program (id " + std::to_string(current) +
                       ") is attached to " + iface + "; xdpguard does not replace it");
  }
  if (*tc != 0) {
    if (is_pinned(pinned_egress, *tc))
      return plain_error("xdpguard's egress filter is still on " + iface +
                         " (a half-finished attach?); detach first");
    return plain_error(fmt_tc_owner(iface, *tc));
  }
  std::error_code ec;
  if (fs::exists(*dir, ec)) {
    // Nothing is attached, so these pins keep only dead maps alive.
    spdlog::warn("removing stale pins in {} (no program attached to {})", *dir, iface);
    if (auto st = remove_pin_dir(*dir); !st) return st;
  }

  fs::create_directories(pin_root, ec);
  if (ec) return Error{ec.value(), "cannot create " + pin_root + ": " + ec.message()};
  AttachUndo undo(*dir);
  if (::mkdir(dir->c_str(), 0700) != 0) return errno_error(errno, "cannot create " + *dir);
  undo.dir_created();

  for (MapId id : kAllMaps) {
    std::string path = *dir + "/" + map_name(id);
    if (int err = bpf_obj_pin(datapath.map_fd(id), path.c_str()); err)
      return errno_error(err, "cannot pin map at " + path);
    undo.pinned(path);
  }
  for (auto [fd, name] : {std::pair{datapath.prog_fd(), kProgramName},
                          {datapath.egress_prog_fd(), kEgressProgramName}}) {
    std::string path = *dir + "/" + name;
    if (int err = bpf_obj_pin(fd, path.c_str()); err)
      return errno_error(err, "cannot pin program at " + path);
    undo.pinned(path);
  }

  // UPDATE_IF_NOEXIST: the kernel itself refuses to replace a program that
  // appeared since the query above.
  uint32_t mode_flag = mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  if (int err = bpf_xdp_attach(*ifindex, datapath.prog_fd(),
                               XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flag, nullptr);
      err) {
    std::string what = std::string("cannot attach in ") + to_string(mode) + " mode to " + iface;
    if (err == -EBUSY || err == -EEXIST)
      what += " (another XDP program is attached)";
    else if (mode == XdpMode::Native && (err == -EOPNOTSUPP || err == -EINVAL))
      what += " (the driver may lack native XDP; try --mode generic)";
    return errno_error(err, what);
  }
  undo.then_undo([ifindex = *ifindex, mode_flag, fd = datapath.prog_fd(), iface] {
    bpf_xdp_attach_opts opts{};
    opts.sz = sizeof(opts);
    opts.old_prog_fd = fd;
    if (int err = bpf_xdp_detach(ifindex, mode_flag, &opts); err)
      spdlog::warn("rollback: cannot detach XDP from {}: {}", iface, std::strerror(-err));
  });

  // The egress program goes into a clsact qdisc through netlink (not tcx,
  // which 5.14 lacks). An existing clsact qdisc is shared, never replaced.
  bpf_tc_hook hook = egress_hook(*ifindex);
  int err = [&] {
    QuietLibbpf quiet;  // EEXIST, the usual answer, is logged as a warning
    return bpf_tc_hook_create(&hook);
  }();
  bool created_qdisc = err == 0;
  if (err && err != -EEXIST)
    return errno_error(err, "cannot add a clsact qdisc to " + iface);
  if (created_qdisc)
    undo.then_undo([ifindex = *ifindex, iface] {
      // Only the qdisc this call created, which holds no filter but ours.
      bpf_tc_hook h = egress_hook(ifindex);
      h.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      if (int e = bpf_tc_hook_destroy(&h); e)
        spdlog::warn("rollback: cannot remove the clsact qdisc of {}: {}", iface,
                     std::strerror(-e));
    });
  bpf_tc_opts opts = our_filter(datapath.egress_prog_fd());
  if (err = bpf_tc_attach(&hook, &opts); err) {
    std::string what = "cannot attach the egress program to " + iface;
    if (err == -EEXIST) what += " (a TC filter already uses xdpguard's handle and priority)";
    return errno_error(err, what);
  }
  undo.dismiss();
  spdlog::debug("attached to {} (XDP {} mode, TC egress handle {:#x} priority {}), pins in {}",
                iface, to_string(mode), kTcHandle, kTcPriority, *dir);
  return {};
}

Status detach(const std::string& iface, const std::string& pin_root) {
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  std::error_code ec;
  bool have_pins = fs::exists(*dir, ec);
  auto ifindex = ifindex_of(iface);
  if (!ifindex) {
    if (!have_pins) return ifindex.error();
    spdlog::warn("interface {} is gone; removing its pins in {}", iface, *dir);
    return remove_pin_dir(*dir);
  }
  auto state = query_xdp(*ifindex, iface);
  if (!state) return state.error();
  auto tc = query_tc(*ifindex, iface);
  if (!tc) return tc.error();
  Fd prog = open_pinned_prog(*dir);
  Fd egress = open_pinned_prog(*dir, kEgressProgramName);
  if (!prog.valid() && !egress.valid()) {
    if (!have_pins)
      return plain_error("xdpguard is not attached to " + iface + " (no pins in " + *dir + ")");
    spdlog::warn("{} holds no program pin; removing it", *dir);
    return remove_pin_dir(*dir);
  }

  // Egress first: while ingress still runs, removing it only stops new flows.
  if (egress.valid()) {
    auto ours = prog_id_of(egress.get());
    if (!ours) return ours.error();
    if (*tc == *ours) {
      // The clsact qdisc stays: other filters may share it, and an empty one
      // costs nothing.
      if (auto st = detach_tc(*ifindex, iface); !st) return st;
    } else if (*tc != 0) {
      spdlog::warn("the TC egress filter at xdpguard's handle on {} is another program (id {}); "
                   "left in place", iface, *tc);
    } else {
      spdlog::warn("xdpguard's egress program was not attached to {}", iface);
    }
  }

  if (prog.valid()) {
    auto ours = prog_id_of(prog.get());
    if (!ours) return ours.error();
    uint32_t mode_flag = 0;
    if (state->drv == *ours)
      mode_flag = XDP_FLAGS_DRV_MODE;
    else if (state->skb == *ours)
      mode_flag = XDP_FLAGS_SKB_MODE;
    else if (state->hw == *ours)
      mode_flag = XDP_FLAGS_HW_MODE;
    if (mode_flag != 0) {
      // old_prog_fd makes the kernel detach only if our program is still the
      // one attached (XDP_FLAGS_REPLACE).
      bpf_xdp_attach_opts opts{};
      opts.sz = sizeof(opts);
      opts.old_prog_fd = prog.get();
      if (int err = bpf_xdp_detach(*ifindex, mode_flag, &opts); err)
        return errno_error(err, "cannot detach from " + iface);
    } else {
      spdlog::warn("xdpguard's program was not attached to {}; removing its pins", iface);
    }
  }
  prog.reset();
  egress.reset();
  if (auto st = remove_pin_dir(*dir); !st) return st;
  spdlog::debug("detached from {}", iface);
  return {};
}

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
                          info.frag_timeout_ns, info.clock};
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
