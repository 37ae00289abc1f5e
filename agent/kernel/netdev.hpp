// Private to agent/kernel: the netlink and pin plumbing that attach/detach
// (attach.cpp), pin naming (pin_dir.cpp), the pin readers (pin_readers.cpp)
// and reload/adopt (reload.cpp) share.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>

#include "kernel/datapath.hpp"
#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace xdpguard::kernel::detail {

Result<int> ifindex_of(const std::string& iface);
Result<uint32_t> prog_id_of(int prog_fd);

// Program ids attached to an interface's XDP hook, per mode (0: none).
struct XdpState {
  uint32_t drv = 0, skb = 0, hw = 0;
  uint32_t any() const { return drv ? drv : skb ? skb : hw; }
};
Result<XdpState> query_xdp(int ifindex, const std::string& iface);

// The program / map pinned in `dir` under its object name; invalid if none.
Fd open_pinned_prog(const std::string& dir, const char* name = kProgramName);
Fd open_pinned_map(const std::string& dir, MapId id);

// Our clsact egress filter: hook, and handle/priority (kTcHandle, kTcPriority).
bpf_tc_hook egress_hook(int ifindex);
bpf_tc_opts our_filter(int prog_fd = 0);
// Id of the program in our egress filter; 0 when there is none.
Result<uint32_t> query_tc(int ifindex, const std::string& iface);

}  // namespace xdpguard::kernel::detail
