#include "daemon/learn_keeper.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "daemon/apply.hpp"

namespace xdpguard::daemon {
namespace fs = std::filesystem;
using kernel::errno_error;
using kernel::plain_error;

namespace {

constexpr auto kKeepEvery = std::chrono::minutes(5);
constexpr std::string_view kGenerationTag = "# generation ";

kernel::Result<std::string> store_dir(const std::string& iface) {
  auto pins = kernel::pin_dir(iface);
  if (!pins) return pins.error();
  const char* env = std::getenv("XDPGUARD_LEARN_DIR");
  const fs::path root = env && *env ? env : "/var/lib/xdpguard/learn";
  return (root / fs::path(*pins).filename()).string();
}

std::string generation_of(const kernel::PinnedLearn& pins) {
  std::string boot = read_file("/proc/sys/kernel/random/boot_id").value_or("unknown-boot");
  while (!boot.empty() && (boot.back() == '\n' || boot.back() == ' ')) boot.pop_back();
  return boot + " " + std::to_string(pins.peers_map_id);
}

// A kept file: its generation line (if any) and its observations.
struct Kept {
  std::string generation;
  learn::Observations seen;
};
kernel::Result<std::optional<Kept>> read_kept(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::optional<Kept>{};
  Kept k;
  if (text->starts_with(kGenerationTag))
    k.generation = text->substr(kGenerationTag.size(), text->find('\n') - kGenerationTag.size());
  std::string err;
  if (!learn::from_text(*text, k.seen, err)) return plain_error(path + ": " + err);
  return std::optional<Kept>{std::move(k)};
}

}  // namespace

learn::Observations observations_of(const kernel::PinnedLearn& p) {
  learn::Observations out;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto wall = [&](uint64_t t) {
    return now - static_cast<int64_t>((p.now_ns > t ? p.now_ns - t : 0) / 1'000'000'000ULL);
  };
  auto rule_of = [&](uint32_t slot) {
    return slot < p.slot_rule_ids.size() ? p.slot_rule_ids[slot] : std::string();
  };
  for (const auto& [k, v] : p.snapshot.peers) {
    learn::Sighting s;
    s.rule = rule_of(k.slot);
    if (s.rule.empty()) continue;  // a slot freed since (its entries are being removed)
    s.peer.family = k.family;
    std::copy(std::begin(k.addr), std::end(k.addr), s.peer.addr.begin());
    s.packets = v.packets;
    s.first_seen = wall(v.first_ns);
    s.last_seen = wall(v.last_ns);
    out.sightings.push_back(s);
  }
  for (const auto& [k, v] : p.snapshot.confirmed) {
    learn::LearnedAddress a{k.family, {}};
    std::copy(std::begin(k.addr), std::end(k.addr), a.addr.begin());
    out.confirmed[a] |= v.how;
  }
  for (uint32_t slot = 0; slot < XDPG_MAX_RULES && slot < p.snapshot.overflow.size(); ++slot)
    if (p.snapshot.overflow[slot] && !rule_of(slot).empty())
      out.overflow[rule_of(slot)] += p.snapshot.overflow[slot];
  if (p.snapshot.overflow.size() > XDPG_MAX_RULES)
    out.confirm_overflow = p.snapshot.overflow[XDPG_MAX_RULES];
  return out;
}

kernel::Status keep_learned(const std::string& iface, const kernel::PinnedLearn& pins) {
  auto dir = store_dir(iface);
  if (!dir) return dir.error();
  std::error_code ec;
  fs::create_directories(*dir, ec);
  if (ec) return plain_error("cannot create " + *dir + ": " + ec.message());
  ::chmod(dir->c_str(), 0700);
  const std::string current = *dir + "/current", earlier = *dir + "/earlier";
  const std::string generation = generation_of(pins);
  auto old = read_kept(current);
  if (!old) return old.error();
  if (*old && (*old)->generation != generation) {
    // Its maps are gone: what they saw joins the earlier generations.
    auto before = read_kept(earlier);
    if (!before) return before.error();
    learn::Observations merged = *before ? std::move((*before)->seen) : learn::Observations{};
    learn::merge(merged, (*old)->seen);
    if (auto st = write_private(earlier, learn::to_text(merged)); !st) return st;
  }
  return write_private(current, std::string(kGenerationTag) + generation + "\n" +
                                    learn::to_text(observations_of(pins)));
}

kernel::Result<learn::Observations> learned_earlier(const std::string& iface,
                                                    const kernel::PinnedLearn& pins) {
  auto dir = store_dir(iface);
  if (!dir) return dir.error();
  learn::Observations out;
  auto before = read_kept(*dir + "/earlier");
  if (!before) return before.error();
  if (*before) out = std::move((*before)->seen);
  auto current = read_kept(*dir + "/current");
  if (!current) return current.error();
  if (*current && (*current)->generation != generation_of(pins)) learn::merge(out, (*current)->seen);
  return out;
}

kernel::Status forget_learned(const std::string& iface) {
  auto dir = store_dir(iface);
  if (!dir) return dir.error();
  std::error_code ec;
  fs::remove_all(*dir, ec);
  if (ec) return plain_error("cannot remove " + *dir + ": " + ec.message());
  return {};
}

void LearnKeeper::on_ready(const std::vector<std::string>& ifaces) {
  ifaces_ = ifaces;
  keep_all();
  agent_.loop().add_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kKeepEvery),
                          [this] { keep_all(); });
}

void LearnKeeper::keep_all() {
  for (const auto& iface : ifaces_) {
    auto pins = kernel::read_learned(iface);
    if (!pins || !pins->learning) continue;  // not attached now, or not learning
    if (auto st = keep_learned(iface, *pins); !st)
      spdlog::warn("{}: what learning saw is not kept: {}", iface, st.error().message);
  }
}

}  // namespace xdpguard::daemon
