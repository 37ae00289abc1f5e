#include "kernel/libbpf_log.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace xdpguard::kernel {
namespace {

thread_local int quiet_depth = 0;

int print_to_spdlog(enum libbpf_print_level level, const char* format, va_list args) {
  auto spd_level =
      level == LIBBPF_WARN && quiet_depth == 0 ? spdlog::level::warn : spdlog::level::debug;
  if (!spdlog::should_log(spd_level)) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::log(spd_level, "{}", text);  // libbpf prefixes its own "libbpf: "
  return n;
}

}  // namespace

void route_libbpf_to_spdlog() { libbpf_set_print(print_to_spdlog); }

QuietLibbpf::QuietLibbpf() { ++quiet_depth; }
QuietLibbpf::~QuietLibbpf() { --quiet_depth; }

}  // namespace xdpguard::kernel
