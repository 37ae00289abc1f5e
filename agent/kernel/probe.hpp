// Can this kernel run xdpguard? Checked before loading so that a missing
// feature is one clear line instead of a verifier or map-creation error.
#pragma once

#include <cstdint>
#include <string>

#include "kernel/result.hpp"

namespace xdpguard::kernel {

// The oldest kernel the datapath is written for (no newer BPF features used).
inline constexpr const char* kMinimumKernel = "Linux 5.14";

// XDP programs and the HASH, LRU_HASH and PERCPU_ARRAY map types.
Status probe_bpf_features();

// The datapath's clock (enum xdpg_clock in maps.h): XDPG_CLOCK_COARSE when
// XDP and TC programs may call bpf_ktime_get_coarse_ns (Linux 5.11+), else
// XDPG_CLOCK_PRECISE. Probed once per process.
uint8_t probe_datapath_clock();
const char* clock_name(uint8_t clock);  // "coarse", "precise"
// Now on the datapath clock `clock`, from userspace: the clock_gettime clock
// the helper reads (CLOCK_MONOTONIC_COARSE or CLOCK_MONOTONIC).
uint64_t clock_now_ns(uint8_t clock);

// `path` (or its closest existing parent, since the pin root may not exist
// yet) must be on a mounted bpffs.
Status check_bpffs(const std::string& path);

}  // namespace xdpguard::kernel
