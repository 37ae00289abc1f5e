#include "daemon/apply.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "classify/replay.hpp"
#include "kernel/fd.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::daemon {
namespace fs = std::filesystem;
using kernel::errno_error;
using kernel::plain_error;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// Written whole to a temporary name, then renamed: a reader never sees half.
kernel::Status write_private(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  kernel::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error(errno, "cannot write " + tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) return errno_error(errno, "cannot write " + tmp);
    done += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error(errno, "cannot write " + path);
  return {};
}

namespace {

// "::ffff:192.0.2.7" (a v4 client on a dual-stack sshd) as 192.0.2.7.
std::string unmap_v4(std::string addr) {
  if (addr.rfind("::ffff:", 0) == 0 && addr.find('.') != std::string::npos) return addr.substr(7);
  return addr;
}

std::string endpoint_text(const std::string& addr, const std::string& port) {
  return addr.find(':') != std::string::npos ? "[" + addr + "]:" + port : addr + ":" + port;
}

bool admits_ssh(const policy::RuleSet& rules, uint16_t port) {
  for (const auto& e : rules.rules) {
    const policy::Rule& r = *e.rule;
    if (r.protocol != policy::Protocol::Tcp || r.initiator == policy::Initiator::Local) continue;
    for (const auto& range : r.local_ports)
      if (range.contains(port)) return true;
  }
  return false;
}

// A lock on the state directory: a confirm and the watcher's rollback never
// interleave.
kernel::Result<kernel::Fd> lock_state(const std::string& dir) {
  kernel::Fd fd(::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return errno_error(errno, "cannot open " + dir + "/lock");
  if (::flock(fd.get(), LOCK_EX) != 0) return errno_error(errno, "cannot lock " + dir + "/lock");
  return fd;
}

std::optional<pid_t> read_pid(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  char* end = nullptr;
  long pid = std::strtol(text->c_str(), &end, 10);
  if (pid <= 1 || end == text->c_str()) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// The watcher, in the forked child: waits, then rolls back unless confirmed.
[[noreturn]] void watch(const std::string& iface, const std::string& dir, unsigned seconds) {
  const std::string pending = dir + "/pending";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::error_code ec;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!fs::exists(pending, ec)) {
      spdlog::info("apply on {} confirmed; watcher exits", iface);
      std::_Exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto lock = lock_state(dir);
  if (!lock) {
    spdlog::error("{}", lock.error().message);
    std::_Exit(1);
  }
  if (!fs::exists(pending, ec)) {
    spdlog::info("apply on {} confirmed at the deadline; watcher exits", iface);
    std::_Exit(0);
  }
  spdlog::warn("no confirm within {}s: rolling {} back to the previous policy", seconds, iface);
  auto prev = load_record(dir, "previous");
  if (!prev) {
    spdlog::error("no previous policy recorded in {}; nothing to roll back to", dir);
    std::_Exit(1);
  }
  ApplyOptions req;
  req.policy_path = prev->path;
  req.profile = prev->profile;
  req.audit = prev->audit;
  req.learn = prev->learn;
  req.force = true;  // it was in force before: restoring it cannot lock anyone out further
  auto prepared = prepare_policy_text(req, prev->text, prev->base_dir, iface);
  if (auto* problems = std::get_if<Problems>(&prepared)) {
    for (const auto& p : *problems) spdlog::error("previous policy: {}", p);
    std::_Exit(1);
  }
  auto rep = reload_prepared(std::get<PreparedPolicy>(prepared), iface);
  if (!rep) {
    spdlog::error("rollback of {} failed: {}", iface, rep.error().message);
    std::_Exit(1);
  }
  ::unlink(pending.c_str());
  spdlog::warn("rolled {} back to {} (program {} -> {})", iface, prev->path, rep->old_prog_id,
               rep->new_prog_id);
  std::_Exit(0);
}

}  // namespace

namespace {
// The interface that has `address` (text, as in SSH_CONNECTION), if any.
std::optional<std::string> interface_with_address(const std::string& address) {
  in6_addr want6{};
  in_addr want4{};
  const bool v6 = ::inet_pton(AF_INET6, address.c_str(), &want6) == 1;
  if (!v6 && ::inet_pton(AF_INET, address.c_str(), &want4) != 1) return std::nullopt;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* a = list; a && !found; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    if (v6 && a->ifa_addr->sa_family == AF_INET6 &&
        std::memcmp(&reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, &want6,
                    sizeof want6) == 0)
      found = a->ifa_name;
    if (!v6 && a->ifa_addr->sa_family == AF_INET &&
        reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr == want4.s_addr)
      found = a->ifa_name;
  }
  ::freeifaddrs(list);
  return found;
}
}  // namespace

kernel::DatapathOptions datapath_options(const policy::Settings& s) {
  // The rodata the reference classifier models, from one place.
  const classify::ReferenceOptions r = classify::reference_options(s);
  kernel::DatapathOptions o;
  o.egress_mode = r.egress_mode;
  o.tcp_established_timeout_ns = r.tcp_established_timeout_ns;
  o.tcp_closing_timeout_ns = r.tcp_closing_timeout_ns;
  o.udp_timeout_ns = r.udp_timeout_ns;
  o.frag_timeout_ns = r.frag_timeout_ns;
  o.flow_table_size = s.flow_table_size;
  o.event_rate = s.event_rate;
  o.event_burst = s.event_burst;
  o.audit = s.audit;
  o.learn = s.learn;
  o.learn_table_size = s.learn_entries;
  return o;
}

std::optional<std::string> lockout_problem(const policy::RuleSet& rules, uint16_t ssh_port) {
  // (a) over every interface's view together: a policy scoped by interface
  // may admit SSH on the management NIC only.
  const bool scoped = rules.policy && !rules.iface.empty() && !rules.policy->interface_roles.empty();
  auto all = scoped ? policy::select_rules(*rules.policy, rules.profile)
                    : std::variant<policy::RuleSet, policy::Diagnostic>(rules);
  const auto* everywhere = std::get_if<policy::RuleSet>(&all);
  if (!admits_ssh(everywhere ? *everywhere : rules, ssh_port))
    return fmt::format("no rule in force admits TCP to the SSH port {}: nobody could log in to "
                       "repair this host (add an admin SSH rule, or --force)",
                       ssh_port);
  const char* conn = std::getenv("SSH_CONNECTION");
  if (!conn || !*conn) return std::nullopt;
  std::istringstream in(conn);
  std::string client, client_port, server, server_port;
  if (!(in >> client >> client_port >> server >> server_port)) {
    spdlog::warn("SSH_CONNECTION '{}' is not 'client port server port'; not checked", conn);
    return std::nullopt;
  }
  client = unmap_v4(client);
  server = unmap_v4(server);
  // (b) only on the interface that carries the session, when views differ.
  if (scoped)
    if (auto carrier = interface_with_address(server); carrier && *carrier != rules.iface)
      return std::nullopt;
  std::string spec_text = fmt::format("tcp {} -> {} flags A", endpoint_text(client, client_port),
                                      endpoint_text(server, server_port));
  auto spec = classify::parse_packet_spec(spec_text);
  if (auto* err = std::get_if<std::string>(&spec)) {
    spdlog::warn("cannot check the SSH session ({}): {}", spec_text, *err);
    return std::nullopt;
  }
  classify::ReferenceClassifier ref(rules);
  Decision d = ref.classify(classify::build_frame(std::get<classify::PacketSpec>(spec)));
  if (d.verdict == Verdict::Pass) return std::nullopt;
  return fmt::format("this policy drops your SSH session ({} -> {}: {}); fix the admin rule's "
                     "peers, or --force",
                     endpoint_text(client, client_port), endpoint_text(server, server_port),
                     drop_reason_name(d.reason));
}

std::variant<PreparedPolicy, Problems> prepare_policy_text(const ApplyOptions& req,
                                                           const std::string& text,
                                                           const std::string& base_dir,
                                                           const std::string& iface) {
  bool embedded = req.policy_path.empty() || req.policy_path == "default";
  policy::ParseResult parsed =
      policy::parse_policy_text(text, embedded ? "<embedded default>" : req.policy_path, base_dir);
  Problems problems;
  if (!parsed.ok()) {
    for (const auto& d : parsed.errors) problems.push_back(d.to_string());
    if (problems.empty()) problems.push_back("cannot read policy " + req.policy_path);
    return problems;
  }
  PreparedPolicy p;
  p.policy = std::make_unique<policy::Policy>(std::move(*parsed.policy));
  auto selected = policy::select_rules(*p.policy, req.profile, iface);
  if (auto* d = std::get_if<policy::Diagnostic>(&selected)) return Problems{d->to_string()};
  p.rules = std::get<policy::RuleSet>(std::move(selected));
  p.warnings = std::move(parsed.warnings);
  for (auto& w : policy::peer_set_warnings(*p.policy, p.rules))
    p.warnings.push_back(std::move(w));
  p.text = text;
  p.path = embedded ? "default" : req.policy_path;
  p.base_dir = base_dir;
  p.compiled = compile::compile(p.rules);
  p.options = datapath_options(p.policy->settings);
  p.audit = req.audit || p.policy->settings.audit;
  p.options.audit = p.audit;
  p.options.learn = req.learn || p.policy->settings.learn;
  p.request = req;
  if (!p.audit && !req.force)
    if (auto why = lockout_problem(p.rules, req.ssh_port))
      return Problems{"refusing to apply " + p.path + " in enforce mode: " + *why};
  return p;
}

std::variant<PreparedPolicy, Problems> prepare_policy(const ApplyOptions& req,
                                                      const std::string& iface) {
  bool embedded = req.policy_path.empty() || req.policy_path == "default";
  if (embedded) return prepare_policy_text(req, std::string(kDefaultPolicyYaml), ".", iface);
  auto text = read_file(req.policy_path);
  if (!text)
    return Problems{req.policy_path + ": cannot read policy: " + std::strerror(errno)};
  const auto slash = req.policy_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : req.policy_path.substr(0, slash ? slash : 1);
  return prepare_policy_text(req, *text, dir, iface);
}

namespace {
void record_applied(const PreparedPolicy& p, const std::string& iface) {
  auto dir = state_dir(iface);
  AppliedRecord rec{p.text, p.path, p.base_dir, p.request.profile, p.request.audit,
                    p.request.learn};
  if (!dir) {
    spdlog::warn("policy applied, but not recorded: {}", dir.error().message);
    return;
  }
  if (auto st = save_record(*dir, "applied", rec); !st)
    spdlog::warn("policy applied, but not recorded: {}", st.error().message);
}
}  // namespace

kernel::Status attach_prepared(const PreparedPolicy& p, const std::string& iface,
                               kernel::XdpMode mode) {
  auto dp = kernel::Datapath::load(p.compiled, p.options);
  if (!dp) return dp.error();
  if (auto st = kernel::attach(*dp, iface, mode); !st) return st;
  record_applied(p, iface);
  return {};
}

kernel::Result<kernel::ReloadReport> reload_prepared(const PreparedPolicy& p,
                                                     const std::string& iface) {
  auto rep = kernel::reload(p.compiled, p.options, iface);
  if (!rep) return rep.error();
  record_applied(p, iface);
  return rep;
}

namespace {
// $XDPGUARD_STATE_DIR or /run/xdpguard, and the interface's directory in it.
kernel::Result<std::pair<std::string, std::string>> state_paths(const std::string& iface) {
  auto pins = kernel::pin_dir(iface);
  if (!pins) return pins.error();
  const char* root_env = std::getenv("XDPGUARD_STATE_DIR");
  std::string root = root_env && *root_env ? root_env : "/run/xdpguard";
  std::string dir = root + "/" + fs::path(*pins).filename().string();
  return std::pair{root, dir};
}
}  // namespace

kernel::Result<std::string> state_dir(const std::string& iface) {
  auto paths = state_paths(iface);
  if (!paths) return paths.error();
  for (const std::string& d : {paths->first, paths->second})
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      return errno_error(errno, "cannot create " + d);
  return paths->second;
}

void forget_state(const std::string& iface) {
  auto paths = state_paths(iface);
  if (!paths) return;
  std::error_code ec;
  fs::remove_all(paths->second, ec);
}

kernel::Status save_record(const std::string& dir, const std::string& which,
                           const AppliedRecord& r) {
  // One "key value" line each; the text has its own file.
  std::string meta = "path " + r.path + "\nbase_dir " + r.base_dir + "\nprofile " + r.profile +
                     "\naudit " + (r.audit ? "1" : "0") + "\nlearn " + (r.learn ? "1" : "0") +
                     "\n";
  if (auto st = write_private(dir + "/" + which + ".yaml", r.text); !st) return st;
  return write_private(dir + "/" + which + ".meta", meta);
}

std::optional<AppliedRecord> load_record(const std::string& dir, const std::string& which) {
  auto text = read_file(dir + "/" + which + ".yaml");
  auto meta = read_file(dir + "/" + which + ".meta");
  if (!text || !meta) return std::nullopt;
  AppliedRecord r;
  r.text = *text;
  std::istringstream in(*meta);
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    std::string key = line.substr(0, sp), value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "path") r.path = value;
    if (key == "base_dir") r.base_dir = value;
    if (key == "profile") r.profile = value;
    if (key == "audit") r.audit = value == "1";
    if (key == "learn") r.learn = value == "1";
  }
  return r;
}

