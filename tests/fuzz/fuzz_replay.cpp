// libFuzzer target: arbitrary bytes as a capture file for `xdpguard replay`:
// the pcap reader (capture/pcap_file) and the replay (classify/replay) under
// the default policy, host 192.0.2.1 and 2001:db8:ffff::1.
//
// Invariants (a broken one traps):
// - the reader never returns more bytes than the input holds, and an error
//   is a message naming the input;
// - every frame the replay decides is counted once: per direction, the pass
//   counters of the rules plus the drop reasons' packets equal the frames
//   decided, and the bytes equal their lengths.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string_view>
#include <variant>

#include "capture/pcap_file.hpp"
#include "classify/replay.hpp"
#include "policy/cidr.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace {

using namespace xdpguard;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Fixture {
  std::unique_ptr<policy::Policy> policy;
  policy::RuleSet rules;
  classify::HostIdentity host;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture out;
    auto r = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
    check(r.ok());
    out.policy = std::make_unique<policy::Policy>(std::move(*r.policy));
    out.rules = std::get<policy::RuleSet>(policy::select_rules(*out.policy, ""));
    for (const char* a : {"192.0.2.1", "2001:db8:ffff::1"})
      out.host.addresses.push_back(std::get<policy::Cidr>(policy::parse_cidr(a)));
    return out;
  }();
  return f;
}

struct Tally {
  uint64_t frames = 0, bytes = 0;
};

void check_counted(const CounterSums& c, const Tally& t) {
  uint64_t packets = 0, bytes = 0;
  for (const auto& r : c.rules) {
    packets += r.pass_packets;
    bytes += r.pass_bytes;
  }
  for (const auto& r : c.reasons) {
    packets += r.packets;
    bytes += r.bytes;
  }
  check(packets == t.frames && bytes == t.bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  std::unique_ptr<std::FILE, decltype(&std::fclose)> in(
      size ? fmemopen(const_cast<uint8_t*>(data), size, "rb") : std::tmpfile(), &std::fclose);
  check(in != nullptr);
  classify::Replay replay(f.rules, f.policy->settings, f.host);
  Tally ingress, egress;
  size_t delivered = 0;
  auto err = capture::read_pcap(in.get(), "fuzz", [&](std::span<const uint8_t> frame, uint64_t ns) {
    delivered += frame.size() + 16;
    check(delivered + 24 <= size);
    const classify::ReplayFrame r = replay.feed(frame, ns);
    if (!r.decision) return;
    Tally& t = r.egress ? egress : ingress;
    ++t.frames;
    t.bytes += frame.size();
  });
  check(!err || err->rfind("fuzz: ", 0) == 0);
  check_counted(replay.ingress(), ingress);
  check_counted(replay.egress(), egress);
  return 0;
}
