#include "telemetry/drops.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernel/fd.hpp"
#include "kernel/maps_io.hpp"

namespace xdpguard::telemetry {
namespace {

static_assert(sizeof(xdpg_event) == 72);
static_assert(offsetof(xdpg_event, sport) == 24 && offsetof(xdpg_event, direction) == 30 &&
              offsetof(xdpg_event, icmp_type) == 36 && offsetof(xdpg_event, saddr) == 40 &&
              offsetof(xdpg_event, daddr) == 56);
static_assert(sizeof(xdpg_event_limit) == 56);
static_assert(XDPG_TOP_PORT_ENTRIES == 8 << 16);
static_assert(sizeof(xdpg_top_peer_key) == 20 && offsetof(xdpg_top_peer_key, addr) == 4);

kernel::Result<kernel::Fd> open_map(const std::string& iface, const std::string& pin_root,
                                    kernel::MapId id) {
  auto dir = kernel::pin_dir(iface, pin_root);
  if (!dir) return dir.error();
  std::string path = *dir + "/" + kernel::map_name(id);
  kernel::Fd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOENT)
      return kernel::plain_error("no pinned map " + path + " (xdpguard not attached to " + iface +
                                 ", or attached by a version without drop telemetry)");
    return kernel::errno_error(err, "cannot open " + path);
  }
  return fd;
}

uint32_t max_entries_of(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.max_entries : 0;
}

// Every (key, value) of a hash map; an LRU map may lose keys during the walk.
template <typename Key>
kernel::Result<std::vector<std::pair<Key, uint64_t>>> read_hash(int fd, const char* name) {
  std::vector<std::pair<Key, uint64_t>> out;
  Key key{}, next{};
  const Key* prev = nullptr;
  // Bounded: a walk restarted by concurrent deletions cannot loop forever.
  for (uint32_t n = 0, cap = max_entries_of(fd) * 2 + 16; n < cap; ++n) {
    int err = bpf_map_get_next_key(fd, prev, &next);
    if (err == -ENOENT) break;
    if (err) return kernel::errno_error(err, std::string("cannot walk ") + name);
    uint64_t v = 0;
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    key = next;
    prev = &key;
  }
  // A restarted walk repeats keys: keep each once.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::memcmp(&a.first, &b.first, sizeof(Key)) < 0;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) {
                          return std::memcmp(&a.first, &b.first, sizeof(Key)) == 0;
                        }),
            out.end());
  return out;
}

constexpr uint8_t kClassProtocol[XDPG_TOP_CLASS_COUNT] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP,
                                                          IPPROTO_ICMPV6};

// top_ports mapped read-only (BPF_F_MMAPABLE): 4 MiB read as memory, not
// half a million lookups.
class MappedPorts {
 public:
  explicit MappedPorts(int fd, int prot = PROT_READ)
      : len_(sizeof(uint64_t) * XDPG_TOP_PORT_ENTRIES),
        p_(::mmap(nullptr, len_, prot, MAP_SHARED, fd, 0)) {}
  ~MappedPorts() {
    if (p_ != MAP_FAILED) ::munmap(p_, len_);
  }
  bool ok() const { return p_ != MAP_FAILED; }
  volatile uint64_t* data() const { return static_cast<volatile uint64_t*>(p_); }

 private:
  size_t len_;
  void* p_;
};

template <typename Key>
kernel::Status clear_hash(int fd, const char* name) {
  Key key{};
  while (bpf_map_get_next_key(fd, nullptr, &key) == 0)
    if (int err = bpf_map_delete_elem(fd, &key); err && err != -ENOENT)
      return kernel::errno_error(err, std::string("cannot clear ") + name);
  return {};
}

}  // namespace

kernel::Result<EventCounters> read_event_counters(int map_fd) {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return kernel::errno_error(ncpus, "cannot count possible CPUs");
  EventCounters sums{};
  std::vector<xdpg_event_limit> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t key = 0; key < XDPG_EVENT_LIMIT_ENTRIES; ++key) {
    if (int err = bpf_map_lookup_elem(map_fd, &key, per_cpu.data()); err)
      return kernel::errno_error(err, "cannot read event_limits[" + std::to_string(key) + "]");
    for (const auto& v : per_cpu) {
      sums[key].tat_ns = std::max(sums[key].tat_ns, v.tat_ns);
      sums[key].emitted += v.emitted;
      sums[key].suppressed += v.suppressed;
      sums[key].pending += v.pending;
      sums[key].jiffies = std::max(sums[key].jiffies, v.jiffies);
      sums[key].now_ns = std::max(sums[key].now_ns, v.now_ns);
    }
  }
  return sums;
}

