// Both programs against the reference classifier, on sequences of packets.
//
// Expected behaviour:
// - structured random sequences go through the TC egress program
//   (host -> peer, Datapath::test_run_egress) and the XDP ingress program
//   (peer -> host, Datapath::test_run) and through the reference classifier
//   (classify_egress / classify), one packet at a time in the same order:
//   the host opens flows (TCP bare SYN, UDP) to documented remote ports of
//   peers in and out of the rules' sets and to undocumented ports (6667, any);
//   peers answer (SYN-ACK, data, FIN, RST, a bare SYN), the host goes on (ACK,
//   FIN, RST, a new SYN on the same tuple); spoofed replies (wrong port, wrong
//   peer, no flow at all); ICMP/ICMPv6 errors and other types quoting tracked
//   flows, other tuples, cut-short and fragment quotes; peers connecting to
//   local ports and the host answering from them, receive-only ports too;
//   fragments both ways, in and out of order; non-IP frames; corrupted frames;
// - every packet gets the same action: XDP_PASS exactly when the reference
//   passes; TC_ACT_OK exactly when the reference says it is sent (track mode
//   sends what it counts as a drop);
// - after every batch the ingress and egress per-rule and per-reason counters
//   and the number of flow inserts are equal, and regularly the flow tables
//   hold the same keys with the same rule, TCP state and flags;
// - with learning on (docs/learn.md: half the peer sets open, the rest
//   narrowed), the learn maps hold after every batch exactly the peers,
//   packet counts, confirmations and overflow of classify::LearnModel, also in
//   audit mode (every packet passes; would-drops of a peer set are observed)
//   and with a table so small that it overflows;
// - in enforce and track mode, with timeouts that make every flow expire (0:
//   "already expired", docs/datapath.md 8.3, on the clock production uses:
//   the coarse clock may not move between two test runs), that never expire,
//   and mixes of both by TCP state. Timeouts in between depend on wall-clock
//   time and are not compared.
// The packet count is XDPGUARD_FLOW_DIFF_PACKETS (default 800,000 in total).
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <variant>

#include "classify/learn_model.hpp"
#include "classify/packet_spec.hpp"
#include "classify/reference.hpp"
#include "compile/compiler.hpp"
#include "kernel/datapath.hpp"
#include "kernel/maps_io.hpp"
#include "policy/parser.hpp"
#include "support.hpp"

namespace xdpguard {
namespace {

using classify::PacketSpec;
using testing::Addr;
using testing::expect_counters_equal;
using testing::hex;
using testing::host_address;
using testing::universe_address;
using testing::ExpectedCounters;
using L4 = PacketSpec::L4;

constexpr size_t kBatch = 1000;        // counters compared after every batch
constexpr size_t kFlowCheckEvery = 5;  // flow tables compared every this many batches
constexpr size_t kEpoch = 25'000;      // both sides reset: keeps the kernel's LRU maps far from full
constexpr uint64_t kExpireAll = 0;     // every flow expired, whatever the clock reads
constexpr uint64_t kNever = ~0ULL;
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10, kUrg = 0x20;

size_t total_packets() {
  const char* env = std::getenv("XDPGUARD_FLOW_DIFF_PACKETS");
  return env ? std::strtoull(env, nullptr, 10) : 800'000;
}

// The TCP/UDP port lists of the rules, by who opens.
struct PortVocabulary {
  struct Ports {
    L4 l4;
    std::vector<policy::PortRange> ranges;
  };
  std::vector<Ports> host_opens;  // remote_ports of local/both rules
  std::vector<Ports> peers_open;  // local_ports of remote/both rules
};

PortVocabulary port_vocabulary(const policy::RuleSet& rules) {
  PortVocabulary v;
  for (const auto& e : rules.rules) {
    const policy::Rule& r = *e.rule;
    if (r.protocol != policy::Protocol::Tcp && r.protocol != policy::Protocol::Udp) continue;
    L4 l4 = r.protocol == policy::Protocol::Tcp ? L4::Tcp : L4::Udp;
    if (r.initiator != policy::Initiator::Remote && !r.remote_ports.empty())
      v.host_opens.push_back({l4, r.remote_ports});
    if (r.initiator != policy::Initiator::Local && !r.local_ports.empty())
      v.peers_open.push_back({l4, r.local_ports});
  }
  return v;
}

// One packet of a sequence.
struct Step {
  bool egress;  // host -> peer through TC; otherwise peer -> host through XDP
  std::vector<uint8_t> frame;
  bool icmp = false;  // an ICMP message made by icmp() (not corrupted)
};

// A TCP or UDP conversation as the host sees it, whoever opened it.
struct Conversation {
  int family;
  L4 l4;
  Addr peer;
  uint16_t host_port, peer_port;
};

class SequenceGenerator {
 public:
  SequenceGenerator(uint64_t seed, PortVocabulary vocab) : rng_(seed), vocab_(std::move(vocab)) {}

