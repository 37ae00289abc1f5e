// The XDP program and its maps, loaded into the kernel and filled from a
// compiled policy, not yet attached anywhere. Attaching and pinning is
// kernel/pins.hpp; BPF_PROG_TEST_RUN works on an unattached Datapath, which is
// what the BPF tests use.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "compile/compiler.hpp"
#include "kernel/result.hpp"
#include "xdpguard/maps.h"

struct bpf_map;
struct bpf_program;

namespace xdpguard::kernel {

namespace gen {
struct xdpguard;  // the bpftool skeleton (kernel/skeleton.hpp)
}

enum class MapId { PortTable, PeersV4, PeersV6, RuleCounters, ReasonCounters, Frags, RuleMeta, Info };
inline constexpr std::array kAllMaps = {MapId::PortTable,    MapId::PeersV4,
                                        MapId::PeersV6,      MapId::RuleCounters,
                                        MapId::ReasonCounters, MapId::Frags,
                                        MapId::RuleMeta,     MapId::Info};
// The map's name in the object, also its pin file name.
const char* map_name(MapId);
// Pin file name of the program.
inline constexpr const char* kProgramName = "xdpguard_ingress";

struct DatapathOptions {
  // Lifetime of a first fragment's recorded decision (docs/datapath.md 2.2).
  uint64_t frag_timeout_ns = 30'000'000'000ULL;
  // Until the loader attaches the egress program, nothing records flows, so
  // ingress must admit replies without them (docs/datapath.md, egress off).
  uint8_t egress_mode = XDPG_EGRESS_OFF;
};

class Datapath {
 public:
  // Probe kernel features, open the object, configure, load (the verifier log
  // goes to spdlog on failure) and fill every map from `policy`.
  static Result<Datapath> load(const compile::CompiledPolicy& policy,
                               const DatapathOptions& options = {});

  Datapath(Datapath&&) noexcept;
  Datapath& operator=(Datapath&&) noexcept;
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;
  ~Datapath();

  int prog_fd() const;
  int map_fd(MapId) const;
  bpf_program* program() const;
  bpf_map* map(MapId) const;
  gen::xdpguard* skeleton() const { return skel_.get(); }

  // Runs the program once on `frame` (BPF_PROG_TEST_RUN); returns the XDP
  // action (XDP_PASS, XDP_DROP, ...). Counters and frags are updated as for
  // a real packet.
  Result<int> test_run(std::span<const uint8_t> frame) const;

  // Summed over CPUs; XDPG_MAX_RULES and XDPG_DROP_REASON_COUNT entries.
  Result<std::vector<xdpg_rule_counters>> rule_counters() const;
  Result<std::vector<xdpg_reason_counters>> reason_counters() const;
  // Zero the counters and forget recorded fragments, between test cases.
  Status reset_state() const;

 private:
  struct SkeletonDeleter {
    void operator()(gen::xdpguard*) const;
  };
  explicit Datapath(std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel);
  std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel_;
};

}  // namespace xdpguard::kernel
