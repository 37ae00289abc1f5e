// `xdpguard run`: the foreground daemon. It adopts the programs already
// attached to each interface (or attaches them), reloads every interface from
// the policy file on SIGHUP, and exits on SIGTERM/SIGINT leaving enforcement
// in place: the pinned programs outlive the agent; detaching is explicit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/apply.hpp"
#include "daemon/link_monitor.hpp"
#include "daemon/loop.hpp"
#include "kernel/attach.hpp"

namespace xdpguard::daemon {

struct AgentConfig {
  std::vector<std::string> ifaces;
  ApplyOptions apply;  // policy file, profile, --audit, --force, --ssh-port
  kernel::XdpMode mode = kernel::XdpMode::Native;  // for interfaces it attaches
};

// What a component (telemetry) hears from the agent. All calls come from the
// event loop's thread.
class AgentListener {
 public:
  virtual ~AgentListener() = default;
  // Every interface adopted or attached; the pins are in place.
  virtual void on_ready(const std::vector<std::string>& /*ifaces*/) {}
  // After a reload attempt on `iface` (ok: the new policy is in force).
  virtual void on_reload(const std::string& /*iface*/, bool /*ok*/) {}
  // `iface` was re-created (or lost our programs) and re-attached: its pins,
  // the ring buffer included, are new maps; reopen them.
  virtual void on_reattach(const std::string& /*iface*/) {}
  virtual void on_stop() {}
};

class Agent {
 public:
  explicit Agent(AgentConfig config) : config_(std::move(config)) {}

  // Components register before run(): listeners, and fds/timers on loop().
  void add_listener(AgentListener* l) { listeners_.push_back(l); }
  EventLoop& loop() { return loop_; }

  // Until SIGTERM/SIGINT; the process exit code.
  int run();

  uint64_t reloads() const { return reloads_; }
  uint64_t failed_reloads() const { return failed_reloads_; }

 private:
  bool start();        // adopt or attach every interface
  // Adopts or attaches `p` on one interface; false (logged) on failure.
  bool bring_up(const PreparedPolicy& p, const std::string& iface);
  bool reattach(const std::string& iface);  // bring_up with its policy, for LinkMonitor
  // Every interface's view of the policy file, or nothing if any is refused.
  std::optional<std::map<std::string, PreparedPolicy>> prepare_all();
  void reload_all();   // SIGHUP: every interface or none
  void status(const std::string& text);

  AgentConfig config_;
  EventLoop loop_;
  std::vector<AgentListener*> listeners_;
  // Per interface, its view of the policy the daemon last read successfully
  // (startup or SIGHUP): what the interface has, and gets when it comes back.
  std::map<std::string, PreparedPolicy> policies_;
  std::unique_ptr<LinkMonitor> links_;
  uint64_t reloads_ = 0, failed_reloads_ = 0;
};

}  // namespace xdpguard::daemon
