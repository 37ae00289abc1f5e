#include "capture/pcap_file.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace xdpguard::capture {
namespace {

constexpr uint32_t kMagicMicro = 0xA1B2C3D4;
constexpr uint32_t kMagicNano = 0xA1B23C4D;
constexpr uint32_t kMagicPcapng = 0x0A0D0D0A;  // a Section Header Block, either byte order
constexpr uint32_t kLinktypeEthernet = 1;
// libpcap's own ceiling for a record (MAXIMUM_SNAPLEN): anything larger is a
// corrupt length, not a frame.
constexpr uint32_t kMaxRecord = 262144;
constexpr char kClassicHint[] =
    "replay reads the classic pcap format (tcpdump -w writes it; editcap -F pcap converts)";

uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }

}  // namespace

std::optional<std::string> read_pcap(const std::string& path, const FrameSink& frame) {
  std::unique_ptr<std::FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!f) return fmt::format("{}: {}", path, std::strerror(errno));
  return read_pcap(f.get(), path, frame);
}

std::optional<std::string> read_pcap(std::FILE* in, const std::string& path,
                                     const FrameSink& frame) {
  uint32_t hdr[6];
  const size_t got = std::fread(hdr, 1, sizeof hdr, in);
  if (got < 4) return fmt::format("{}: not a pcap file (only {} bytes)", path, got);
  const uint32_t magic = hdr[0];
  if (magic == kMagicPcapng) return fmt::format("{}: a pcapng file; {}", path, kClassicHint);
  bool swapped = false, nano = false;
  if (magic == kMagicMicro || magic == kMagicNano) {
    nano = magic == kMagicNano;
  } else if (swap32(magic) == kMagicMicro || swap32(magic) == kMagicNano) {
    swapped = true;
    nano = swap32(magic) == kMagicNano;
  } else {
    return fmt::format("{}: not a pcap file (magic 0x{:08x}); {}", path, magic, kClassicHint);
  }
  if (got < sizeof hdr) return fmt::format("{}: truncated pcap file header", path);
  auto host = [swapped](uint32_t v) { return swapped ? swap32(v) : v; };
  // The link type is the low 16 bits; the high bits may carry FCS information.
  const uint32_t linktype = host(hdr[5]) & 0xFFFF;
  if (linktype != kLinktypeEthernet)
    return fmt::format(
        "{}: link type {}, not Ethernet (1); replay reads Ethernet captures (tcpdump -i IF on the "
        "protected interface, not -i any)",
        path, linktype);

  std::vector<uint8_t> buf;
  for (uint64_t n = 1;; ++n) {
    const long at = std::ftell(in);
    uint32_t rec[4];
    const size_t r = std::fread(rec, 1, sizeof rec, in);
    if (r == 0 && std::feof(in)) return std::nullopt;
    if (r != sizeof rec)
      return fmt::format("{}: frame {} (byte {}): truncated record header", path, n, at);
    const uint32_t sec = host(rec[0]), frac = host(rec[1]), caplen = host(rec[2]);
    if (caplen > kMaxRecord)
      return fmt::format("{}: frame {} (byte {}): corrupt record length {}", path, n, at, caplen);
    if (frac >= (nano ? 1'000'000'000u : 1'000'000u))
      return fmt::format("{}: frame {} (byte {}): corrupt timestamp fraction {}", path, n, at,
                         frac);
    buf.resize(caplen);
    if (std::fread(buf.data(), 1, caplen, in) != caplen)
      return fmt::format("{}: frame {} (byte {}): truncated, {} bytes announced", path, n, at,
                         caplen);
    frame(buf, uint64_t{sec} * 1'000'000'000ULL + (nano ? frac : uint64_t{frac} * 1000));
  }
}

}  // namespace xdpguard::capture
