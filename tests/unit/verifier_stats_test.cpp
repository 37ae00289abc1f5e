// Reading the verifier's output:
// - parse_verifier_stats reads the figures of a BPF_LOG_STATS log as the
//   kernels of the matrix print them, and reports a log without them as
//   such (limit 0), not as zero cost;
// - verifier_verdict cuts a refused load's log to the line the verifier
//   stopped at and its instruction count, and leaves other messages alone.
#include <gtest/gtest.h>

#include "kernel/datapath.hpp"
#include "kernel/libbpf_log.hpp"

namespace xdpguard {
namespace {

TEST(VerifierStats, ReadsTheStatisticsLines) {
  const char* log =
      "func#0 @0\n"
      "verification time 84213 usec\n"
      "stack depth 184+0\n"
      "processed 36845 insns (limit 1000000) max_states_per_insn 21 total_states 1804 "
      "peak_states 845 mark_read 22\n";
  auto st = kernel::parse_verifier_stats(log);
  EXPECT_EQ(st.insns_processed, 36845u);
  EXPECT_EQ(st.insns_limit, 1000000u);
  EXPECT_EQ(st.peak_states, 845u);
  EXPECT_EQ(st.verification_us, 84213u);
}

TEST(VerifierStats, ALogWithoutThemHasNoLimit) {
  auto st = kernel::parse_verifier_stats("");
  EXPECT_EQ(st.insns_limit, 0u);
  EXPECT_EQ(st.insns_processed, 0u);
}

// A refused load shows the verifier's last word, not its log.
TEST(VerifierVerdict, CutsAFailedLoadLogToItsVerdict) {
  const std::string msg =
      "libbpf: prog 'xdpguard_ingress': BPF program load failed: Permission denied\n"
      "libbpf: prog 'xdpguard_ingress': -- BEGIN PROG LOAD LOG --\n"
      "0: (bf) r6 = r1\n"
      "325: (0f) r9 += r1\n"
      "math between pkt pointer and register with unbounded min value is not allowed\n"
      "processed 30156 insns (limit 1000000) max_states_per_insn 21 total_states 1494\n"
      "-- END PROG LOAD LOG --\n";
  const std::string got = kernel::verifier_verdict(msg);
  EXPECT_NE(got.find("math between pkt pointer and register with unbounded min value"),
            std::string::npos) << got;
  EXPECT_NE(got.find("processed 30156 insns"), std::string::npos) << got;
  EXPECT_EQ(got.find("r9 += r1"), std::string::npos) << got;
  EXPECT_EQ(kernel::verifier_verdict("libbpf: map 'x': created\n"), "libbpf: map 'x': created\n");
}

}  // namespace
}  // namespace xdpguard
