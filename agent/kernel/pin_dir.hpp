// Where an interface's pins live: one directory per interface (and network
// namespace) under the pin root, which is all that `detach`, `stats` and
// `flows` need later.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "kernel/netns.hpp"
#include "kernel/result.hpp"

namespace xdpguard::kernel {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/xdpguard";

// <pin_root>/<iface> in the initial network namespace; in any other,
// <pin_root>/<iface>@netns<inode of the namespace>, so two namespaces with an
// interface of the same name never share pins (bpffs is not per-namespace).
// When this process cannot tell whether it runs in the initial namespace (see
// choose_pin_dir), it uses the namespaced name unless pins under the other
// name belong to this namespace's interface.
Result<std::string> pin_dir(const std::string& iface,
                            const std::string& pin_root = kDefaultPinRoot);

// The decision inside pin_dir, apart from the system calls: `base` is
// <pin_root>/<iface>; `attached_here(dir)` says whether the XDP program
// pinned in dir is attached to the interface in this namespace.
std::string choose_pin_dir(const std::string& base, uint64_t self_inode, NetnsCertainty where,
                           const std::function<bool(const std::string&)>& exists,
                           const std::function<bool(const std::string&)>& attached_here);

}  // namespace xdpguard::kernel
