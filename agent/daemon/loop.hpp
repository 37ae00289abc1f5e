// The daemon's event loop: signals (through a signalfd), file descriptors
// and periodic timers on one poll(2), in one thread. Components plug in here:
// the lifecycle (SIGHUP reload, SIGTERM exit) today, telemetry (a ring
// buffer's epoll fd, a metrics listener, a textfile timer) next.
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace xdpguard::daemon {

class EventLoop {
 public:
  // Blocks `signals` in this thread (and so in threads started later) and
  // delivers them through a signalfd.
  kernel::Status init(std::initializer_list<int> signals);

  void on_signal(int signo, std::function<void()> handler);
  // `handler` runs whenever `fd` is readable; the caller keeps `fd` open.
  void add_fd(int fd, std::function<void()> handler);
  // `handler` runs about every `period` (not before it has elapsed).
  void add_timer(std::chrono::milliseconds period, std::function<void()> handler);

  // Runs until stop(); returns the status given to stop().
  int run();
  void stop(int status = 0);

 private:
  struct Watch {
    int fd;
    std::function<void()> handler;
  };
  struct Timer {
    std::chrono::milliseconds period;
    std::chrono::steady_clock::time_point next;
    std::function<void()> handler;
  };
  struct Signal {
    int signo;
    std::function<void()> handler;
  };
  kernel::Fd signal_fd_;
  std::vector<Signal> signals_;
  std::vector<Watch> watches_;
  std::vector<Timer> timers_;
  bool stopping_ = false;
  int status_ = 0;
};

// systemd's readiness protocol, without libsystemd: one datagram to
// $NOTIFY_SOCKET ("READY=1", "STATUS=...", "RELOADING=1", "STOPPING=1").
// Does nothing when the variable is unset.
void sd_notify(std::string_view state);

}  // namespace xdpguard::daemon
