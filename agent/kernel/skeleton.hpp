// Private to agent/kernel: the generated skeleton, wrapped in a namespace.
// bpftool names the skeleton struct after the object (`struct xdpguard`), which
// would collide with our namespace `xdpguard` in any file that sees both; the
// skeleton's own includes are pulled in first so the wrap covers only its
// declarations. maps.h too: the rodata names its structs (the peer probes),
// which must resolve to the global ones.
#pragma once

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>

#include "xdpguard/maps.h"

namespace xdpguard::kernel::gen {
#include "xdpguard.skel.h"
}  // namespace xdpguard::kernel::gen
