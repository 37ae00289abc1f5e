// A minimal HTTP/1.0 responder for Prometheus scrapes: GET /metrics only, one
// connection at a time in a thread of its own, bounded request size and
// socket timeouts, Connection: close. Enough for a scraper on loopback; not a
// general web server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"

namespace xdpguard::telemetry {

struct Endpoint {
  std::string host;  // numeric IPv4 or IPv6 address
  uint16_t port = 0;
  bool loopback = false;
};

// "127.0.0.1:9740", "[::1]:9740", "localhost:9740", ":9740" (127.0.0.1).
// A non-loopback address is refused unless `allow_remote`.
kernel::Result<Endpoint> parse_endpoint(std::string_view text, bool allow_remote);

// What the server answers for one request line; exposed for tests.
struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
};
using Render = std::function<std::string()>;
Reply answer(std::string_view request_head, const Render& render);

class MetricsServer {
 public:
  // Binds and listens (errors here, e.g. port in use, are returned), then
  // serves from a thread until destroyed. `render` runs in that thread.
  static kernel::Result<std::unique_ptr<MetricsServer>> start(const Endpoint&, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const { return port_; }  // the bound port (useful with port 0)
  uint64_t requests() const { return requests_.load(); }

 private:
  MetricsServer() = default;
  void serve();
  void handle(int conn);

  kernel::Fd listen_fd_, stop_fd_;
  Render render_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> requests_{0};
  std::thread thread_;
};

}  // namespace xdpguard::telemetry
