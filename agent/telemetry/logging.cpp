#include "telemetry/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "telemetry/json.hpp"

namespace xdpguard::telemetry {
namespace {

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    spdlog::memory_buf_t time;
    time_.format(msg, time);
    auto level = spdlog::level::to_string_view(msg.level);
    std::string line = json_text({{"time", std::string(time.data(), time.size())},
                                  {"level", std::string(level.data(), level.size())},
                                  {"msg", std::string(msg.payload.data(), msg.payload.size())}});
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLogFormatter>();
  }

 private:
  // Only the time of the line comes from a pattern (no end of line).
  spdlog::pattern_formatter time_{"%Y-%m-%dT%H:%M:%S.%f%z", spdlog::pattern_time_type::local, ""};
};

}  // namespace

void configure_logging(LogFormat format) {
  if (format == LogFormat::Text)
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$: %v");
  else
    spdlog::set_formatter(json_log_formatter());
}

std::unique_ptr<spdlog::formatter> json_log_formatter() {
  return std::make_unique<JsonLogFormatter>();
}

std::string event_log_json(const DropEvent& ev) {
  Json line = {{"level", "info"}, {"msg", "drop event"}};
  line.update(event_json(ev));
  return json_text(line);
}

}  // namespace xdpguard::telemetry
