// Attaching the datapath to an interface so that it outlives the command:
// the program is attached through netlink (no bpf_link) and the program and
// every map are pinned under one directory per interface, which is all that
// `detach` and `stats` need later.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "classify/decision.hpp"
#include "kernel/datapath.hpp"
#include "kernel/result.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::kernel {

inline constexpr const char* kDefaultPinRoot = "/sys/fs/bpf/xdpguard";

enum class XdpMode { Native, Generic };
const char* to_string(XdpMode);
std::optional<XdpMode> xdp_mode_from_string(std::string_view);

// <pin_root>/<iface> in the initial network namespace; in any other,
// <pin_root>/<iface>@netns<inode of the namespace>, so two namespaces with an
// interface of the same name never share pins (bpffs is not per-namespace).
Result<std::string> pin_dir(const std::string& iface,
                            const std::string& pin_root = kDefaultPinRoot);

// Pins the program and maps, then attaches in `mode` without replacing any
// program already on the interface. All or nothing: on failure, whatever
// this call pinned or attached is undone.
Status attach(const Datapath& datapath, const std::string& iface, XdpMode mode,
              const std::string& pin_root = kDefaultPinRoot);

// Detaches our program (only if it is the one attached) and removes the pins.
// Pins left without an attached program are removed too.
Status detach(const std::string& iface, const std::string& pin_root = kDefaultPinRoot);

struct RuleStats {
  uint32_t index = 0;
  std::string id;
  std::string row;
  xdpg_rule_counters counters{};
};

struct ReasonStats {
  DropReason reason = DropReason::NoRule;
  xdpg_reason_counters counters{};
};

struct PinnedStats {
  std::string iface;
  std::string pin_dir;
  std::string policy_name;
  std::string profile;
  uint64_t policy_hash = 0;
  std::optional<XdpMode> attached_mode;  // nullopt: pins exist, program not attached
  std::vector<RuleStats> rules;          // rule_count entries, by index
  std::vector<ReasonStats> reasons;      // every drop reason, `none` left out
};

// Everything from the pins alone (no policy needed).
Result<PinnedStats> read_stats(const std::string& iface,
                               const std::string& pin_root = kDefaultPinRoot);

}  // namespace xdpguard::kernel