kernel::Result<EventCounters> read_event_counters(const std::string& iface,
                                                  const std::string& pin_root) {
  auto fd = open_map(iface, pin_root, kernel::MapId::EventLimits);
  if (!fd) return fd.error();
  if (auto st = kernel::check_map_shape(fd->get(), "event_limits", sizeof(uint32_t),
                                        sizeof(xdpg_event_limit), XDPG_EVENT_LIMIT_ENTRIES);
      !st)
    return st.error();
  return read_event_counters(fd->get());
}

EventTotals event_totals(const EventCounters& counters) {
  EventTotals t;
  for (const auto& l : counters) t.emitted += l.emitted, t.suppressed += l.suppressed;
  return t;
}

kernel::Result<DropTops> read_drop_tops(int ports_fd, int peers_fd, size_t limit) {
  MappedPorts map(ports_fd);
  if (!map.ok()) return kernel::errno_error(errno, "cannot map top_ports");
  DropTops out;
  for (uint32_t i = 0; i < XDPG_TOP_PORT_ENTRIES; ++i) {
    uint64_t n = map.data()[i];
    if (!n) continue;
    uint32_t group = i >> 16;
    out.ports.push_back(TopPort{static_cast<uint8_t>(group / XDPG_TOP_CLASS_COUNT),
                                kClassProtocol[group % XDPG_TOP_CLASS_COUNT],
                                static_cast<uint16_t>(i & 0xffff), n});
  }
  out.port_keys = out.ports.size();
  std::stable_sort(out.ports.begin(), out.ports.end(),
                   [](const auto& a, const auto& b) { return a.packets > b.packets; });
  if (limit && out.ports.size() > limit) out.ports.resize(limit);

  auto peers = read_hash<xdpg_top_peer_key>(peers_fd, "top_peers");
  if (!peers) return peers.error();
  out.peer_keys = peers->size();
  out.peer_capacity = max_entries_of(peers_fd);
  std::stable_sort(peers->begin(), peers->end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (limit && peers->size() > limit) peers->resize(limit);
  for (const auto& [k, v] : *peers) out.peers.push_back(TopPeer{k, v});
  return out;
}

kernel::Result<DropTops> read_drop_tops(const std::string& iface, size_t limit,
                                        const std::string& pin_root) {
  auto ports = open_map(iface, pin_root, kernel::MapId::TopPorts);
  if (!ports) return ports.error();
  auto peers = open_map(iface, pin_root, kernel::MapId::TopPeers);
  if (!peers) return peers.error();
  if (auto st = kernel::check_map_shape(ports->get(), "top_ports", sizeof(uint32_t),
                                        sizeof(uint64_t), XDPG_TOP_PORT_ENTRIES);
      !st)
    return st.error();
  if (auto st = kernel::check_map_shape(peers->get(), "top_peers", sizeof(xdpg_top_peer_key),
                                        sizeof(uint64_t), 1);
      !st)
    return st.error();
  return read_drop_tops(ports->get(), peers->get(), limit);
}

kernel::Status clear_drop_tops(int ports_fd, int peers_fd) {
  MappedPorts map(ports_fd, PROT_READ | PROT_WRITE);
  if (!map.ok()) return kernel::errno_error(errno, "cannot map top_ports");
  for (uint32_t i = 0; i < XDPG_TOP_PORT_ENTRIES; ++i) map.data()[i] = 0;
  return clear_hash<xdpg_top_peer_key>(peers_fd, "top_peers");
}

const char* direction_name(uint8_t direction) { return direction == 0 ? "ingress" : "egress"; }

std::string protocol_name(uint8_t protocol) {
  switch (protocol) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_ICMP: return "icmp";
    case IPPROTO_ICMPV6: return "ipv6-icmp";
  }
  return std::to_string(protocol);
}

std::string address_text(uint8_t family, const uint8_t* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) inet_ntop(AF_INET, addr, buf, sizeof(buf));
  else if (family == 6) inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  else return "-";
  return buf;
}

std::string endpoint_text(uint8_t family, const uint8_t* addr, uint16_t port) {
  std::string a = address_text(family, addr);
  return family == 6 ? "[" + a + "]:" + std::to_string(port) : a + ":" + std::to_string(port);
}

}  // namespace xdpguard::telemetry
