// Drop events as structured journal entries (RULE=, REASON=, SRC=, ...), sent
// to systemd-journald over its native protocol
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): one AF_UNIX datagram per
// entry to /run/systemd/journal/socket.
//
// Written here rather than through sd_journal_send(): the shipped binary is
// statically linked (self-contained for Rocky 8) and Debian ships no static
// libsystemd. Entries are small and bounded (kMaxJournalDatagram), so the
// protocol's memfd path for large entries is not needed.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernel/fd.hpp"
#include "kernel/result.hpp"
#include "telemetry/events.hpp"

namespace xdpguard::telemetry {

inline constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
// Far below journald's datagram limit and the default socket buffer; an entry
// larger than this is a bug (rule ids and names are bounded by the maps).
inline constexpr size_t kMaxJournalDatagram = 16 * 1024;

// Field names: A-Z, 0-9, _, not starting with _ or a digit, at most 64 bytes.
using JournalFields = std::vector<std::pair<std::string, std::string>>;
bool valid_journal_field(std::string_view name);

// The datagram: NAME=value\n per field, or NAME\n<value size, 64-bit little
// endian><value>\n when the value holds a newline (the binary-safe form).
std::string journal_datagram(const JournalFields& fields);

// The fields of one drop event: MESSAGE (event_text), PRIORITY, MESSAGE_ID,
// SYSLOG_IDENTIFIER, and every key of event_json upper-cased (IFACE, PROTO,
// RULE, REASON, SRC, DST, SPORT, DPORT, DIRECTION, ...; absent ones left out).
JournalFields event_journal_fields(const DropEvent& ev);

// Whether stderr is the stream systemd connected to the journal: JOURNAL_STREAM
// ("DEV:INODE") names stderr's device and inode (systemd.exec(5)), so a
// variable inherited by a child with another stderr does not count.
bool journal_stream_matches(const char* journal_stream, unsigned long long dev,
                            unsigned long long ino);
bool stderr_is_journal();

class JournalWriter {
 public:
  explicit JournalWriter(std::string socket_path = kJournalSocket);
  // One entry, one datagram; never blocks (a journald that does not keep up
  // loses the entry: the event counters in the metrics still count it).
  kernel::Status send(const JournalFields& fields);
  const std::string& socket_path() const { return path_; }

 private:
  std::string path_;
  kernel::Fd fd_;
};

}  // namespace xdpguard::telemetry