  // Appends the packets of one action to `out`.
  void next(std::vector<Step>& out) {
    size_t from = out.size();
    unsigned r = rng_() % 100;
    if (r < 18) open_flow(out);
    else if (r < 36) peer_replies(out);
    else if (r < 46) host_continues(out);
    else if (r < 53) spoofed_reply(out);
    else if (r < 57) reply_without_flow(out);
    else if (r < 66) icmp(out);
    else if (r < 76) inbound_connection(out);
    else if (r < 80) undocumented_egress(out);
    else if (r < 88) fragments(out);
    else if (r < 90) non_ip(out);
    else corrupted(out);
    if (r >= 57 && r < 66)
      for (size_t i = from; i < out.size(); ++i) out[i].icmp = true;
  }

  size_t opened() const { return opened_; }

 private:
  bool chance(unsigned percent) { return rng_() % 100 < percent; }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[rng_() % v.size()]; }

  uint16_t port_in(const std::vector<policy::PortRange>& ranges) {
    const auto& r = pick(ranges);
    if (chance(60)) return r.first;
    if (chance(30)) return r.last;
    return static_cast<uint16_t>(r.first + rng_() % (r.last - r.first + 1u));
  }
  uint16_t ephemeral() { return static_cast<uint16_t>(40000 + rng_() % 64); }
  Addr peer(int family) {
    if (!conversations_.empty() && chance(20)) {
      const Conversation& c = pick(conversations_);
      if (c.family == family) return c.peer;
    }
    return universe_address(rng_, family);
  }
  int family() { return chance(50) ? 4 : 6; }

  PacketSpec packet(const Conversation& c, bool egress, uint8_t flags, size_t payload = 0) {
    PacketSpec s;
    s.family = c.family;
    s.l4 = c.l4;
    Addr host = host_address(c.family);
    s.src = egress ? host : c.peer;
    s.dst = egress ? c.peer : host;
    s.sport = egress ? c.host_port : c.peer_port;
    s.dport = egress ? c.peer_port : c.host_port;
    s.tcp_flags = flags;
    s.payload_len = payload;
    if (chance(5)) s.vlan_ids.push_back(static_cast<uint16_t>(1 + rng_() % 4000));
    if (s.family == 6 && chance(5)) s.ipv6_ext_headers = {60};
    if (s.family == 4 && chance(5)) s.ipv4_options_len = 4;
    return s;
  }
  void emit(std::vector<Step>& out, bool egress, const PacketSpec& s) {
    out.push_back({egress, classify::build_frame(s)});
  }
  void remember(const Conversation& c) {
    if (conversations_.size() < 256) conversations_.push_back(c);
    else conversations_[rng_() % conversations_.size()] = c;
  }
  uint8_t reply_flags() {
    static const std::vector<uint8_t> k = {kSyn | kAck, kAck,        kPsh | kAck, kFin | kAck,
                                           kRst,        kRst | kAck, kSyn,        kFin | kPsh | kUrg,
                                           kAck | 0xC0, kSyn | kFin};
    return pick(k);
  }
  uint8_t host_flags() {
    static const std::vector<uint8_t> k = {kAck, kPsh | kAck, kFin | kAck, kRst, kSyn, kSyn | 0xC0,
                                           kRst | kAck};
    return pick(k);
  }

