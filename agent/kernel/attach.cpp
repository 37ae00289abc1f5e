#include "kernel/attach.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

#include "kernel/libbpf_log.hpp"
#include "kernel/netdev.hpp"
#include "kernel/probe.hpp"

namespace xdpguard::kernel {
namespace fs = std::filesystem;
using namespace detail;

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

// The MTU of `iface` in this network namespace (/sys may show another's).
std::string mtu_text(const std::string& iface) {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (!sock.valid() || ::ioctl(sock.get(), SIOCGIFMTU, &req) != 0) return "its MTU";
  return "MTU " + std::to_string(req.ifr_mtu);
}

// A native attach refused for the MTU (veth: ERANGE, "Peer MTU is too large
// to set XDP"; other drivers name the MTU in the extended ack) is one line
// that says what to do (docs/datapath.md 10).
Error xdp_attach_error(int err, const std::string& ack, const std::string& iface, XdpMode mode,
                       bool frags) {
  std::string what = std::string("cannot attach in ") + to_string(mode) + " mode to " + iface;
  std::string lower = ack;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  const std::string kernel_says = ack.empty() ? "" : " (kernel: " + ack + ")";
  if (mode == XdpMode::Native && (err == -ERANGE || lower.find("mtu") != std::string::npos)) {
    const char* why = frags ? ", not even a multi-buffer one"
                            : " without multi-buffer XDP, which this kernel lacks (5.18+)";
    return plain_error(what + ": the driver takes no XDP program at " + mtu_text(iface) + why +
                       kernel_says +
                       "; lower the MTU (a frame must then fit in a page: about 3500 bytes on "
                       "veth, 1500 always fits) or attach with --mode generic");
  }
  if (err == -EBUSY || err == -EEXIST)
    what += " (another XDP program is attached)";
  else if (mode == XdpMode::Native && (err == -EOPNOTSUPP || err == -EINVAL))
    what += " (the driver may lack native XDP; try --mode generic)";
  return errno_error(err, what + kernel_says);
}

}  // namespace

const char* to_string(XdpMode mode) { return mode == XdpMode::Native ? "native" : "generic"; }

std::optional<XdpMode> xdp_mode_from_string(std::string_view s) {
  if (s == "native") return XdpMode::Native;
  if (s == "generic") return XdpMode::Generic;
  return std::nullopt;
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
  {
    KernelMessage ack;  // the driver's reason goes into our line, not a warning of its own
    if (int err = bpf_xdp_attach(*ifindex, datapath.prog_fd(),
                                 XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flag, nullptr);
        err)
      return xdp_attach_error(err, ack.text(), iface, mode, datapath.xdp_frags());
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

}  // namespace xdpguard::kernel
