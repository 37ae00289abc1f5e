// libbpf prints (including the verifier log when a load fails) go to spdlog:
// warnings always, libbpf's info/debug chatter only at debug level (-v).
#pragma once

#include <string>

namespace xdpguard::kernel {

// A libbpf message holding a refused program's verifier log (thousands of
// lines, one warning) cut to its verdict: the line the verifier stopped at
// and its "processed N insns" count. Other messages are returned as they are.
// Without -v this is what the operator sees.
std::string verifier_verdict(const std::string& libbpf_message);

// Idempotent; call once before opening any BPF object.
void route_libbpf_to_spdlog();

// While alive, this thread's libbpf warnings are logged at debug level: for
// calls whose failure is an expected answer (a query finding no qdisc).
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

// While alive, quiet as above, and the kernel's extended ack of a failed
// netlink request ("Kernel error message: ...", which libbpf only logs) is
// kept: a caller that turns the failure into its own line can name it.
class KernelMessage {
 public:
  KernelMessage();
  ~KernelMessage();
  KernelMessage(const KernelMessage&) = delete;
  KernelMessage& operator=(const KernelMessage&) = delete;
  const std::string& text() const { return text_; }  // "" if none

 private:
  QuietLibbpf quiet_;
  std::string text_;
  std::string* outer_;
};

}  // namespace xdpguard::kernel
