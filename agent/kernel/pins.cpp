#include "kernel/pins.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "kernel/fd.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/probe.hpp"

namespace xdpguard::kernel {
namespace fs = std::filesystem;
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
// pid 1's where we may read it (containers and sandboxes may forbid it).
Result<bool> in_initial_netns(uint64_t self) {
  if (self == kInitNetInode) return true;
  auto init = inode_of("/proc/1/ns/net");
  if (init) return self == *init;
  if (init.error().code == EACCES || init.error().code == EPERM) {
    spdlog::debug("{}; treating netns {} as a non-initial namespace", init.error().message, self);
    return false;
  }
  return init.error();
}

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

struct XdpState {
  uint32_t drv = 0, skb = 0, hw = 0;
  uint32_t any() const { return drv ? drv : skb ? skb : hw; }
};

Result<XdpState> query_xdp(int ifindex, const std::string& iface) {
  bpf_xdp_query_opts opts{};
  opts.sz = sizeof(opts);
  if (int err = bpf_xdp_query(ifindex, 0, &opts); err)
    return errno_error(err, "cannot query XDP programs on " + iface);
  return XdpState{opts.drv_prog_id, opts.skb_prog_id, opts.hw_prog_id};
}

// The program pinned in `dir`, if any.
Fd open_pinned_prog(const std::string& dir) {
  return Fd(bpf_obj_get((dir + "/" + kProgramName).c_str()));
}

Status remove_pin_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Error{ec.value(), "cannot remove pins in " + dir + ": " + ec.message()};
  return {};
}

// Undoes a partial attach unless dismissed.
class AttachUndo {
 public:
  explicit AttachUndo(std::string dir) : dir_(std::move(dir)) {}
  AttachUndo(const AttachUndo&) = delete;
  AttachUndo& operator=(const AttachUndo&) = delete;
  ~AttachUndo() {
    if (done_) return;
    for (auto it = pins_.rbegin(); it != pins_.rend(); ++it)
      if (::unlink(it->c_str()) != 0)
        spdlog::warn("rollback: cannot remove pin {}: {}", *it, std::strerror(errno));
    if (dir_created_ && ::rmdir(dir_.c_str()) != 0)
      spdlog::warn("rollback: cannot remove {}: {}", dir_, std::strerror(errno));
  }
  void dir_created() { dir_created_ = true; }
  void pinned(std::string path) { pins_.push_back(std::move(path)); }
  void dismiss() { done_ = true; }

 private:
  std::string dir_;
  bool dir_created_ = false;
  std::vector<std::string> pins_;
  bool done_ = false;
};

Fd open_pinned_map(const std::string& dir, MapId id) {
  return Fd(bpf_obj_get((dir + "/" + map_name(id)).c_str()));
}

}  // namespace

const char* to_string(XdpMode mode) { return mode == XdpMode::Native ? "native" : "generic"; }

std::optional<XdpMode> xdp_mode_from_string(std::string_view s) {
  if (s == "native") return XdpMode::Native;
  if (s == "generic") return XdpMode::Generic;
  return std::nullopt;
}

