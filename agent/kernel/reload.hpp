// Replacing the policy of an attached interface in one step, and finding out
// what is attached (for a daemon that adopts what it finds).
//
// A reload loads a new pair of programs whose state maps (counters, flows,
// fragments, rule_meta) ARE the pinned ones (bpf_map__reuse_fd) and whose
// policy maps (port_table, peers, rule_flags, info) are fresh, fills them,
// and only then swaps the programs in: XDP with XDP_FLAGS_REPLACE, the TC
// egress filter with BPF_TC_F_REPLACE. Until the swap the old programs run
// unchanged; after it the new ones find every flow and fragment the old ones
// recorded, so no packet of an allowed flow is dropped because of the
// reload. Counters of rules kept by id keep their slot (maps.h, rule_slot).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/attach.hpp"
#include "kernel/result.hpp"

namespace xdpguard::kernel {

// Our programs as found on an interface.
struct Installed {
  std::string pin_dir;
  xdpg_info info{};      // the pinned info map
  XdpMode mode = XdpMode::Native;
  uint32_t prog_id = 0;  // XDP program, attached and pinned
  uint32_t egress_prog_id = 0;
};

struct Inspection {
  std::optional<Installed> installed;  // set: ours, attached, pins consistent
  std::string why_not;                 // otherwise: what is missing, for the log
  bool pins_exist = false;
};

// Whether xdpguard's pinned programs are the ones attached to `iface`
// (XDP and TC egress both), with the pinned info.
Result<Inspection> inspect(const std::string& iface,
                           const std::string& pin_root = kDefaultPinRoot);

struct ReloadReport {
  uint32_t old_prog_id = 0, new_prog_id = 0;
  uint32_t old_egress_prog_id = 0, new_egress_prog_id = 0;
  size_t kept = 0, added = 0, removed = 0;  // rules, by id
};

// Atomically replaces the policy on `iface` (attached with kernel::attach).
// `options.rule_slots` and `options.reuse_maps` are filled in here. Nothing
// changes on any error before the swap; a failed TC swap puts the old XDP
// program back. Serialised with other reloads by a lock on the pin directory.
Result<ReloadReport> reload(const compile::CompiledPolicy& policy, DatapathOptions options,
                            const std::string& iface,
                            const std::string& pin_root = kDefaultPinRoot);

}  // namespace xdpguard::kernel