kernel::Status start_confirm_watcher(const std::string& iface, unsigned seconds) {
  auto dir = state_dir(iface);
  if (!dir) return dir.error();
  const std::string pending = *dir + "/pending";
  if (auto st = write_private(pending, std::to_string(seconds) + "\n"); !st) return st;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return errno_error(errno, "cannot start the confirm watcher");
  if (pid > 0) {
    // The child writes its own pid file; wait for it so `confirm` always finds it.
    for (int i = 0; i < 50 && !read_pid(*dir + "/watcher.pid"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return {};
  }
  // Child: its own session, no terminal, logs to the state directory.
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int log_fd = ::open((*dir + "/watcher.log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  if (log_fd >= 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
  }
  (void)write_private(*dir + "/watcher.pid", std::to_string(::getpid()) + "\n");
  spdlog::info("watching {}: rollback in {}s unless `xdpguard confirm --iface {}`", iface, seconds,
               iface);
  watch(iface, *dir, seconds);
}

kernel::Status confirm(const std::string& iface) {
  // Only reads: confirming an interface never touched leaves nothing behind.
  auto paths = state_paths(iface);
  if (!paths) return paths.error();
  const std::string& dir = paths->second;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return plain_error("nothing to confirm on " + iface);
  auto lock = lock_state(dir);
  if (!lock) return lock.error();
  const std::string pending = dir + "/pending";
  if (::unlink(pending.c_str()) != 0) {
    if (errno == ENOENT) return plain_error("nothing to confirm on " + iface);
    return errno_error(errno, "cannot remove " + pending);
  }
  // The watcher notices within 100 ms and exits; no signal, so a recycled
  // pid in a stale pid file can never be hit.
  ::unlink((dir + "/watcher.pid").c_str());
  return {};
}

}  // namespace xdpguard::daemon
