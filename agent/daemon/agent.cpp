#include "daemon/agent.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>

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

std::optional<std::map<std::string, PreparedPolicy>> Agent::prepare_all() {
  std::map<std::string, PreparedPolicy> out;
  bool ok = true;
  Problems logged;  // an error in the file is every interface's: said once
  for (const auto& iface : config_.ifaces) {
    auto prepared = prepare_policy(config_.apply, iface);
    if (auto* problems = std::get_if<Problems>(&prepared)) {
      Problems fresh;
      for (const auto& p : *problems)
        if (std::find(logged.begin(), logged.end(), p) == logged.end()) fresh.push_back(p);
      spdlog::error("{}: the policy cannot be put in force here{}", iface,
                    fresh.empty() ? " (the errors above)" : ":");
      log_problems(fresh);
      logged.insert(logged.end(), fresh.begin(), fresh.end());
      ok = false;
      continue;
    }
    out.emplace(iface, std::move(std::get<PreparedPolicy>(prepared)));
  }
  if (!ok) return std::nullopt;
  // The warnings are the file's, the same for every view: said once.
  if (!out.empty())
    for (const auto& w : out.begin()->second.warnings) spdlog::warn("{}", w.to_string());
  return out;
}

bool Agent::start() {
  // Every view first: an interface the policy refuses stops the start before
  // any interface is touched.
  auto all = prepare_all();
  if (!all) return false;
  policies_ = std::move(*all);
  bool ok = true;
  for (const auto& iface : config_.ifaces) ok = bring_up(policies_.at(iface), iface) && ok;
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
  auto it = policies_.find(iface);
  if (it == policies_.end()) return false;
  if (!bring_up(it->second, iface)) return false;
  for (auto* l : listeners_) l->on_reattach(iface);
  return true;
}

void Agent::reload_all() {
  sd_notify("RELOADING=1");
  spdlog::info("SIGHUP: reloading {}", config_.apply.policy_path);
  auto fail = [this](const std::string& why) {
    spdlog::error("reload rejected: {}; the policy in force is unchanged on every interface",
                  why);
    ++failed_reloads_;
    for (auto* l : listeners_)
      for (const auto& iface : config_.ifaces) l->on_reload(iface, false);
    sd_notify("READY=1");
  };
  auto next = prepare_all();
  if (!next) return fail("the new policy does not apply to every interface");
  // All or nothing across interfaces: when one fails to load, those already
  // reloaded go back to what they had.
  std::vector<std::string> done;
  for (const auto& iface : config_.ifaces) {
    const auto& p = next->at(iface);
    auto rep = reload_prepared(p, iface);
    if (!rep) {
      spdlog::error("{}: reload failed: {}", iface, rep.error().message);
      for (const auto& back : done)
        if (auto undo = reload_prepared(policies_.at(back), back); !undo)
          spdlog::error("{}: could not go back to the previous policy: {}", back,
                        undo.error().message);
        else
          spdlog::info("{}: back to the previous policy", back);
      return fail(iface + " could not load it");
    }
    done.push_back(iface);
    spdlog::info("{}: reloaded to {} (XDP id {} -> {}; rules kept {}, added {}, removed {})",
                 iface, p.path, rep->old_prog_id, rep->new_prog_id, rep->kept, rep->added,
                 rep->removed);
  }
  policies_ = std::move(*next);
  reloads_ += config_.ifaces.size();
  for (auto* l : listeners_)
    for (const auto& iface : config_.ifaces) l->on_reload(iface, true);
  sd_notify("READY=1");
  status(fmt::format("enforcing {} on {} interface(s); {} reloads, {} failed",
                     config_.apply.policy_path, config_.ifaces.size(), reloads_,
                     failed_reloads_));
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