  // The host opens a flow to a documented remote port, the peer in or out of its set.
  void open_flow(std::vector<Step>& out) {
    const auto& ports = pick(vocab_.host_opens);
    int fam = family();
    Conversation c{fam, ports.l4, peer(fam), ephemeral(), port_in(ports.ranges)};
    remember(c);
    ++opened_;
    emit(out, true, packet(c, true, chance(90) ? kSyn : kSyn | 0xC0, rng_() % 48));
    if (chance(50)) emit(out, false, packet(c, false, kSyn | kAck, rng_() % 16));
  }
  void peer_replies(std::vector<Step>& out) {
    if (conversations_.empty()) return open_flow(out);
    const Conversation& c = pick(conversations_);
    emit(out, false, packet(c, false, reply_flags(), rng_() % 200));
  }
  void host_continues(std::vector<Step>& out) {
    if (conversations_.empty()) return open_flow(out);
    const Conversation& c = pick(conversations_);
    emit(out, true, packet(c, true, host_flags(), rng_() % 200));
    if (chance(40)) emit(out, false, packet(c, false, reply_flags(), rng_() % 50));
  }
  // A reply to a tracked conversation with one field changed.
  void spoofed_reply(std::vector<Step>& out) {
    if (conversations_.empty()) return open_flow(out);
    Conversation c = pick(conversations_);
    switch (rng_() % 5) {
      case 0: c.host_port = static_cast<uint16_t>(c.host_port + 1 + rng_() % 3); break;
      // To a port the host serves: a local-port hit wins over the remote-port one.
      case 4: c.host_port = port_in(pick(vocab_.peers_open).ranges); break;
      case 1: c.peer = universe_address(rng_, c.family); break;
      case 2: c.peer_port = port_in(pick(vocab_.host_opens).ranges); break;
      default: c.l4 = c.l4 == L4::Tcp ? L4::Udp : L4::Tcp; break;
    }
    emit(out, false, packet(c, false, reply_flags()));
  }
  // From a documented remote port to the host, no flow ever opened.
  void reply_without_flow(std::vector<Step>& out) {
    const auto& ports = pick(vocab_.host_opens);
    int fam = family();
    Conversation c{fam, ports.l4, universe_address(rng_, fam),
                   static_cast<uint16_t>(chance(50) ? ephemeral() : 1 + rng_() % 65535),
                   port_in(ports.ranges)};
    emit(out, false, packet(c, false, reply_flags()));
  }

  // ICMP errors (and other types) quoting the host's packets, inbound; and
  // ICMP the host sends.
  void icmp(std::vector<Step>& out) {
    int fam = family();
    std::optional<Conversation> quoted;
    for (int tries = 0; tries < 4 && !conversations_.empty(); ++tries) {
      const Conversation& c = pick(conversations_);
      if (c.family == fam) {
        quoted = c;
        break;
      }
    }
    if (!quoted) {
      const auto& ports = pick(vocab_.host_opens);
      quoted = Conversation{fam, ports.l4, universe_address(rng_, fam), ephemeral(),
                            port_in(ports.ranges)};
    }
    if (chance(25)) {  // quote a tuple the host never used
      if (chance(50)) quoted->host_port = static_cast<uint16_t>(quoted->host_port + 1);
      else quoted->peer_port = static_cast<uint16_t>(quoted->peer_port ^ 1);
    }
    PacketSpec inner = packet(*quoted, true, kSyn);
    inner.vlan_ids.clear();
    inner.ipv6_ext_headers.clear();
    inner.payload_len = rng_() % 16;
    if (chance(5)) inner.ipv6_ext_headers = {60};  // not matched: quotes carry no extensions
    if (chance(5)) inner.ipv4_options_len = 8;     // matched: IHL is honoured
    if (chance(3)) inner.frag_offset = 3;          // a non-first fragment: not matched
    std::vector<uint8_t> quote = classify::build_frame(inner);
    quote.erase(quote.begin(), quote.begin() + 14);
    if (chance(8)) quote.resize(rng_() % (quote.size() + 1));  // cut short

    PacketSpec e;
    e.family = fam;
    e.l4 = fam == 4 ? L4::Icmp : L4::Icmpv6;
    static const std::vector<uint8_t> k4 = {3, 3, 11, 12, 0, 5, 8, 4};
    static const std::vector<uint8_t> k6 = {1, 2, 2, 3, 4, 128, 129, 135, 137};
    e.icmp_type = pick(fam == 4 ? k4 : k6);
    e.icmp_code = static_cast<uint8_t>(rng_() % 5);
    bool egress = chance(20);
    Addr router = universe_address(rng_, fam);
    e.src = egress ? host_address(fam) : (chance(30) ? quoted->peer : router);
    e.dst = egress ? router : host_address(fam);
    e.payload_len = quote.size();
    std::vector<uint8_t> frame = classify::build_frame(e);
    std::copy(quote.begin(), quote.end(), frame.begin() + classify::frame_layout(e).payload);
    out.push_back({egress, std::move(frame)});
  }

