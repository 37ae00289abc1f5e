#include "kernel/result.hpp"

#include <cstring>

namespace xdpguard::kernel {

Error errno_error(int err, const std::string& what) {
  if (err < 0) err = -err;
  return Error{err, what + ": " + std::strerror(err)};
}

}  // namespace xdpguard::kernel
