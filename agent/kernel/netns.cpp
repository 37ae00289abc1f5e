#include "kernel/netns.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

namespace xdpguard::kernel {
namespace {

Result<uint64_t> inode_of(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return errno_error(errno, std::string("cannot stat ") + path);
  return static_cast<uint64_t>(st.st_ino);
}

// Linux 6.18 gives the initial network namespace a fixed inode
// (PROC_NET_INIT_INO); before that it was numbered like any other.
constexpr uint64_t kInitNetInode = 0xEFFFFFF9;

}  // namespace

Result<uint64_t> current_netns_inode() { return inode_of("/proc/thread-self/ns/net"); }

// Compared with pid 1's namespace where we may read it. Containers and
// capability-bounded services may not (the ptrace access check), and before
// Linux 6.18 the inode alone does not tell: then we do not know.
Result<NetnsCertainty> where_am_i(uint64_t self) {
  if (self == kInitNetInode) return NetnsCertainty::Initial;
  auto init = inode_of("/proc/1/ns/net");
  if (init) return self == *init ? NetnsCertainty::Initial : NetnsCertainty::Other;
  if (init.error().code == EACCES || init.error().code == EPERM) {
    spdlog::debug("{}; cannot tell whether netns {} is the initial one", init.error().message,
                  self);
    return NetnsCertainty::Unknown;
  }
  return init.error();
}

}  // namespace xdpguard::kernel
