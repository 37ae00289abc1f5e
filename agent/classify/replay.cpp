#include "classify/replay.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace xdpguard::classify {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000ULL;

// Just enough of the headers to tell the direction and name the flow; the
// reference classifier does the real parsing (and refuses what is malformed).
struct Peek {
  uint16_t ethertype = 0;
  int family = 0;
  const uint8_t *src = nullptr, *dst = nullptr;
  uint8_t protocol = 0;
  std::optional<uint16_t> sport, dport;
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

Peek peek(std::span<const uint8_t> f) {
  Peek p;
  if (f.size() < 14) return p;
  size_t at = 12;
  p.ethertype = be16(&f[at]);
  while ((p.ethertype == 0x8100 || p.ethertype == 0x88A8) && f.size() >= at + 6) {
    at += 4;
    p.ethertype = be16(&f[at]);
  }
  at += 2;
  size_t l4 = 0;
  if (p.ethertype == 0x0800 && f.size() >= at + 20) {
    p.family = 4;
    p.protocol = f[at + 9];
    p.src = &f[at + 12];
    p.dst = &f[at + 16];
    if ((be16(&f[at + 6]) & 0x1FFF) == 0) l4 = at + (f[at] & 0x0F) * 4u;  // first fragments only
  } else if (p.ethertype == 0x86DD && f.size() >= at + 40) {
    p.family = 6;
    p.protocol = f[at + 6];  // extension headers: named by their number, no ports
    p.src = &f[at + 8];
    p.dst = &f[at + 24];
    l4 = at + 40;
  }
  if (l4 && (p.protocol == 6 || p.protocol == 17) && f.size() >= l4 + 4) {
    p.sport = be16(&f[l4]);
    p.dport = be16(&f[l4 + 2]);
  }
  return p;
}

std::string endpoint(int family, const uint8_t* addr, std::optional<uint16_t> port) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, sizeof buf);
  if (!port) return buf;
  return family == 6 ? fmt::format("[{}]:{}", buf, *port) : fmt::format("{}:{}", buf, *port);
}

Mac mac_at(std::span<const uint8_t> frame, size_t at) {
  Mac m{};
  if (frame.size() >= at + 6) std::copy_n(frame.begin() + static_cast<ptrdiff_t>(at), 6, m.begin());
  return m;
}

}  // namespace

ReferenceOptions reference_options(const policy::Settings& s) {
  ReferenceOptions o;
  switch (s.egress) {
    case policy::EgressMode::Off: o.egress_mode = XDPG_EGRESS_OFF; break;
    case policy::EgressMode::Track: o.egress_mode = XDPG_EGRESS_TRACK; break;
    case policy::EgressMode::Enforce: o.egress_mode = XDPG_EGRESS_ENFORCE; break;
  }
  o.tcp_established_timeout_ns = s.tcp_established_timeout * kNsPerSecond;
  o.tcp_closing_timeout_ns = s.tcp_closing_timeout * kNsPerSecond;
  o.udp_timeout_ns = s.udp_timeout * kNsPerSecond;
  o.frag_timeout_ns = s.fragment_timeout * kNsPerSecond;
  return o;
}

std::string ReplayFlow::to_string() const {
  if (protocol == 0 && ethertype != 0x0800 && ethertype != 0x86DD)
    return fmt::format("ethertype 0x{:04x} {} <-> {}", ethertype, host, peer);
  const std::string name = protocol == 6 ? "tcp" : protocol == 17 ? "udp"
                           : protocol == 1 ? "icmp" : protocol == 58 ? "icmpv6"
                                           : fmt::format("proto {}", protocol);
  return fmt::format("{} {} <-> {}", name, host, peer);
}

Replay::Replay(const policy::RuleSet& rules, const policy::Settings& settings, HostIdentity host)
    : host_(std::move(host)), audit_(settings.audit),
      reference_(rules, reference_options(settings)) {}

bool Replay::sent_by_host(std::span<const uint8_t> frame) {
  const Mac src = mac_at(frame, 6);
  if (std::find(host_.macs.begin(), host_.macs.end(), src) != host_.macs.end()) return true;
  const Peek p = peek(frame);
  if (!p.family || !std::any_of(host_.addresses.begin(), host_.addresses.end(),
                                [&](const policy::Cidr& c) { return c.contains(p.family, p.src); }))
    return false;
  host_.macs.push_back(src);
  return true;
}

ReplayFrame Replay::feed(std::span<const uint8_t> frame, uint64_t ns) {
  ++frames_;
  ReplayFrame out;
  out.egress = sent_by_host(frame);
  const bool eg = out.egress;
  const Peek p = peek(frame);
  if (p.family) {
    out.flow = {p.ethertype, p.protocol,
                endpoint(p.family, eg ? p.src : p.dst, eg ? p.sport : p.dport),
                endpoint(p.family, eg ? p.dst : p.src, eg ? p.dport : p.sport)};
  } else {
    auto mac = [&](size_t at) { return fmt::format("{:02x}", fmt::join(mac_at(frame, at), ":")); };
    out.flow = {p.ethertype, 0, mac(eg ? 6 : 0), mac(eg ? 0 : 6)};
  }
  reference_.set_now(ns);
  if (eg) {
    const EgressDecision e = reference_.classify_egress(frame);
    out.decision = e.decision;
    out.passes = e.sent || audit_;
    if (e.decision) egress_.count(*e.decision, frame.size());
  } else {
    out.decision = reference_.classify(frame);
    out.passes = out.decision->verdict == Verdict::Pass || audit_;
    ingress_.count(*out.decision, frame.size());
  }
  return out;
}

}  // namespace xdpguard::classify
