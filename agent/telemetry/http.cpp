#include "telemetry/http.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace xdpguard::telemetry {
namespace {

constexpr size_t kMaxRequest = 8192;       // request line + headers
constexpr int kIoTimeoutSeconds = 5;       // per read/write on a connection

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
  }
  return "Error";
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string response(const Reply& r, bool head) {
  std::string out = fmt::format(
      "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      r.status, status_text(r.status), r.content_type.empty() ? "text/plain; charset=utf-8" : r.content_type,
      r.body.size());
  if (!head) out += r.body;
  return out;
}

}  // namespace

kernel::Result<Endpoint> parse_endpoint(std::string_view text, bool allow_remote) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return kernel::plain_error(fmt::format("metrics address '{}' needs HOST:PORT", text));
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535)
    return kernel::plain_error(fmt::format("metrics address '{}': bad port '{}'", text, port_text));
  Endpoint ep;
  ep.port = static_cast<uint16_t>(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  ep.host = std::string(host);
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, ep.host.c_str(), &a4) == 1) {
    ep.loopback = (ntohl(a4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, ep.host.c_str(), &a6) == 1) {
    ep.loopback = IN6_IS_ADDR_LOOPBACK(&a6);
  } else {
    return kernel::plain_error(
        fmt::format("metrics address '{}': '{}' is not a numeric IPv4/IPv6 address", text, host));
  }
  if (!ep.loopback && !allow_remote)
    return kernel::plain_error(fmt::format(
        "metrics address {} is not loopback; metrics reveal the policy and what is knocking, so "
        "they are served on loopback only unless --metrics-allow-remote",
        text));
  return ep;
}

Reply answer(std::string_view head, const Render& render) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos)
    return {400, "", "bad request\n"};
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!line.substr(sp2 + 1).starts_with("HTTP/")) return {400, "", "bad request\n"};
  if (method != "GET" && method != "HEAD") return {405, "", "only GET\n"};
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", render()};
  if (path == "/") return {200, "", "xdpguard: metrics at /metrics\n"};
  return {404, "", "not found; metrics at /metrics\n"};
}

kernel::Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const Endpoint& ep,
                                                                    Render render) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (inet_pton(AF_INET, ep.host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    len = sizeof(*sin);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET6, ep.host.c_str(), &sin6->sin6_addr) != 1)
      return kernel::plain_error("bad metrics address " + ep.host);
    sin6->sin6_family = family = AF_INET6;
    sin6->sin6_port = htons(ep.port);
    len = sizeof(*sin6);
  }
  s->listen_fd_.reset(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s->listen_fd_.valid()) return kernel::errno_error(errno, "cannot create the metrics socket");
  int one = 1;
  ::setsockopt(s->listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  std::string where = family == AF_INET6 ? fmt::format("[{}]:{}", ep.host, ep.port)
                                         : fmt::format("{}:{}", ep.host, ep.port);
  if (::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return kernel::errno_error(errno, "cannot bind the metrics endpoint " + where);
  if (::listen(s->listen_fd_.get(), 16) != 0)
    return kernel::errno_error(errno, "cannot listen on " + where);
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  s->port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->stop_fd_.valid()) return kernel::errno_error(errno, "cannot create an eventfd");
  // The thread takes no signals: a daemon's SIGHUP/SIGTERM must reach its
  // signalfd, not kill the process through a thread that did not block them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  s->thread_ = std::thread([raw = s.get()] { raw->serve(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return s;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (::write(stop_fd_.get(), &one, sizeof(one)) < 0)
      spdlog::debug("metrics server: cannot signal stop: {}", std::strerror(errno));
    thread_.join();
  }
}

void MetricsServer::serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics server: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    kernel::Fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;  // EAGAIN, ECONNABORTED, EMFILE: try again later
    handle(conn.get());
  }
}

void MetricsServer::handle(int conn) {
  timeval tv{kIoTimeoutSeconds, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string head;
  char buf[1024];
  // Until the blank line ending the headers; a slow or silent client costs
  // at most the timeout.
  while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
    if (head.size() >= kMaxRequest) {
      send_all(conn, response({431, "", "request too large\n"}, false));
      return;
    }
    ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  ++requests_;
  Reply r;
  try {
    r = answer(head, render_);
  } catch (const std::exception& e) {
    spdlog::error("metrics: {}", e.what());
    r = {500, "", "internal error\n"};
  }
  send_all(conn, response(r, head.starts_with("HEAD ")));
  ::shutdown(conn, SHUT_WR);
}

}  // namespace xdpguard::telemetry
