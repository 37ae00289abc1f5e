// The drop telemetry maps read from an interface's pins: per-reason event
// counters (event_limits) and the top lists of dropped ports and peers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kernel/datapath.hpp"
#include "kernel/pin_dir.hpp"
#include "kernel/result.hpp"
#include "xdpguard/maps.h"

namespace xdpguard::telemetry {

// event_limits summed over CPUs (tat_ns: the latest of them), indexed
// direction * XDPG_DROP_REASON_COUNT + reason.
using EventCounters = std::array<xdpg_event_limit, XDPG_EVENT_LIMIT_ENTRIES>;
kernel::Result<EventCounters> read_event_counters(int map_fd);
kernel::Result<EventCounters> read_event_counters(const std::string& iface,
                                                  const std::string& pin_root = kernel::kDefaultPinRoot);
// Events emitted and suppressed, every direction and reason.
struct EventTotals {
  uint64_t emitted = 0, suppressed = 0;
};
EventTotals event_totals(const EventCounters& counters);

struct TopPort {
  uint8_t direction = 0;  // 0 ingress, 1 egress
  uint8_t protocol = 0;   // IPPROTO_TCP/UDP/ICMP/ICMPV6
  uint16_t port = 0;      // destination port, or ICMP type
  uint64_t packets = 0;
};
struct TopPeer {
  xdpg_top_peer_key key{};
  uint64_t packets = 0;
};
struct DropTops {
  std::vector<TopPort> ports;  // most dropped first
  std::vector<TopPeer> peers;
  size_t port_keys = 0, peer_keys = 0;  // ports with drops; peers tracked
  size_t peer_capacity = 0;
};

// The `limit` most dropped of each (0: all), by packets, ties by key.
kernel::Result<DropTops> read_drop_tops(int ports_fd, int peers_fd, size_t limit);
kernel::Result<DropTops> read_drop_tops(const std::string& iface, size_t limit,
                                        const std::string& pin_root = kernel::kDefaultPinRoot);
// Empty both maps (tests).
kernel::Status clear_drop_tops(int ports_fd, int peers_fd);

// "ingress" (0) or "egress" (1), as the maps store a direction.
const char* direction_name(uint8_t direction);
// "tcp", "udp", "icmp", "ipv6-icmp", or the number.
std::string protocol_name(uint8_t protocol);
// Text form of an address as the datapath stores it (family 4 or 6).
std::string address_text(uint8_t family, const uint8_t* addr);
// "192.0.2.1:443", "[2001:db8::1]:443".
std::string endpoint_text(uint8_t family, const uint8_t* addr, uint16_t port);

}  // namespace xdpguard::telemetry