Result<std::string> pin_dir(const std::string& iface, const std::string& pin_root) {
  if (iface.empty() || iface.size() >= IF_NAMESIZE || iface.find('/') != std::string::npos ||
      iface == "." || iface == "..")
    return plain_error("invalid interface name '" + iface + "'");
  auto self = inode_of("/proc/thread-self/ns/net");
  if (!self) return self.error();
  std::string dir = pin_root + "/" + iface;
  auto initial = in_initial_netns(*self);
  if (!initial) return initial.error();
  if (!*initial) dir += "@netns" + std::to_string(*self);
  return dir;
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
  Fd pinned = open_pinned_prog(*dir);
  if (uint32_t current = state->any(); current != 0) {
    if (pinned.valid()) {
      auto ours = prog_id_of(pinned.get());
      if (ours && *ours == current)
        return plain_error("xdpguard is already attached to " + iface + "; detach first");
    }
    return plain_error("another XDP program (id " + std::to_string(current) +
                       ") is attached to " + iface + "; xdpguard does not replace it");
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
  std::string prog_path = *dir + "/" + kProgramName;
  if (int err = bpf_obj_pin(datapath.prog_fd(), prog_path.c_str()); err)
    return errno_error(err, "cannot pin program at " + prog_path);
  undo.pinned(prog_path);

  // UPDATE_IF_NOEXIST: the kernel itself refuses to replace a program that
  // appeared since the query above.
  uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
                   (mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
  if (int err = bpf_xdp_attach(*ifindex, datapath.prog_fd(), flags, nullptr); err) {
    std::string what = std::string("cannot attach in ") + to_string(mode) + " mode to " + iface;
    if (err == -EBUSY || err == -EEXIST)
      what += " (another XDP program is attached)";
    else if (mode == XdpMode::Native && (err == -EOPNOTSUPP || err == -EINVAL))
      what += " (the driver may lack native XDP; try --mode generic)";
    return errno_error(err, what);
  }
  undo.dismiss();
  spdlog::debug("attached to {} ({} mode), pins in {}", iface, to_string(mode), *dir);
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
  Fd prog = open_pinned_prog(*dir);
  if (!prog.valid()) {
    if (!have_pins)
      return plain_error("xdpguard is not attached to " + iface + " (no pins in " + *dir + ")");
    spdlog::warn("{} holds no program pin; removing it", *dir);
    return remove_pin_dir(*dir);
  }
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
  prog.reset();
  if (auto st = remove_pin_dir(*dir); !st) return st;
  spdlog::debug("detached from {}", iface);
  return {};
}

Result<PinnedStats> read_stats(const std::string& iface, const std::string& pin_root) {
  auto dir = pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  std::error_code ec;
  if (!fs::exists(*dir, ec))
    return plain_error("xdpguard is not attached to " + iface + " (no pins in " + *dir + ")");

  Fd info_fd, meta_fd, rules_fd, reasons_fd;
  for (auto [fd, id] : {std::pair{&info_fd, MapId::Info}, {&meta_fd, MapId::RuleMeta},
                        {&rules_fd, MapId::RuleCounters}, {&reasons_fd, MapId::ReasonCounters}}) {
    *fd = open_pinned_map(*dir, id);
    if (!fd->valid())
      return errno_error(errno, "cannot open pinned map " + *dir + "/" + map_name(id));
  }

  // Check the info map before trusting its layout_version field.
  std::string layout_hint = "; detach and attach again with this xdpguard";
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
  const struct {
    int fd;
    const char* name;
    uint32_t value_size, entries;
  } shapes[] = {
      {meta_fd.get(), "rule_meta", sizeof(xdpg_rule_meta), XDPG_MAX_RULES},
      {rules_fd.get(), "rule_counters", sizeof(xdpg_rule_counters), XDPG_MAX_RULES},
      {reasons_fd.get(), "reason_counters", sizeof(xdpg_reason_counters),
       XDPG_DROP_REASON_COUNT},
  };
  for (const auto& s : shapes)
    if (auto st = check_map_shape(s.fd, s.name, sizeof(uint32_t), s.value_size, s.entries); !st)
      return plain_error(st.error().message + layout_hint);

  auto meta = read_rule_meta(meta_fd.get(), info->rule_count);
  if (!meta) return meta.error();
  auto rule_counts = read_rule_counters(rules_fd.get());
  if (!rule_counts) return rule_counts.error();
  auto reason_counts = read_reason_counters(reasons_fd.get());
  if (!reason_counts) return reason_counts.error();

  PinnedStats out;
  out.iface = iface;
  out.pin_dir = *dir;
  out.policy_name = fixed_string(info->policy_name, sizeof(info->policy_name));
  out.profile = fixed_string(info->profile, sizeof(info->profile));
  out.policy_hash = info->policy_hash;
  for (uint32_t i = 0; i < info->rule_count; ++i) {
    const auto& m = (*meta)[i];
    out.rules.push_back(RuleStats{i, fixed_string(m.id, sizeof(m.id)),
                                  fixed_string(m.row, sizeof(m.row)), (*rule_counts)[i]});
  }
  for (int r = 1; r < XDPG_DROP_REASON_COUNT; ++r)
    out.reasons.push_back(ReasonStats{static_cast<DropReason>(r), (*reason_counts)[r]});

  // Whether the pinned program is still the one on the interface.
  if (auto ifindex = ifindex_of(iface)) {
    Fd prog = open_pinned_prog(*dir);
    auto state = query_xdp(*ifindex, iface);
    if (prog.valid() && state) {
      if (auto id = prog_id_of(prog.get())) {
        if (state->drv == *id) out.attached_mode = XdpMode::Native;
        if (state->skb == *id) out.attached_mode = XdpMode::Generic;
      }
    }
  }
  return out;
}

}  // namespace xdpguard::kernel
