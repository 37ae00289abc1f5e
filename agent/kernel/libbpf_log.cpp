#include "kernel/libbpf_log.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace xdpguard::kernel {
namespace {

thread_local int quiet_depth = 0;
thread_local std::string* kernel_message = nullptr;

}  // namespace

std::string verifier_verdict(const std::string& text) {
  const std::string begin = "-- BEGIN PROG LOAD LOG --";
  size_t at = text.find(begin);
  size_t end = text.find("-- END PROG LOAD LOG --");
  if (at == std::string::npos || end == std::string::npos || end < at) return text;
  std::string head = text.substr(0, at);
  std::string body = text.substr(at + begin.size(), end - at - begin.size());
  std::string last, processed;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string line = body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? body.size() : nl + 1;
    if (line.empty()) continue;
    if (line.rfind("processed ", 0) == 0) processed = line;
    else if (processed.empty()) last = line;
  }
  return head + "the verifier refused it: " + last +
         (processed.empty() ? "" : " (" + processed + ")") + "; -v shows the whole log";
}

namespace {

int print_to_spdlog(enum libbpf_print_level level, const char* format, va_list args) {
  auto spd_level =
      level == LIBBPF_WARN && quiet_depth == 0 ? spdlog::level::warn : spdlog::level::debug;
  if (!spdlog::should_log(spd_level) && !kernel_message) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string ack = "Kernel error message: ";
  if (size_t at = text.find(ack); kernel_message && at != std::string::npos)
    *kernel_message = text.substr(at + ack.size());
  if (spd_level == spdlog::level::warn && !spdlog::should_log(spdlog::level::debug))
    text = verifier_verdict(text);
  spdlog::log(spd_level, "{}", text);  // libbpf prefixes its own "libbpf: "
  return n;
}

}  // namespace

void route_libbpf_to_spdlog() { libbpf_set_print(print_to_spdlog); }

QuietLibbpf::QuietLibbpf() { ++quiet_depth; }
QuietLibbpf::~QuietLibbpf() { --quiet_depth; }

KernelMessage::KernelMessage() : outer_(kernel_message) { kernel_message = &text_; }
KernelMessage::~KernelMessage() { kernel_message = outer_; }

}  // namespace xdpguard::kernel