  // A peer connects to a local port; the host answers from it.
  void inbound_connection(std::vector<Step>& out) {
    const auto& ports = pick(vocab_.peers_open);
    int fam = family();
    Conversation c{fam, ports.l4, peer(fam), port_in(ports.ranges),
                   static_cast<uint16_t>(1024 + rng_() % 64)};
    emit(out, false, packet(c, false, kSyn, rng_() % 32));
    static const std::vector<uint8_t> answers = {kSyn | kAck, kAck, kPsh | kAck, kFin | kAck,
                                                 kRst | kAck, kSyn};
    emit(out, true, packet(c, true, pick(answers), rng_() % 64));
    if (chance(50)) emit(out, false, packet(c, false, kAck, rng_() % 64));
  }
  void undocumented_egress(std::vector<Step>& out) {
    int fam = family();
    Conversation c{fam, chance(60) ? L4::Tcp : L4::Udp, peer(fam), ephemeral(),
                   static_cast<uint16_t>(chance(50) ? 6667 : 1 + rng_() % 65535)};
    emit(out, true, packet(c, true, kSyn));
    emit(out, false, packet(c, false, kSyn | kAck));
  }

  // A datagram in fragments, either way, in order or not, sometimes incomplete.
  void fragments(std::vector<Step>& out) {
    Conversation c;
    if (!conversations_.empty() && chance(70)) {
      c = pick(conversations_);
    } else {
      const auto& ports = pick(vocab_.peers_open);
      int fam = family();
      c = Conversation{fam, ports.l4, peer(fam), port_in(ports.ranges),
                       static_cast<uint16_t>(1024 + rng_() % 64)};
    }
    bool egress = chance(50);
    PacketSpec first = packet(c, egress, egress ? kSyn : kAck, 64);
    first.more_fragments = true;
    first.frag_id = static_cast<uint32_t>(rng_() % 8);
    if (first.family == 6) first.ipv6_ext_headers.push_back(44);
    std::vector<Step> parts;
    parts.push_back({egress, classify::build_frame(first)});
    for (unsigned k = 0, n = 1 + rng_() % 2; k < n; ++k) {
      PacketSpec later = first;
      later.frag_offset = static_cast<uint16_t>(chance(5) ? 1 : 9 + k * 9);
      later.more_fragments = k + 1 < n;
      later.payload_len = 72;
      bool other_way = chance(10);  // the same key seen by the other program
      parts.push_back({other_way ? !egress : egress, classify::build_frame(later)});
    }
    if (chance(20)) std::swap(parts[0], parts[1]);  // out of order
    if (chance(10)) parts.erase(parts.begin());     // the first fragment is lost
    for (auto& p : parts) out.push_back(std::move(p));
  }
  void non_ip(std::vector<Step>& out) {
    PacketSpec s;
    s.family = 0;
    s.ethertype = chance(70) ? 0x0806 : static_cast<uint16_t>(0x0600 + rng_() % 0xF000);
    s.payload_len = 28;
    emit(out, chance(50), s);
  }
  // Any of the above, then truncated or with a byte flipped.
  void corrupted(std::vector<Step>& out) {
    std::vector<Step> steps;
    while (steps.empty()) {
      unsigned r = rng_() % 4;
      if (r == 0) open_flow(steps);
      else if (r == 1) peer_replies(steps);
      else if (r == 2) icmp(steps);
      else inbound_connection(steps);
    }
    for (auto& s : steps) {
      if (chance(50) && s.frame.size() > 14) s.frame.resize(14 + rng_() % (s.frame.size() - 14));
      else s.frame[rng_() % std::min<size_t>(s.frame.size(), 80)] ^= static_cast<uint8_t>(1 + rng_() % 255);
      out.push_back(std::move(s));
    }
  }

