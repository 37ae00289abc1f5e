// Which network namespace this process runs in: bpffs is not per-namespace,
// so pin names (pin_dir.hpp) depend on it.
#pragma once

#include <cstdint>

#include "kernel/result.hpp"

namespace xdpguard::kernel {

enum class NetnsCertainty { Initial, Other, Unknown };

// Inode of this thread's network namespace.
Result<uint64_t> current_netns_inode();

// Whether the namespace with inode `self` is the initial one; Unknown when
// this process may not tell (see netns.cpp).
Result<NetnsCertainty> where_am_i(uint64_t self);

}  // namespace xdpguard::kernel
