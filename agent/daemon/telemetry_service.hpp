// Telemetry inside `xdpguard run`: drop events from every interface's ring
// buffer logged through spdlog (text or JSON lines) or, under systemd, sent to
// the journal as structured entries; Prometheus metrics on a loopback HTTP
// endpoint and/or in a node_exporter textfile.
//
// Threads: the ring buffer is read on the daemon's event loop; the HTTP
// server answers in a thread of its own, reading the pins directly, with the
// agent-side counters (reloads, events received) in atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "daemon/agent.hpp"
#include "kernel/result.hpp"
#include "telemetry/events.hpp"
#include "telemetry/http.hpp"
#include "telemetry/journal.hpp"
#include "telemetry/logging.hpp"

namespace spdlog {
class logger;
}

namespace xdpguard::daemon {

struct TelemetryConfig {
  std::optional<telemetry::Endpoint> metrics;  // --metrics HOST:PORT
  std::string textfile;                        // --metrics-textfile PATH
  std::chrono::milliseconds textfile_interval{15000};
  telemetry::LogFormat log_format = telemetry::LogFormat::Text;
  bool events = true;  // --no-events: do not read the ring buffers
  // Drop events as structured journal entries instead of log lines: --journal,
  // --no-journal, or by default when stderr is the journal (under systemd).
  enum class Journal { Auto, On, Off } journal = Journal::Auto;
  std::string journal_socket = telemetry::kJournalSocket;  // --journal-socket
};

// --metrics, --metrics-allow-remote, --metrics-textfile, --metrics-interval,
// --log-format, --no-events, --journal, --no-journal, --journal-socket.
void add_telemetry_options(cxxopts::Options& o);
// The options as a config; prints the error (one line) and returns nullopt.
std::optional<TelemetryConfig> telemetry_config(const cxxopts::ParseResult& r);

class TelemetryService : public AgentListener {
 public:
  // Binds the metrics endpoint now (a port in use fails the start, not the
  // first scrape) and registers with the agent; the rest starts on_ready.
  static kernel::Result<std::unique_ptr<TelemetryService>> create(TelemetryConfig config,
                                                                  Agent& agent);
  ~TelemetryService() override;

  void on_ready(const std::vector<std::string>& ifaces) override;
  void on_reload(const std::string& iface, bool ok) override;
  void on_reattach(const std::string& iface) override;
  void on_stop() override;

 private:
  TelemetryService(TelemetryConfig config, Agent& agent);
  void log_event(const telemetry::DropEvent& ev, size_t iface_index);
  std::string render() const;
  void write_textfile() const;

  TelemetryConfig config_;
  Agent& agent_;
  std::vector<std::string> ifaces_;
  std::unique_ptr<telemetry::EventReader> reader_;
  std::unique_ptr<telemetry::MetricsServer> server_;
  std::shared_ptr<spdlog::logger> events_log_;  // JSON mode: lines are whole objects
  std::unique_ptr<telemetry::JournalWriter> journal_;  // events to the journal instead
  uint64_t journal_failures_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> received_;
  std::atomic<uint64_t> reloads_{0}, failed_reloads_{0};
  std::atomic<bool> ready_{false};
};

}  // namespace xdpguard::daemon