  std::mt19937_64 rng_;
  PortVocabulary vocab_;
  std::vector<Conversation> conversations_;
  size_t opened_ = 0;
};

// The kernel's flow table as the reference's key type, without timestamps.
struct FlowFacts {
  uint32_t rule;
  uint8_t tcp_state, flags;
  bool operator==(const FlowFacts&) const = default;
};

// Both maps (IPv4 flows have their own); a key listed twice would show as a
// size mismatch.
std::map<classify::FlowKey, FlowFacts> kernel_flows(const kernel::Datapath& dp) {
  std::map<classify::FlowKey, FlowFacts> out;
  size_t seen = 0;
  auto st = kernel::for_each_flow(
      dp.map_fd(kernel::MapId::FlowsV4), dp.map_fd(kernel::MapId::Flows),
      [&](const xdpg_flow_key& f, const xdpg_flow_value& v) {
        classify::FlowKey k;
        k.family = f.family;
        k.protocol = f.protocol;
        k.local_port = f.local_port;
        k.remote_port = f.remote_port;
        std::memcpy(k.local_addr.data(), f.local_addr, 16);
        std::memcpy(k.remote_addr.data(), f.remote_addr, 16);
        out[k] = {v.rule, v.tcp_state, v.flags};
        ++seen;
      });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(seen, out.size()) << "a flow listed twice";
  return out;
}

// BPF_PROG_TEST_RUN for skb programs refuses (EINVAL) an untagged IPv4 or
// IPv6 frame shorter than its fixed IP header. A real egress skb always holds
// the header the stack built, so such frames are only sent through ingress.
bool egress_test_run_refuses(const std::vector<uint8_t>& frame) {
  if (frame.size() < 14) return true;
  uint16_t ethertype = static_cast<uint16_t>(frame[12] << 8 | frame[13]);
  return (ethertype == 0x0800 && frame.size() < 14 + 20) ||
         (ethertype == 0x86DD && frame.size() < 14 + 40);
}

struct Timeouts {
  uint64_t tcp_established, tcp_closing, udp;
};

struct Scenario {
  const char* name;
  uint8_t mode;
  Timeouts timeouts;
  const char* profile;
  bool narrow_sets;
  bool without_error_rules;  // drop the icmp(v6)-errors rules: errors pass only by flow
  uint64_t seed;
  bool learn = false;  // learning on, every other peer set left open
  bool audit = false;
  uint32_t learn_entries = XDPG_LEARN_ENTRIES;
};

constexpr Timeouts kNeverExpire{kNever, kNever, kNever};
constexpr Timeouts kAllExpire{kExpireAll, kExpireAll, kExpireAll};
constexpr Timeouts kClosingExpires{kNever, kExpireAll, kNever};
constexpr Timeouts kEstablishedExpires{kExpireAll, kNever, kExpireAll};

const Scenario kScenarios[] = {
    {"enforce_never_expire", XDPG_EGRESS_ENFORCE, kNeverExpire, "", true, false, 11},
    {"enforce_all_expire", XDPG_EGRESS_ENFORCE, kAllExpire, "", true, false, 12},
    {"enforce_closing_expires", XDPG_EGRESS_ENFORCE, kClosingExpires, "", true, true, 13},
    {"enforce_established_expires", XDPG_EGRESS_ENFORCE, kEstablishedExpires, "", true, false, 14},
    {"enforce_open_sets", XDPG_EGRESS_ENFORCE, kNeverExpire, "", false, false, 15},
    {"track_never_expire", XDPG_EGRESS_TRACK, kNeverExpire, "", true, true, 16},
    {"track_all_expire", XDPG_EGRESS_TRACK, kAllExpire, "", true, false, 17},
    {"track_secured_only", XDPG_EGRESS_TRACK, kClosingExpires, "secured-only", true, false, 18},
    {"learn_enforce", XDPG_EGRESS_ENFORCE, kNeverExpire, "", true, false, 19, true},
    {"learn_audit_full_table", XDPG_EGRESS_ENFORCE, kNeverExpire, "", true, false, 20, true, true,
     40},
};

// What the learn maps hold, as the model states it: peers -> packets,
// confirmed address -> how, overflow. Timestamps run on different clocks.
struct LearnFacts {
  std::map<classify::LearnedPeerKey, uint64_t> peers;
  std::map<classify::LearnedAddress, uint32_t> confirmed;
  std::vector<uint64_t> overflow;
  bool operator==(const LearnFacts&) const = default;
};

LearnFacts model_facts(const classify::LearnModel& m) {
  LearnFacts out;
  for (const auto& [k, v] : m.peers()) out.peers[k] = v.packets;
  out.confirmed = m.confirmed();
  out.overflow.assign(m.overflow().begin(), m.overflow().end());
  return out;
}

LearnFacts kernel_facts(const kernel::Datapath& dp) {
  LearnFacts out;
  auto got = dp.learned();
  EXPECT_TRUE(got.ok()) << got.error().message;
  if (!got.ok()) return out;
  for (const auto& [k, v] : got->peers) {
    classify::LearnedAddress a{k.family, {}};
    std::memcpy(a.addr.data(), k.addr, 16);
    out.peers[{k.slot, a}] = v.packets;
    EXPECT_LE(v.first_ns, v.last_ns);
  }
  for (const auto& [k, v] : got->confirmed) {
    classify::LearnedAddress a{k.family, {}};
    std::memcpy(a.addr.data(), k.addr, 16);
    out.confirmed[a] = v.how;
  }
  out.overflow = got->overflow;
  return out;
}
constexpr size_t kScenarioCount = std::size(kScenarios);

class FlowDifferential : public ::testing::TestWithParam<Scenario> {};

TEST_P(FlowDifferential, BothProgramsAgreeWithReferenceOnSequences) {
  const Scenario& sc = GetParam();
  auto parsed = policy::parse_policy_text(kDefaultPolicyYaml, "default", "");
  ASSERT_TRUE(parsed.ok());
  policy::Policy pol = std::move(*parsed.policy);

  std::mt19937_64 rng(sc.seed);
  if (sc.narrow_sets) testing::narrow_peer_sets(pol, rng);
  if (sc.learn)
    for (size_t i = 0; i < pol.peer_sets.size(); i += 2) {
      policy::Cidr any4, any6;
      any6.family = 6;
      pol.peer_sets[i].cidrs = {any4, any6};
    }
  auto selected = policy::select_rules(pol, sc.profile);
  ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(selected));
  policy::RuleSet rules = std::get<policy::RuleSet>(selected);
  if (sc.without_error_rules)
    std::erase_if(rules.rules, [](const policy::RuleSet::Entry& e) {
      return e.rule->id == "icmp-errors" || e.rule->id == "icmpv6-errors";
    });

