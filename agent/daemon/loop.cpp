#include "daemon/loop.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace xdpguard::daemon {

kernel::Status EventLoop::init(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err)
    return kernel::errno_error(err, "cannot block signals");
  signal_fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_.valid()) return kernel::errno_error(errno, "cannot create a signalfd");
  return {};
}

void EventLoop::on_signal(int signo, std::function<void()> handler) {
  signals_.push_back({signo, std::move(handler)});
}

void EventLoop::add_fd(int fd, std::function<void()> handler) {
  watches_.push_back({fd, std::move(handler)});
}

void EventLoop::add_timer(std::chrono::milliseconds period, std::function<void()> handler) {
  timers_.push_back({period, std::chrono::steady_clock::now() + period, std::move(handler)});
}

void EventLoop::stop(int status) {
  stopping_ = true;
  status_ = status;
}

int EventLoop::run() {
  using clock = std::chrono::steady_clock;
  while (!stopping_) {
    std::vector<pollfd> fds;
    fds.push_back({signal_fd_.get(), POLLIN, 0});
    for (const auto& w : watches_) fds.push_back({w.fd, POLLIN, 0});
    int timeout = -1;
    auto now = clock::now();
    for (const auto& t : timers_) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.next - now).count();
      ms = std::max<long long>(ms, 0);
      timeout = timeout < 0 ? static_cast<int>(ms) : std::min(timeout, static_cast<int>(ms));
    }
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      return 1;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si))
        for (const auto& s : signals_)
          if (static_cast<uint32_t>(s.signo) == si.ssi_signo) s.handler();
    }
    for (size_t i = 1; n > 0 && i < fds.size() && !stopping_; ++i)
      if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) watches_[i - 1].handler();
    now = clock::now();
    for (auto& t : timers_) {
      if (stopping_ || now < t.next) continue;
      t.handler();
      t.next = now + t.period;
    }
  }
  return status_;
}

void sd_notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  // '@' names an abstract socket: a leading NUL, no terminator counted.
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr), addr_len) < 0)
    spdlog::debug("sd_notify to {}: {}", path, std::strerror(errno));
  ::close(fd);
}

}  // namespace xdpguard::daemon
