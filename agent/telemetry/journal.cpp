#include "telemetry/journal.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "telemetry/json.hpp"

namespace xdpguard::telemetry {
namespace {

// Drop events' MESSAGE_ID (journalctl MESSAGE_ID=...): fixed for xdpguard,
// so a filter or a forwarding rule can select them whatever the text says.
constexpr const char* kDropMessageId = "8adf206f82734b9b8e4802d21791e3a2";

// syslog priorities: a drop is notice (5), a would-drop info (6).
constexpr const char* kPriorityDrop = "5";
constexpr const char* kPriorityWouldDrop = "6";

std::string field_name(const std::string& key) {
  // The names operators know from firewall logs (iptables: SRC= DST= PROTO=).
  static const std::map<std::string, std::string> kRenamed = {
      {"interface", "IFACE"}, {"protocol", "PROTO"}, {"event", "EVENT"}, {"time", "EVENT_TIME"}};
  if (auto it = kRenamed.find(key); it != kRenamed.end()) return it->second;
  std::string out;
  for (char c : key) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

}  // namespace

bool valid_journal_field(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
    return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string journal_datagram(const JournalFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    out += name;
    if (value.find('\n') == std::string::npos) {
      out += '=';
      out += value;
    } else {
      out += '\n';
      uint64_t n = value.size();
      for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
      out += value;
    }
    out += '\n';
  }
  return out;
}

JournalFields event_journal_fields(const DropEvent& ev) {
  bool passed = ev.raw.flags & XDPG_EVENT_PASSED;
  JournalFields f = {{"MESSAGE", event_text(ev)},
                     {"PRIORITY", passed ? kPriorityWouldDrop : kPriorityDrop},
                     {"MESSAGE_ID", kDropMessageId},
                     {"SYSLOG_IDENTIFIER", "xdpguard"}};
  // The same fields as the JSON event line, from the same function.
  const Json json = event_json(ev);  // named: items() only refers to it
  for (const auto& [key, value] : json.items()) {
    if (value.is_null()) continue;  // no rule: no RULE= field
    f.emplace_back(field_name(key), value.is_string() ? value.get<std::string>() : value.dump());
  }
  return f;
}

bool journal_stream_matches(const char* journal_stream, unsigned long long dev,
                            unsigned long long ino) {
  if (!journal_stream) return false;
  char* end = nullptr;
  unsigned long long d = std::strtoull(journal_stream, &end, 10);
  if (end == journal_stream || *end != ':') return false;
  const char* rest = end + 1;
  unsigned long long i = std::strtoull(rest, &end, 10);
  return end != rest && *end == '\0' && d == dev && i == ino;
}

bool stderr_is_journal() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return journal_stream_matches(std::getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino);
}

JournalWriter::JournalWriter(std::string socket_path)
    : path_(std::move(socket_path)),
      fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {}

kernel::Status JournalWriter::send(const JournalFields& fields) {
  for (const auto& [name, value] : fields)
    if (!valid_journal_field(name)) return kernel::plain_error("invalid journal field " + name);
  std::string dgram = journal_datagram(fields);
  if (dgram.size() > kMaxJournalDatagram)
    return kernel::plain_error("journal entry of " + std::to_string(dgram.size()) + " bytes");
  if (!fd_.valid()) return kernel::errno_error(EBADF, "no socket for the journal");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path))
    return kernel::plain_error("journal socket path too long: " + path_);
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  // sendto each time, not connect: a restarted journald binds a new socket
  // at the same path, and the next entry reaches it.
  ssize_t n;
  do {
    n = ::sendto(fd_.get(), dgram.data(), dgram.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return kernel::errno_error(errno, "cannot send to the journal at " + path_);
  return {};
}

}  // namespace xdpguard::telemetry
