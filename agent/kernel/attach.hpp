// Attaching the datapath to an interface so that it outlives the command:
// the XDP program and the TC egress program are attached through netlink (no
// bpf_link, no tcx) and both programs and every map are pinned under the
// interface's pin directory (pin_dir.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/datapath.hpp"
#include "kernel/pin_dir.hpp"
#include "kernel/result.hpp"

namespace xdpguard::kernel {

enum class XdpMode { Native, Generic };
const char* to_string(XdpMode);
std::optional<XdpMode> xdp_mode_from_string(std::string_view);

// The egress program is a direct-action filter of the clsact qdisc's egress
// hook at this handle and priority (priority 1: it runs before other filters).
inline constexpr uint32_t kTcHandle = 0x5844;  // "XD"
inline constexpr uint32_t kTcPriority = 1;

// Pins both programs and every map, attaches XDP in `mode` and the egress
// filter (creating the clsact qdisc if needed), without replacing any program
// already on the interface. All or nothing: on failure, whatever this call
// pinned or attached is undone (a clsact qdisc it created included).
Status attach(const Datapath& datapath, const std::string& iface, XdpMode mode,
              const std::string& pin_root = kDefaultPinRoot);

// Removes our egress filter and XDP program (each only if it is ours) and the
// pins. The clsact qdisc is left in place: other filters may share it. Pins
// left without an attached program are removed too.
Status detach(const std::string& iface, const std::string& pin_root = kDefaultPinRoot);

}  // namespace xdpguard::kernel
