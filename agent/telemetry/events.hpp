// Drop events from the datapath's ring buffers (maps.h, xdpg_event), one per
// interface, read through one libbpf ring_buffer (one epoll fd for all).
//
// A BPF ring buffer has one consumer position: two readers of the same
// interface (the daemon and `xdpguard events`) would split the events.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/datapath.hpp"
#include "kernel/pin_dir.hpp"
#include "kernel/result.hpp"
#include "telemetry/json.hpp"
#include "xdpguard/maps.h"

struct ring_buffer;

namespace xdpguard::telemetry {

struct DropEvent {
  std::string iface;
  xdpg_event raw{};
  std::string rule_id;  // "" when the drop is not attributed to a rule
  std::chrono::system_clock::time_point time;  // raw.timestamp_ns on the wall clock
};

// One line: "drop ingress eth0 tcp 10.0.0.2:40000 -> 10.0.0.1:23 flags=S
// reason=no_rule rule=- len=74 suppressed=3" ("would-drop" when passed).
std::string event_text(const DropEvent&);
// One JSON object, with "time" in RFC 3339 UTC (json_text for its line).
Json event_json(const DropEvent&);
// TCP flags as letters: F S R P A U (E C).
std::string tcp_flags_text(uint8_t flags);

class EventReader {
 public:
  using Callback = std::function<void(const DropEvent&)>;

  // Opens the pinned `events` ring buffer (and rule_meta, for rule names) of
  // every interface.
  static kernel::Result<std::unique_ptr<EventReader>> open(
      const std::vector<std::string>& ifaces, Callback callback,
      const std::string& pin_root = kernel::kDefaultPinRoot);
  // The same from map fds (duplicated; the caller keeps its own), e.g. of a
  // Datapath that is not attached.
  struct MapFds {
    std::string iface;
    int events_fd = -1, rule_meta_fd = -1;
  };
  static kernel::Result<std::unique_ptr<EventReader>> open_fds(const std::vector<MapFds>& maps,
                                                               Callback callback);
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  // After `iface` was attached anew (new maps behind the same pins): read
  // its new ring buffer too.
  kernel::Status reopen(const std::string& iface,
                        const std::string& pin_root = kernel::kDefaultPinRoot);

  // Readable when events are waiting (for poll/epoll); then consume().
  int fd() const;
  // Handles every waiting event; the number handled.
  kernel::Result<int> consume();
  // Waits up to `timeout_ms` for events, then handles them.
  kernel::Result<int> poll(int timeout_ms);

  // Events handled per interface (in the order given to open()).
  uint64_t received(size_t iface_index) const;
  const std::vector<std::string>& ifaces() const { return ifaces_; }

 private:
  struct Source {
    EventReader* reader;
    size_t index;
    kernel::Fd events, meta;
  };
  EventReader() = default;
  kernel::Status add_source(const MapFds& maps, size_t index);
  static int on_sample(void* ctx, void* data, size_t size);

  std::vector<std::string> ifaces_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<uint64_t> received_;
  Callback callback_;
  ring_buffer* rb_ = nullptr;
  // CLOCK_REALTIME - CLOCK_MONOTONIC, to put kernel timestamps on the wall clock.
  int64_t wall_offset_ns_ = 0;
};

}  // namespace xdpguard::telemetry
