// xdpguard's metrics read from the pins of some interfaces, rendered in the
// Prometheus text format, and the node_exporter textfile written atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernel/datapath.hpp"
#include "kernel/pin_dir.hpp"
#include "kernel/result.hpp"
#include "telemetry/prometheus.hpp"

namespace xdpguard::telemetry {

// `received(i)`: events the agent read for ifaces[i] (null: none known).
std::string collect_metrics(const std::vector<std::string>& ifaces, const AgentSnapshot* agent,
                            const std::function<uint64_t(size_t)>& received = nullptr,
                            const std::string& pin_root = kernel::kDefaultPinRoot);

// Writes `content` to a temporary file in the same directory, fsyncs it and
// renames it over `path` (mode 0644): a reader sees the old or the new file,
// never a partial one.
kernel::Status write_file_atomically(const std::string& path, const std::string& content);

}  // namespace xdpguard::telemetry
