#include "telemetry/metrics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "telemetry/drops.hpp"

namespace xdpguard::telemetry {

std::string collect_metrics(const std::vector<std::string>& ifaces, const AgentSnapshot* agent,
                            const std::function<uint64_t(size_t)>& received,
                            const std::string& pin_root) {
  std::vector<InterfaceSnapshot> snaps;
  std::vector<InterfaceError> failed;
  for (size_t i = 0; i < ifaces.size(); ++i) {
    auto stats = kernel::read_stats(ifaces[i], pin_root);
    if (!stats) {
      failed.push_back({ifaces[i], stats.error().message});
      continue;
    }
    InterfaceSnapshot s;
    s.stats = std::move(*stats);
    // Pins of a build without drop telemetry: the events metrics stay zero.
    if (auto ev = read_event_counters(ifaces[i], pin_root)) s.events = *ev;
    if (received) s.events_received = received(i);
    snaps.push_back(std::move(s));
  }
  return render_metrics(snaps, failed, agent);
}

kernel::Status write_file_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // node_exporter reads only *.prom: a dotfile temporary is never picked up half-written.
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp." +
                            std::to_string(::getpid()))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return kernel::errno_error(errno, "cannot create " + tmp);
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return kernel::errno_error(err, "cannot write " + tmp);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return kernel::errno_error(err, "cannot sync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return kernel::errno_error(err, "cannot rename " + tmp + " to " + path);
  }
  return {};
}

}  // namespace xdpguard::telemetry
