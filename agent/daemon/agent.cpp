#include "daemon/agent.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include "kernel/reload.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/probe.hpp"

namespace xdpguard::daemon {
namespace {

// Whether what is pinned is exactly what `p` would load.
bool same_policy(const xdpg_info& pinned, const PreparedPolicy& p) {
  const xdpg_info& want = p.compiled.info;
  return pinned.policy_hash == want.policy_hash &&
         kernel::fixed_string(pinned.profile, sizeof(pinned.profile)) ==
             kernel::fixed_string(want.profile, sizeof(want.profile)) &&
         (pinned.audit_mode != 0) == p.audit;
}

void log_problems(const Problems& problems) {
  for (const auto& line : problems) spdlog::error("{}", line);
}

}  // namespace

void Agent::status(const std::string& text) {
  spdlog::info("{}", text);
  sd_notify("STATUS=" + text);
}

bool Agent::start() {
  auto prepared = prepare_policy(config_.apply);
  if (auto* problems = std::get_if<Problems>(&prepared)) {
    log_problems(*problems);
    return false;
  }
  policy_ = std::move(std::get<PreparedPolicy>(prepared));
  const auto& p = *policy_;
  for (const auto& w : p.warnings) spdlog::warn("{}", w.to_string());
  bool ok = true;
  for (const auto& iface : config_.ifaces) ok = bring_up(p, iface) && ok;
  return ok;
}

bool Agent::bring_up(const PreparedPolicy& p, const std::string& iface) {
  auto found = kernel::inspect(iface);
  if (!found) {
    spdlog::error("{}: {}", iface, found.error().message);
    return false;
  }
  if (found->installed) {
    const auto& inst = *found->installed;
    if (same_policy(inst.info, p)) {
      spdlog::info("{}: adopted the attached programs (XDP id {}, egress id {}), policy {} "
                   "already in force{}",
                   iface, inst.prog_id, inst.egress_prog_id, p.path, p.audit ? " (audit)" : "");
      return true;
    }
    auto rep = reload_prepared(p, iface);
    if (!rep) {
      spdlog::error("{}: adopted, but reloading {} failed: {}", iface, p.path,
                    rep.error().message);
      return false;
    }
    ++reloads_;
    spdlog::info("{}: adopted and reloaded to {} (XDP id {} -> {})", iface, p.path,
                 rep->old_prog_id, rep->new_prog_id);
    return true;
  }
  if (found->pins_exist) spdlog::info("{}: {}; attaching afresh", iface, found->why_not);
  if (auto st = attach_prepared(p, iface, config_.mode); !st) {
    spdlog::error("{}: {}", iface, st.error().message);
    return false;
  }
  spdlog::info("{}: attached ({} mode), policy {}{}; XDP multi-buffer {}", iface,
               kernel::to_string(config_.mode), p.path, p.audit ? " in audit mode" : "",
               kernel::probe_xdp_frags() ? "yes" : "no");
  return true;
}

bool Agent::reattach(const std::string& iface) {
  if (!policy_) return false;
  if (!bring_up(*policy_, iface)) return false;
  for (auto* l : listeners_) l->on_reattach(iface);
  return true;
}

void Agent::reload_all() {
  sd_notify("RELOADING=1");
  spdlog::info("SIGHUP: reloading {}", config_.apply.policy_path);
  auto prepared = prepare_policy(config_.apply);
  if (auto* problems = std::get_if<Problems>(&prepared)) {
    log_problems(*problems);
    spdlog::error("reload rejected; the policy in force is unchanged");
    ++failed_reloads_;
    for (auto* l : listeners_)
      for (const auto& iface : config_.ifaces) l->on_reload(iface, false);
    sd_notify("READY=1");
    return;
  }
  policy_ = std::move(std::get<PreparedPolicy>(prepared));
  const auto& p = *policy_;
  for (const auto& iface : config_.ifaces) {
    auto rep = reload_prepared(p, iface);
    if (rep) {
      ++reloads_;
      spdlog::info("{}: reloaded to {} (XDP id {} -> {}; rules kept {}, added {}, removed {})",
                   iface, p.path, rep->old_prog_id, rep->new_prog_id, rep->kept, rep->added,
                   rep->removed);
    } else {
      ++failed_reloads_;
      spdlog::error("{}: reload failed, the policy in force is unchanged: {}", iface,
                    rep.error().message);
    }
    for (auto* l : listeners_) l->on_reload(iface, rep.ok());
  }
  sd_notify("READY=1");
  status(fmt::format("enforcing {} on {} interface(s); {} reloads, {} failed", p.path,
                     config_.ifaces.size(), reloads_, failed_reloads_));
}

int Agent::run() {
  // Signals first: a SIGTERM while attaching is then handled, not fatal.
  if (auto st = loop_.init({SIGHUP, SIGTERM, SIGINT}); !st) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  // Subscribed before start(): a link change during the attach is not missed.
  auto links = LinkMonitor::open(config_.ifaces, {[this](const std::string& iface) {
                                   return reattach(iface);
                                 }});
  if (!links) spdlog::warn("interface events are not watched: {}", links.error().message);
  if (!start()) {
    spdlog::error("not every interface could be adopted or attached; exiting (interfaces "
                  "already attached stay attached)");
    return 1;
  }
  if (links) {
    links_ = std::move(*links);
    loop_.add_fd(links_->fd(), [this] { links_->consume(); });
  }
  loop_.on_signal(SIGHUP, [this] { reload_all(); });
  auto stop = [this] {
    spdlog::info("exiting; the firewall stays attached (`xdpguard detach` removes it)");
    sd_notify("STOPPING=1");
    for (auto* l : listeners_) l->on_stop();
    loop_.stop(0);
  };
  loop_.on_signal(SIGTERM, stop);
  loop_.on_signal(SIGINT, stop);
  for (auto* l : listeners_) l->on_ready(config_.ifaces);
  sd_notify("READY=1");
  status(fmt::format("enforcing {} on {} interface(s)", config_.apply.policy_path,
                     config_.ifaces.size()));
  return loop_.run();
}

}  // namespace xdpguard::daemon
