// The XDP ingress and TC egress programs and their maps, loaded into the
// kernel and filled from a compiled policy, not yet attached anywhere.
// Attaching and pinning is kernel/attach.hpp; BPF_PROG_TEST_RUN works on an
// unattached Datapath, which is what the BPF tests use.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compile/compiler.hpp"
#include "kernel/maps_io.hpp"
#include "kernel/result.hpp"
#include "xdpguard/maps.h"

struct bpf_map;
struct bpf_program;

namespace xdpguard::kernel {

namespace gen {
struct xdpguard;  // the bpftool skeleton (kernel/skeleton.hpp)
}

enum class MapId {
  PortTable, PeersV4, PeersV6, RuleCounters, ReasonCounters, Frags, RuleMeta, Info,
  Flows, FlowCounters, RuleFlags, EgressRuleCounters, EgressReasonCounters,
  Events, EventLimits, TopPorts, TopPeers,  // drop telemetry (agent/telemetry/)
  FlowsV4,  // IPv4 flows (16-byte key); Flows holds the IPv6 ones
  LearnPeers, LearnConfirmed, LearnOverflow,  // learning the peer sets (docs/learn.md)
};
inline constexpr std::array kAllMaps = {
    MapId::PortTable,   MapId::PeersV4,      MapId::PeersV6,   MapId::RuleCounters,
    MapId::ReasonCounters, MapId::Frags,     MapId::RuleMeta,  MapId::Info,
    MapId::Flows,       MapId::FlowCounters, MapId::RuleFlags, MapId::EgressRuleCounters,
    MapId::EgressReasonCounters, MapId::Events, MapId::EventLimits, MapId::TopPorts,
    MapId::TopPeers, MapId::FlowsV4, MapId::LearnPeers, MapId::LearnConfirmed,
    MapId::LearnOverflow};
// The map's name in the object, also its pin file name.
const char* map_name(MapId);
// Pin file names of the programs (their names in the object).
inline constexpr const char* kProgramName = "xdpguard_ingress";
inline constexpr const char* kEgressProgramName = "xdpguard_egress";

// Defaults are the BPF object's rodata defaults (bpf/xdpguard.bpf.c).
// What the verifier reported for one program (BPF_LOG_STATS, Linux 5.2+):
// the figures docs/kernels.md tabulates per kernel.
struct VerifierStats {
  std::string program;
  uint32_t insns_processed = 0;  // "processed N insns": the complexity spent
  uint32_t insns_limit = 0;      // "(limit N)": that kernel's complexity limit
  uint32_t peak_states = 0;
  uint64_t verification_us = 0;  // "verification time N usec"; 0 if not printed
  uint32_t xlated_insns = 0;     // program size after the verifier's rewrites
};

// The figures of one program's BPF_LOG_STATS log; insns_limit 0 if the log
// has no "processed" line.
VerifierStats parse_verifier_stats(std::string_view log);

struct DatapathOptions {
  // Timeouts are in ns of the datapath clock; 0 means "already expired"
  // (docs/datapath.md 8.3; tests use it, policies allow 1 s at least).
  // Lifetime of a first fragment's recorded decision (docs/datapath.md 2.2).
  uint64_t frag_timeout_ns = 30'000'000'000ULL;
  // enum xdpg_egress_mode. With OFF nothing records flows and ingress admits
  // replies statelessly; the policy default is ENFORCE.
  uint8_t egress_mode = XDPG_EGRESS_ENFORCE;
  // Flow lifetimes since the last packet either way (docs/datapath.md 8.4).
  uint64_t tcp_established_timeout_ns = 3'600'000'000'000ULL;
  uint64_t tcp_closing_timeout_ns = 30'000'000'000ULL;
  uint64_t udp_timeout_ns = 60'000'000'000ULL;
  // max_entries of each flows LRU map (IPv4, IPv6), set before load.
  uint32_t flow_table_size = XDPG_FLOW_ENTRIES;
  // Audit mode: decide and count as in enforce mode, pass every packet.
  bool audit = false;
  // Rule index -> slot of rule_counters/rule_meta, one per rule of the
  // policy, distinct, < XDPG_MAX_RULES. Empty: identity (a first load; what
  // the differential tests assume).
  std::vector<uint8_t> rule_slots;
  // Maps taken over from a datapath already in the kernel instead of created
  // (a reload shares counters, flows and fragments with its predecessor).
  // The fds are not owned; the object reuses them with bpf_map__reuse_fd.
  std::vector<std::pair<MapId, int>> reuse_maps;
  // Use bpf_ktime_get_ns even where the coarse clock exists: the clock older
  // kernels get (kernel::probe_datapath_clock), for tests and the benchmark.
  bool precise_clock = false;
  // Load the plain XDP program even where multi-buffer XDP exists
  // (kernel::probe_xdp_frags): what kernels before 5.18 get, for tests.
  bool single_buffer = false;
  // Fill the maps one update per entry even where batch updates exist: the
  // path kernels before 5.6 take, forced by tests on newer ones.
  bool per_element_fill = false;
  // When set, the verifier's statistics of each program are appended here
  // (the load asks for BPF_LOG_STATS).
  std::vector<VerifierStats>* verifier_stats = nullptr;
  // Drop events per second and burst, per CPU, direction and drop reason
  // (the kernel's token bucket, maps.h event_limits); 0 events/s: none.
  uint32_t event_rate = 10;
  uint32_t event_burst = 20;
  // Observe the peers of the rules in CompiledPolicy::learn_rules (and, in
  // audit mode, every rule's would-drops of its peer set) and the addresses
  // that prove they receive the host's packets (docs/learn.md).
  bool learn = false;
  // max_entries of learn_peers and of learn_confirmed, set before load.
  uint32_t learn_table_size = XDPG_LEARN_ENTRIES;
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

