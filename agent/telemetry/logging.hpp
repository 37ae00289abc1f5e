// The log lines of the process: text ("time level: message") or one JSON
// object per line ({"time","level","msg"}), drop events included.
#pragma once

#include <memory>
#include <string>

#include "telemetry/events.hpp"

namespace spdlog {
class formatter;
}

namespace xdpguard::telemetry {

enum class LogFormat { Text, Json };

// Sets the default logger's format.
void configure_logging(LogFormat format);
// The formatter of LogFormat::Json (each line a JSON object, newline-ended).
std::unique_ptr<spdlog::formatter> json_log_formatter();
// A drop event as a JSON log line (no newline): the keys of the other lines,
// "level" and "msg", then the event's own (event_json).
std::string event_log_json(const DropEvent& ev);

}  // namespace xdpguard::telemetry
