// What learning saw, kept on disk so that a learning window can span days:
// the learn maps live as long as the pins, and a detach or a reboot ends them.
//
// Per interface, in $XDPGUARD_LEARN_DIR or /var/lib/xdpguard/learn, under the
// pin directory's name (IF or IF@netns<inode>):
//   current  the last copy of the maps (first line: their generation, the
//            boot id and learn_peers' map id)
//   earlier  what the maps of earlier generations saw, merged
// A copy of another generation is merged into `earlier` when found: the maps
// it copied are gone, so nothing is counted twice. `xdpguard run` copies
// every 5 minutes and when it stops; `xdpguard learn` reads the maps plus
// what was kept.
#pragma once

#include <string>
#include <vector>

#include "daemon/agent.hpp"
#include "kernel/pin_readers.hpp"
#include "kernel/result.hpp"
#include "learn/observations.hpp"

namespace xdpguard::daemon {

// The pins' observations with rule ids and wall-clock seconds.
learn::Observations observations_of(const kernel::PinnedLearn& pins);

// Writes `current` for `pins` (moving a copy of older maps to `earlier` first).
kernel::Status keep_learned(const std::string& iface, const kernel::PinnedLearn& pins);

// What maps other than `pins`' saw: `earlier`, plus `current` when it copied
// other maps. Errors: unreadable or damaged files.
kernel::Result<learn::Observations> learned_earlier(const std::string& iface,
                                                    const kernel::PinnedLearn& pins);

// Removes what was kept for `iface` (`xdpguard learn --forget`).
kernel::Status forget_learned(const std::string& iface);

// The daemon's part: copies the maps of every learning interface periodically
// and when the agent stops.
class LearnKeeper : public AgentListener {
 public:
  explicit LearnKeeper(Agent& agent) : agent_(agent) { agent.add_listener(this); }
  void on_ready(const std::vector<std::string>& ifaces) override;
  void on_stop() override { keep_all(); }

 private:
  void keep_all();
  Agent& agent_;
  std::vector<std::string> ifaces_;
};

}  // namespace xdpguard::daemon
