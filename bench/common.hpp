// Shared pieces of xdpguard-bench: argument lookup, statistics, result
// records (JSON lines), policies built for the benchmark, and holding a
// program attached so BPF_PROG_TEST_RUN does not pay the XDP dispatcher swap.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "policy/model.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::bench {

// --key value pairs after the subcommand; a bare --flag maps to "1".
struct Args {
  std::map<std::string, std::string> kv;
  static Args parse(int argc, char** argv);
  std::string get(const std::string& key, const std::string& fallback = "") const;
  long num(const std::string& key, long fallback) const;
  bool has(const std::string& key) const { return kv.count(key) != 0; }
};

[[noreturn]] void die(const std::string& message);
uint64_t now_ns();  // CLOCK_MONOTONIC

struct Summary {
  double median = 0, min = 0, max = 0, q1 = 0, q3 = 0;
  size_t n = 0;
};
Summary summarize(std::vector<double> samples);

// One JSON object per line, appended to the file given by --out (if any).
class Records {
 public:
  explicit Records(const std::string& path);
  ~Records();
  // fields: already-encoded JSON values (use jstr for strings).
  void add(const std::vector<std::pair<std::string, std::string>>& fields);

 private:
  std::FILE* f_ = nullptr;
};
std::string jstr(const std::string& s);
std::string jnum(double v);

// A policy parsed, selected and compiled, with how long each step took.
struct BuiltPolicy {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
  compile::CompiledPolicy compiled;
  double parse_ms = 0, compile_ms = 0;
};
// Dies with the diagnostics on a policy error. `base_dir` resolves `file:`.
BuiltPolicy build_policy(std::string_view yaml, const std::string& base_dir = ".");

// The default policy text with `set`'s cidrs line replaced by `cidrs_yaml`
// (a YAML value, e.g. "[10.0.0.0/8]" or a `file:` line when `as_file`).
std::string default_policy_with_set(const std::string& set, const std::string& replacement,
                                    bool as_file = false);

struct Loaded {
  kernel::Datapath dp;
  double load_ms = 0;
};
Loaded load_datapath(const compile::CompiledPolicy&, const kernel::DatapathOptions& = {});

// Sum of memlock of every map of the program's object (bytes), and of the
// named maps alone.
uint64_t map_memlock(int map_fd);
uint64_t object_map_memlock(const kernel::Datapath&);

// Build a frame from the packet text form (classify/packet_spec.hpp).
std::vector<uint8_t> frame(const std::string& spec);

// Keeps a program attached (generic XDP) to a device for the lifetime of the
// object, so the kernel's XDP dispatcher already holds it during test runs.
// Devices are taken from --hold-devs (comma-separated); without it, nothing
// is held and the measurement includes the dispatcher swap.
class HoldPool {
 public:
  explicit HoldPool(const std::string& devs);
  ~HoldPool();
  bool hold(int prog_fd);  // false when no device is left
  void release_all();
  size_t free_count() const { return devs_.size() - used_.size(); }

 private:
  std::vector<int> devs_;  // ifindexes
  std::vector<int> used_;
};

// BPF_PROG_TEST_RUN of `prog_fd` on `frame`, `repeat` times; wall-clock ns per
// packet (float precision; the kernel's own figure is whole ns). retval out.
// `kernel_ns`: the kernel's own figure (whole ns; excludes time preempted).
double test_run_ns(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat,
                   uint32_t* retval = nullptr, uint32_t* kernel_ns = nullptr);

// With --rt, run as SCHED_FIFO so that other work on the machine does not
// preempt the test runs (wall-clock figures stay clean); pinned to --cpu.
void realtime_if_asked(const Args&);

}  // namespace xdpguard::bench
