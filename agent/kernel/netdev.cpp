#include "kernel/netdev.hpp"

#include <bpf/bpf.h>
#include <net/if.h>

#include <cerrno>

#include "kernel/attach.hpp"
#include "kernel/libbpf_log.hpp"

namespace xdpguard::kernel::detail {

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

Fd open_pinned_prog(const std::string& dir, const char* name) {
  return Fd(bpf_obj_get((dir + "/" + name).c_str()));
}

Fd open_pinned_map(const std::string& dir, MapId id) {
  return Fd(bpf_obj_get((dir + "/" + map_name(id)).c_str()));
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

Result<uint32_t> query_tc(int ifindex, const std::string& iface) {
  bpf_tc_hook hook = egress_hook(ifindex);
  bpf_tc_opts opts = our_filter();
  QuietLibbpf quiet;
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return 0u;  // EINVAL: no clsact qdisc
  if (err) return errno_error(err, "cannot query TC egress filters on " + iface);
  return opts.prog_id;
}

}  // namespace xdpguard::kernel::detail