  kernel::DatapathOptions options;
  options.frag_timeout_ns = kNever;
  options.egress_mode = sc.mode;
  options.tcp_established_timeout_ns = sc.timeouts.tcp_established;
  options.tcp_closing_timeout_ns = sc.timeouts.tcp_closing;
  options.udp_timeout_ns = sc.timeouts.udp;
  options.learn = sc.learn;
  options.audit = sc.audit;
  options.learn_table_size = sc.learn_entries;
  const compile::CompiledPolicy compiled = compile::compile(rules);
  auto dp = kernel::Datapath::load(compiled, options);
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  classify::LearnModel learn({compiled.learn_rules, sc.audit, sc.learn_entries});
  if (sc.learn) ASSERT_NE(compiled.learn_rules, 0u);

  classify::ReferenceOptions ref_options;
  ref_options.egress_mode = sc.mode;
  ref_options.frag_timeout_ns = kNever;
  ref_options.tcp_established_timeout_ns = sc.timeouts.tcp_established;
  ref_options.tcp_closing_timeout_ns = sc.timeouts.tcp_closing;
  ref_options.udp_timeout_ns = sc.timeouts.udp;
  uint64_t clock = 0;
  ref_options.clock = [&clock] { return clock += 1000; };  // every packet later than the last
  classify::ReferenceClassifier reference(rules, ref_options);

