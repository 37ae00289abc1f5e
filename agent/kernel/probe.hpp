// Can this kernel run xdpguard? Checked before loading so that a missing
// feature is one clear line instead of a verifier or map-creation error.
#pragma once

#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace xdpguard::kernel {

// The oldest kernel the datapath is tested on (tests/vm/, docs/kernels.md).
// Its newest required feature is the ring buffer (5.8).
inline constexpr const char* kMinimumKernel = "Linux 5.10";

// XDP and TC programs, the map types, the ring buffer and bpf_jiffies64:
// everything the programs need that a kernel (or a distribution's backport)
// may lack, each named with the upstream release that brought it.
Status probe_bpf_features();

// The datapath's clock (enum xdpg_clock in maps.h): XDPG_CLOCK_COARSE when
// XDP and TC programs may call bpf_ktime_get_coarse_ns (Linux 5.11+), else
// XDPG_CLOCK_PRECISE. Probed once per process.
uint8_t probe_datapath_clock();
const char* clock_name(uint8_t clock);  // "coarse", "precise"

// Multi-buffer XDP (Linux 5.18+): whether this kernel loads an XDP program
// with BPF_F_XDP_HAS_FRAGS, which may then see frames of several buffers
// (MTU 9000) and read their length with bpf_xdp_get_buff_len. Probed once
// per process.
bool probe_xdp_frags();
// Now on the datapath clock `clock`, from userspace: the clock_gettime clock
// the helper reads (CLOCK_MONOTONIC_COARSE or CLOCK_MONOTONIC).
uint64_t clock_now_ns(uint8_t clock);

// `path` (or its closest existing parent, since the pin root may not exist
// yet) must be on a mounted bpffs.
Status check_bpffs(const std::string& path);

}  // namespace xdpguard::kernel
