// Reading a tcpdump capture: the classic pcap file format, Ethernet link type
// only (what `tcpdump -i IF -w FILE` writes on the interface xdpguard protects).
//
// Hand-written rather than libpcap because the shipped agent is linked fully
// -static (it must run on glibc 2.28), and Debian's libpcap.a cannot be linked
// so: it needs libsystemd, which Debian ships as a shared library only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <string>

namespace xdpguard::capture {

// Calls `frame` for each captured frame in order with its capture time in
// nanoseconds (microsecond files scaled). Returns an error message naming the
// file, or nullopt when the whole file was read; frames before a corrupt or
// truncated record have been passed. A frame cut short by the snap length is
// passed as captured.
using FrameSink = std::function<void(std::span<const uint8_t> frame, uint64_t ns)>;
std::optional<std::string> read_pcap(const std::string& path, const FrameSink& frame);
// The same from an open stream (the fuzz target reads memory); `name` goes
// into the messages.
std::optional<std::string> read_pcap(std::FILE* in, const std::string& name,
                                     const FrameSink& frame);

}  // namespace xdpguard::capture
