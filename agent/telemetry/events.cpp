#include "telemetry/events.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "classify/decision.hpp"
#include "kernel/maps_io.hpp"
#include "telemetry/drops.hpp"

namespace xdpguard::telemetry {
namespace {

int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

std::string reason_text(uint8_t reason) {
  if (reason == 0 || reason >= XDPG_DROP_REASON_COUNT) return std::to_string(reason);
  return drop_reason_name(static_cast<DropReason>(reason));
}

bool has_ports(const xdpg_event& e) {
  return e.family && (e.protocol == IPPROTO_TCP || e.protocol == IPPROTO_UDP);
}

std::string endpoint(const xdpg_event& e, const uint8_t* addr, uint16_t port) {
  return has_ports(e) ? endpoint_text(e.family, addr, port) : address_text(e.family, addr);
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", tm, us % 1'000'000);
}

}  // namespace

std::string tcp_flags_text(uint8_t f) {
  static constexpr std::pair<uint8_t, char> kBits[] = {{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'},
                                                       {0x08, 'P'}, {0x10, 'A'}, {0x20, 'U'},
                                                       {0x40, 'E'}, {0x80, 'C'}};
  std::string s;
  for (auto [bit, c] : kBits)
    if (f & bit) s += c;
  return s.empty() ? "-" : s;
}

std::string event_text(const DropEvent& ev) {
  const xdpg_event& e = ev.raw;
  std::string what = (e.flags & XDPG_EVENT_PASSED) ? "would-drop" : "drop";
  std::string pkt;
  if (e.family) {
    pkt = fmt::format("{} {} -> {}", protocol_name(e.protocol), endpoint(e, e.saddr, e.sport),
                      endpoint(e, e.daddr, e.dport));
    if (e.protocol == IPPROTO_TCP) pkt += " flags=" + tcp_flags_text(e.tcp_flags);
    if (e.protocol == IPPROTO_ICMP || e.protocol == IPPROTO_ICMPV6)
      pkt += fmt::format(" type={}", e.icmp_type);
  } else {
    pkt = fmt::format("ethertype={:#06x}", e.ethertype);
  }
  return fmt::format("{} {} {} {} reason={} rule={} len={} suppressed={}", what,
                     direction_name(e.direction), ev.iface, pkt,
                     reason_text(e.reason), ev.rule_id.empty() ? "-" : ev.rule_id, e.packet_len,
                     e.suppressed);
}

Json event_json(const DropEvent& ev) {
  const xdpg_event& e = ev.raw;
  Json out = {{"time", rfc3339(ev.time)},
              {"event", (e.flags & XDPG_EVENT_PASSED) ? "would-drop" : "drop"},
              {"interface", ev.iface},
              {"direction", direction_name(e.direction)},
              {"reason", reason_text(e.reason)},
              {"rule", ev.rule_id.empty() ? Json(nullptr) : Json(ev.rule_id)},
              {"length", e.packet_len},
              {"suppressed", e.suppressed}};
  if (!e.family) {
    out["ethertype"] = e.ethertype;
    return out;
  }
  out["family"] = e.family;
  out["protocol"] = protocol_name(e.protocol);
  out["src"] = address_text(e.family, e.saddr);
  out["dst"] = address_text(e.family, e.daddr);
  if (has_ports(e)) {
    out["sport"] = e.sport;
    out["dport"] = e.dport;
  }
  if (e.protocol == IPPROTO_TCP) out["tcp_flags"] = tcp_flags_text(e.tcp_flags);
  if (e.protocol == IPPROTO_ICMP || e.protocol == IPPROTO_ICMPV6) out["icmp_type"] = e.icmp_type;
  return out;
}

namespace {

// The pinned `events` and `rule_meta` maps of one interface.
struct PinnedEventMaps {
  kernel::Fd events, meta;
};

kernel::Result<PinnedEventMaps> open_pinned_event_maps(const std::string& iface,
                                                       const std::string& pin_root) {
  auto dir = kernel::pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  PinnedEventMaps maps;
  for (auto [out, id] : {std::pair{&maps.events, kernel::MapId::Events},
                         std::pair{&maps.meta, kernel::MapId::RuleMeta}}) {
    std::string path = *dir + "/" + kernel::map_name(id);
    out->reset(bpf_obj_get(path.c_str()));
    if (!out->valid())
      return kernel::errno_error(
          errno, fmt::format("cannot open {} (is xdpguard attached to {}?)", path, iface));
  }
  return maps;
}

}  // namespace

kernel::Result<std::unique_ptr<EventReader>> EventReader::open(
    const std::vector<std::string>& ifaces, Callback callback, const std::string& pin_root) {
  std::vector<PinnedEventMaps> pinned;
  std::vector<MapFds> maps;
  for (const auto& iface : ifaces) {
    auto m = open_pinned_event_maps(iface, pin_root);
    if (!m) return m.error();
    maps.push_back({iface, m->events.get(), m->meta.get()});
    pinned.push_back(std::move(*m));
  }
  return open_fds(maps, std::move(callback));
}

kernel::Result<std::unique_ptr<EventReader>> EventReader::open_fds(const std::vector<MapFds>& maps,
                                                                   Callback callback) {
  std::unique_ptr<EventReader> r(new EventReader());
  r->received_.assign(maps.size(), 0);
  r->callback_ = std::move(callback);
  r->wall_offset_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
  for (size_t i = 0; i < maps.size(); ++i) {
    r->ifaces_.push_back(maps[i].iface);
    if (auto added = r->add_source(maps[i], i); !added) return added.error();
  }
  return r;
}

kernel::Status EventReader::add_source(const MapFds& maps, size_t index) {
  auto src = std::make_unique<Source>();
  src->reader = this;
  src->index = index;
  src->events.reset(::fcntl(maps.events_fd, F_DUPFD_CLOEXEC, 0));
  src->meta.reset(::fcntl(maps.rule_meta_fd, F_DUPFD_CLOEXEC, 0));
  if (!src->events.valid() || !src->meta.valid())
    return kernel::errno_error(errno, "cannot duplicate the event map fds of " + maps.iface);
  int err = 0;
  if (!rb_) {
    rb_ = ring_buffer__new(src->events.get(), &EventReader::on_sample, src.get(), nullptr);
    if (!rb_) err = -errno;
  } else {
    err = ring_buffer__add(rb_, src->events.get(), &EventReader::on_sample, src.get());
  }
  if (err) return kernel::errno_error(err, "cannot map the event ring buffer of " + maps.iface);
  sources_.push_back(std::move(src));
  return {};
}

kernel::Status EventReader::reopen(const std::string& iface, const std::string& pin_root) {
  auto it = std::find(ifaces_.begin(), ifaces_.end(), iface);
  if (it == ifaces_.end()) return kernel::plain_error("no drop events are read for " + iface);
  auto m = open_pinned_event_maps(iface, pin_root);
  if (!m) return m.error();
  // libbpf cannot remove a ring from a ring_buffer: the old one stays mapped
  // but idle (its programs are gone), the new one is added beside it.
  return add_source({iface, m->events.get(), m->meta.get()},
                    static_cast<size_t>(it - ifaces_.begin()));
}

EventReader::~EventReader() {
  if (rb_) ring_buffer__free(rb_);
}

int EventReader::fd() const { return rb_ ? ring_buffer__epoll_fd(rb_) : -1; }

kernel::Result<int> EventReader::consume() {
  if (!rb_) return 0;
  int n = ring_buffer__consume(rb_);
  if (n < 0) return kernel::errno_error(n, "cannot read drop events");
  return n;
}

kernel::Result<int> EventReader::poll(int timeout_ms) {
  if (!rb_) return 0;
  int n = ring_buffer__poll(rb_, timeout_ms);
  if (n == -EINTR) return 0;
  if (n < 0) return kernel::errno_error(n, "cannot read drop events");
  return n;
}

uint64_t EventReader::received(size_t i) const { return i < received_.size() ? received_[i] : 0; }

int EventReader::on_sample(void* ctx, void* data, size_t size) {
  auto* src = static_cast<Source*>(ctx);
  EventReader* self = src->reader;
  if (size < sizeof(xdpg_event)) return 0;  // not ours; skip it
  DropEvent ev;
  ev.iface = self->ifaces_[src->index];
  std::memcpy(&ev.raw, data, sizeof(ev.raw));
  if (ev.raw.rule < XDPG_MAX_RULES) {
    // rule_meta is indexed by slot; read per event (events are rate-limited)
    // so names stay right across reloads.
    xdpg_rule_meta meta{};
    uint32_t slot = ev.raw.rule;
    if (bpf_map_lookup_elem(src->meta.get(), &slot, &meta) == 0)
      ev.rule_id = kernel::fixed_string(meta.id, sizeof(meta.id));
  }
  ev.time = std::chrono::system_clock::time_point(std::chrono::duration_cast<
      std::chrono::system_clock::duration>(std::chrono::nanoseconds(
      static_cast<int64_t>(ev.raw.timestamp_ns) + self->wall_offset_ns_)));
  ++self->received_[src->index];
  if (self->callback_) self->callback_(ev);
  return 0;
}

}  // namespace xdpguard::telemetry
