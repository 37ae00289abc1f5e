#include "kernel/pin_dir.hpp"

#include <net/if.h>

#include <filesystem>

#include "kernel/netdev.hpp"

namespace xdpguard::kernel {
using namespace detail;

std::string choose_pin_dir(const std::string& base, uint64_t self_inode, NetnsCertainty where,
                           const std::function<bool(const std::string&)>& exists,
                           const std::function<bool(const std::string&)>& attached_here) {
  const std::string own_ns = base + "@netns" + std::to_string(self_inode);
  const std::string primary = where == NetnsCertainty::Initial ? base : own_ns;
  if (where == NetnsCertainty::Other || exists(primary)) return primary;
  // Pins made by a process that answered the question the other way (a root
  // shell vs. a capability-bounded daemon) are still ours if the program
  // pinned there is the one attached to this namespace's interface.
  const std::string other = where == NetnsCertainty::Initial ? own_ns : base;
  return exists(other) && attached_here(other) ? other : primary;
}

Result<std::string> pin_dir(const std::string& iface, const std::string& pin_root) {
  if (iface.empty() || iface.size() >= IF_NAMESIZE || iface.find('/') != std::string::npos ||
      iface == "." || iface == "..")
    return plain_error("invalid interface name '" + iface + "'");
  auto self = current_netns_inode();
  if (!self) return self.error();
  auto where = where_am_i(*self);
  if (!where) return where.error();
  auto exists = [](const std::string& dir) {
    std::error_code ec;
    return std::filesystem::is_directory(dir, ec);
  };
  auto attached_here = [&iface](const std::string& dir) {
    auto ifindex = ifindex_of(iface);
    if (!ifindex) return false;
    auto state = query_xdp(*ifindex, iface);
    Fd pinned = open_pinned_prog(dir);
    if (!state || state->any() == 0 || !pinned.valid()) return false;
    auto id = prog_id_of(pinned.get());
    return id && *id == state->any();
  };
  return choose_pin_dir(pin_root + "/" + iface, *self, *where, exists, attached_here);
}

}  // namespace xdpguard::kernel