  SequenceGenerator gen(sc.seed, port_vocabulary(rules));
  ExpectedCounters in_expected, out_expected;
  std::vector<Step> steps;
  const size_t n = total_packets() / kScenarioCount;
  size_t done = 0, batches = 0, flows_created = 0;
  size_t in_count = 0, out_count = 0, refused = 0, quoted_flow_passes = 0;
  size_t learned_peers_seen = 0, audit_observations = 0;
  uint32_t confirm_kinds = 0;
  uint64_t overflowed = 0;
  std::map<std::string, size_t> outcomes;  // direction + reason: the generator reaches them all

  auto compare_state = [&](bool flows_too) {
    std::string where = "after " + std::to_string(done) + " packets";
    auto ir = dp->rule_counters();
    auto iq = dp->reason_counters();
    auto er = dp->egress_rule_counters();
    auto eq = dp->egress_reason_counters();
    auto fc = kernel::read_flow_counters(dp->map_fd(kernel::MapId::FlowCounters));
    ASSERT_TRUE(ir.ok() && iq.ok() && er.ok() && eq.ok() && fc.ok());
    expect_counters_equal(*ir, *iq, in_expected, rules, "ingress " + where);
    if (::testing::Test::HasFatalFailure()) return;
    expect_counters_equal(*er, *eq, out_expected, rules, "egress " + where);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_EQ(fc->inserts, reference.flow_inserts()) << "flow inserts " << where;
    if (sc.learn) {
      LearnFacts want = model_facts(learn), got = kernel_facts(*dp);
      ASSERT_EQ(got.peers.size(), want.peers.size()) << "learned peers " << where;
      ASSERT_TRUE(got.peers == want.peers) << "learned peers' packets " << where;
      ASSERT_TRUE(got.confirmed == want.confirmed) << "confirmed addresses " << where;
      ASSERT_EQ(got.overflow, want.overflow) << "learn overflow " << where;
      learned_peers_seen = std::max(learned_peers_seen, want.peers.size());
      for (const auto& [k, packets] : want.peers)
        if (!(compiled.learn_rules >> k.rule & 1)) ++audit_observations;
      for (const auto& [a, how] : want.confirmed) confirm_kinds |= how;
      for (uint64_t o : want.overflow) overflowed += o;
    }
    if (!flows_too) return;
    std::map<classify::FlowKey, FlowFacts> want;
    for (const auto& [k, v] : reference.flows()) want[k] = {v.rule, v.tcp_state, v.flags};
    auto got = kernel_flows(*dp);
    ASSERT_EQ(got.size(), want.size()) << "flow table size " << where;
    ASSERT_TRUE(got == want) << "flow table contents " << where;
  };