  int prog_fd() const;         // XDP ingress
  int egress_prog_fd() const;  // TC egress
  int map_fd(MapId) const;
  bpf_program* program() const;
  bpf_program* egress_program() const;
  bpf_map* map(MapId) const;
  gen::xdpguard* skeleton() const { return skel_.get(); }
  // enum xdpg_clock the programs were loaded with.
  uint8_t clock() const;
  // The XDP program was loaded multi-buffer aware (docs/datapath.md 10).
  bool xdp_frags() const;

  // Runs the program once on `frame` (BPF_PROG_TEST_RUN); returns the XDP
  // action (XDP_PASS, XDP_DROP, ...). Counters and frags are updated as for
  // a real packet.
  Result<int> test_run(std::span<const uint8_t> frame) const;

  // Runs the TC egress program once on `frame` (an Ethernet frame); returns
  // the TC action (TC_ACT_OK or TC_ACT_SHOT). Flows, counters and frags are
  // updated as for a real packet.
  Result<int> test_run_egress(std::span<const uint8_t> frame) const;

  // Summed over CPUs; XDPG_MAX_RULES and XDPG_DROP_REASON_COUNT entries.
  Result<std::vector<xdpg_rule_counters>> rule_counters() const;
  Result<std::vector<xdpg_reason_counters>> reason_counters() const;
  Result<std::vector<xdpg_rule_counters>> egress_rule_counters() const;
  Result<std::vector<xdpg_reason_counters>> egress_reason_counters() const;
  Result<LearnSnapshot> learned() const;
  // Zero every counter (both directions, flow_counters) and forget recorded
  // fragments and flows, between test cases.
  Status reset_state() const;

 private:
  struct SkeletonDeleter {
    void operator()(gen::xdpguard*) const;
  };
  explicit Datapath(std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel);
  std::unique_ptr<gen::xdpguard, SkeletonDeleter> skel_;
};

}  // namespace xdpguard::kernel
