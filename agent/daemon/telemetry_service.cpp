#include "daemon/telemetry_service.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "telemetry/metrics.hpp"

namespace xdpguard::daemon {

using telemetry::LogFormat;

void add_telemetry_options(cxxopts::Options& o) {
  o.add_options("telemetry")(
      "metrics", "serve Prometheus metrics on HOST:PORT (loopback, e.g. 127.0.0.1:9740)",
      cxxopts::value<std::string>(), "HOST:PORT")(
      "metrics-allow-remote", "allow --metrics on a non-loopback address")(
      "metrics-textfile", "write the metrics atomically to PATH (node_exporter textfile collector)",
      cxxopts::value<std::string>(), "PATH")(
      "metrics-interval", "seconds between textfile writes",
      cxxopts::value<unsigned>()->default_value("15"), "SECONDS")(
      "log-format", "text or json (one JSON object per line, drop events included)",
      cxxopts::value<std::string>()->default_value("text"), "FORMAT")(
      "no-events", "do not read or log drop events")(
      "journal", "send drop events to the journal as structured entries (RULE=, SRC=, ...); "
                 "the default when stderr is the journal (under systemd)")(
      "no-journal", "log drop events as lines on stderr even under systemd")(
      "journal-socket", "journald's native socket",
      cxxopts::value<std::string>()->default_value(telemetry::kJournalSocket), "PATH");
}

std::optional<TelemetryConfig> telemetry_config(const cxxopts::ParseResult& r) {
  TelemetryConfig c;
  auto fail = [](const std::string& msg) {
    fmt::print(stderr, "xdpguard: error: {}\n", msg);
    return std::nullopt;
  };
  if (r.count("metrics")) {
    auto ep = telemetry::parse_endpoint(r["metrics"].as<std::string>(),
                                        r.count("metrics-allow-remote") > 0);
    if (!ep) return fail(ep.error().message);
    c.metrics = *ep;
  }
  if (r.count("metrics-textfile")) c.textfile = r["metrics-textfile"].as<std::string>();
  unsigned interval = r["metrics-interval"].as<unsigned>();
  if (interval == 0) return fail("--metrics-interval must be positive");
  c.textfile_interval = std::chrono::seconds(interval);
  std::string format = r["log-format"].as<std::string>();
  if (format == "json") c.log_format = LogFormat::Json;
  else if (format != "text") return fail("--log-format must be text or json, not '" + format + "'");
  c.events = r.count("no-events") == 0;
  if (r.count("journal") && r.count("no-journal")) return fail("--journal and --no-journal");
  if (r.count("journal")) c.journal = TelemetryConfig::Journal::On;
  if (r.count("no-journal")) c.journal = TelemetryConfig::Journal::Off;
  c.journal_socket = r["journal-socket"].as<std::string>();
  return c;
}

TelemetryService::TelemetryService(TelemetryConfig config, Agent& agent)
    : config_(std::move(config)), agent_(agent) {}

TelemetryService::~TelemetryService() = default;

kernel::Result<std::unique_ptr<TelemetryService>> TelemetryService::create(TelemetryConfig config,
                                                                           Agent& agent) {
  std::unique_ptr<TelemetryService> s(new TelemetryService(std::move(config), agent));
  if (s->config_.metrics) {
    auto server = telemetry::MetricsServer::start(*s->config_.metrics,
                                                  [raw = s.get()] { return raw->render(); });
    if (!server) return server.error();
    s->server_ = std::move(*server);
    spdlog::info("metrics on http://{}:{}/metrics",
                 s->config_.metrics->host.find(':') != std::string::npos
                     ? "[" + s->config_.metrics->host + "]"
                     : s->config_.metrics->host,
                 s->server_->port());
  }
  using Journal = TelemetryConfig::Journal;
  if (s->config_.journal == Journal::On ||
      (s->config_.journal == Journal::Auto && telemetry::stderr_is_journal())) {
    s->journal_ = std::make_unique<telemetry::JournalWriter>(s->config_.journal_socket);
    spdlog::info("drop events go to the journal ({})", s->config_.journal_socket);
  } else if (s->config_.log_format == LogFormat::Json) {
    // Drop events are whole JSON objects: their own logger, pattern %v.
    s->events_log_ = std::make_shared<spdlog::logger>(
        "events", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    s->events_log_->set_pattern("%v");
  }
  agent.add_listener(s.get());
  return s;
}

void TelemetryService::on_ready(const std::vector<std::string>& ifaces) {
  ifaces_ = ifaces;
  received_ = std::make_unique<std::atomic<uint64_t>[]>(ifaces.size());
  ready_ = true;
  if (config_.events) {
    auto reader = telemetry::EventReader::open(ifaces, [this](const telemetry::DropEvent& ev) {
      for (size_t i = 0; i < ifaces_.size(); ++i)
        if (ifaces_[i] == ev.iface) log_event(ev, i);
    });
    if (reader) {
      reader_ = std::move(*reader);
      agent_.loop().add_fd(reader_->fd(), [this] {
        if (auto n = reader_->consume(); !n) spdlog::warn("{}", n.error().message);
      });
    } else {
      spdlog::error("drop events are not read: {}", reader.error().message);
    }
  }
  if (!config_.textfile.empty()) {
    write_textfile();
    agent_.loop().add_timer(config_.textfile_interval, [this] { write_textfile(); });
  }
}

void TelemetryService::on_reload(const std::string&, bool ok) {
  ++(ok ? reloads_ : failed_reloads_);
  if (!config_.textfile.empty()) write_textfile();
}

void TelemetryService::on_reattach(const std::string& iface) {
  if (!reader_) return;
  if (auto st = reader_->reopen(iface); !st)
    spdlog::error("{}: drop events are no longer read: {}", iface, st.error().message);
}

void TelemetryService::on_stop() {
  if (reader_) (void)reader_->consume();  // what is waiting still gets logged
  if (!config_.textfile.empty()) write_textfile();
  server_.reset();
}

void TelemetryService::log_event(const telemetry::DropEvent& ev, size_t iface_index) {
  received_[iface_index].fetch_add(1, std::memory_order_relaxed);
  if (journal_) {
    // Warn on the first failure and every 1000th after: a journald that is
    // down must not flood the log it cannot take anyway.
    if (auto st = journal_->send(telemetry::event_journal_fields(ev)); !st)
      if (journal_failures_++ % 1000 == 0)
        spdlog::warn("{} ({} drop events not journalled)", st.error().message, journal_failures_);
  } else if (events_log_)
    events_log_->info("{}", telemetry::event_log_json(ev));
  else
    spdlog::info("{}", telemetry::event_text(ev));
}

std::string TelemetryService::render() const {
  telemetry::AgentSnapshot agent{reloads_.load(), failed_reloads_.load()};
  if (!ready_) return telemetry::collect_metrics({}, &agent);
  return telemetry::collect_metrics(ifaces_, &agent,
                                    [this](size_t i) { return received_[i].load(); });
}

void TelemetryService::write_textfile() const {
  if (auto st = telemetry::write_file_atomically(config_.textfile, render()); !st)
    spdlog::warn("metrics textfile: {}", st.error().message);
}

}  // namespace xdpguard::daemon
