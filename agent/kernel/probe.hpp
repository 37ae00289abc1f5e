// Can this kernel run xdpguard? Checked before loading so that a missing
// feature is one clear line instead of a verifier or map-creation error.
#pragma once

#include <string>

#include "kernel/result.hpp"

namespace xdpguard::kernel {

// The oldest kernel the datapath is written for (no newer BPF features used).
inline constexpr const char* kMinimumKernel = "Linux 5.14";

// XDP programs and the HASH, LRU_HASH and PERCPU_ARRAY map types.
Status probe_bpf_features();

// `path` (or its closest existing parent, since the pin root may not exist
// yet) must be on a mounted bpffs.
Status check_bpffs(const std::string& path);

}  // namespace xdpguard::kernel