  while (done < n) {
    steps.clear();
    gen.next(steps);
    for (const Step& step : steps) {
      if (step.egress && egress_test_run_refuses(step.frame)) {
        ++refused;
        continue;
      }
      ++done;
      const char* dir = step.egress ? "egress" : "ingress";
      Decision want;
      int want_action, got_action;
      if (step.egress) {
        classify::EgressDecision e = reference.classify_egress(step.frame);
        ASSERT_TRUE(e.decision.has_value());
        want = *e.decision;
        want_action = e.sent || sc.audit ? TC_ACT_OK : TC_ACT_SHOT;
        learn.egress(reference.last_packet(), want, clock);
        auto action = dp->test_run_egress(step.frame);
        ASSERT_TRUE(action.ok()) << action.error().message;
        got_action = *action;
        out_expected.count(want, step.frame.size());
        ++out_count;
      } else {
        want = reference.classify(step.frame);
        want_action = want.verdict == Verdict::Pass || sc.audit ? XDP_PASS : XDP_DROP;
        learn.ingress(reference.last_packet(), want, clock);
        auto action = dp->test_run(step.frame);
        ASSERT_TRUE(action.ok()) << action.error().message;
        got_action = *action;
        in_expected.count(want, step.frame.size());
        ++in_count;
      }
      ASSERT_EQ(got_action, want_action)
          << dir << " packet " << done << " reference: " << to_string(want)
          << "\nframe: " << hex(step.frame);
      outcomes[std::string(dir) + " " +
               (want.verdict == Verdict::Pass ? "pass" : drop_reason_name(want.reason))]++;
      // An ICMP message passed on a TCP/UDP rule: admitted by the flow it quotes.
      if (step.icmp && !step.egress && want.verdict == Verdict::Pass) {
        auto proto = rules.rules[*want.rule].rule->protocol;
        if (proto == policy::Protocol::Tcp || proto == policy::Protocol::Udp) ++quoted_flow_passes;
      }

      if (done % kBatch == 0) {
        ++batches;
        compare_state(batches % kFlowCheckEvery == 0);
        if (HasFatalFailure()) return;
      }
      if (done % kEpoch == 0) {
        compare_state(true);
        if (HasFatalFailure()) return;
        flows_created += reference.flow_inserts();
        ASSERT_TRUE(dp->reset_state().ok());
        reference.reset_state();
        learn.reset();
        in_expected = {};
        out_expected = {};
      }
    }
  }
  compare_state(true);
  if (HasFatalFailure()) return;
  flows_created += reference.flow_inserts();

  // Agreement proves little unless the sequences reach the outcomes that matter.
  for (const char* must : {"ingress pass", "ingress no_flow", "ingress no_rule",
                           "ingress fragment_orphan", "ingress bad_tcp_flags", "ingress malformed",
                           "egress pass", "egress no_rule", "egress fragment_orphan",
                           "egress malformed"})
    EXPECT_GT(outcomes[must], 0u) << must;
  if (sc.narrow_sets) {
    EXPECT_GT(outcomes["ingress peer_not_in_set"], 0u);
    EXPECT_GT(outcomes["egress peer_not_in_set"], 0u);
  }
  if (sc.profile == std::string_view("")) EXPECT_GT(outcomes["egress receive_only"], 0u);
  EXPECT_GT(flows_created, n / 50);
  // With narrowed sets the error rules do not cover every router.
  const bool some_live = sc.timeouts.tcp_established == kNever ||
                         sc.timeouts.tcp_closing == kNever || sc.timeouts.udp == kNever;
  // Learning scenarios reopen half the sets, perhaps the error rules' too.
  if (sc.narrow_sets && !sc.learn && some_live) EXPECT_GT(quoted_flow_passes, 0u);
  if (!some_live) EXPECT_EQ(quoted_flow_passes, 0u);
  if (sc.learn) {
    EXPECT_GT(learned_peers_seen, 0u);
    EXPECT_EQ(confirm_kinds, uint32_t{XDPG_CONFIRM_TCP_ESTABLISHED | XDPG_CONFIRM_HOST_OPENED});
    if (sc.audit) EXPECT_GT(audit_observations, 0u);
    if (sc.learn_entries < 1000) EXPECT_GT(overflowed, 0u);
  }

  std::printf("[ %s ] %zu packets (%zu ingress, %zu egress; %zu short egress frames not run), "
              "%zu flows opened by the generator, %zu flow inserts, %zu ICMP passed by a quoted "
              "flow; learning: up to %zu peers, %llu not recorded (table full)\n ",
              sc.name, done, in_count, out_count, refused, gen.opened(), flows_created,
              quoted_flow_passes, learned_peers_seen, static_cast<unsigned long long>(overflowed));
  for (const auto& [what, count] : outcomes) std::printf(" %s=%zu", what.c_str(), count);
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(DefaultPolicy, FlowDifferential, ::testing::ValuesIn(kScenarios),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xdpguard
