// Scale: per-packet cost, compile+load time and map memory as a peer set
// grows (IPv4 and IPv6 CIDRs) and as rules carry more ports/ranges. Control
// plane: compile and load of the default policy, a reload, and RSS.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <sys/resource.h>

#include <arpa/inet.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "common.hpp"
#include "subcommands.hpp"

namespace xdpguard::bench {
namespace {

std::vector<size_t> sizes_from(const Args& args, const std::string& key, const std::string& def) {
  std::vector<size_t> out;
  std::string s = args.get(key, def);
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    out.push_back(std::stoul(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// `n` distinct random prefixes: IPv4 /24 in 11.0.0.0-191.255.255.0 (clear of
// the documentation ranges the miss packets use), IPv6 /48 under 2a00::/12.
std::vector<std::string> random_prefixes(int family, size_t n, std::mt19937_64& rng) {
  std::set<uint64_t> seen;
  std::vector<std::string> out;
  out.reserve(n);
  while (out.size() < n) {
    if (family == 4) {
      uint32_t a = 11 + uint32_t(rng() % 181), b = uint32_t(rng() % 256), c = uint32_t(rng() % 256);
      uint64_t key = (uint64_t(a) << 16) | (b << 8) | c;
      if (!seen.insert(key).second) continue;
      out.push_back(fmt::format("{}.{}.{}.0/24", a, b, c));
    } else {
      uint64_t v = rng() & 0xfffffffffULL;  // 36 bits after the /12
      if (!seen.insert(v).second) continue;
      uint16_t w0 = uint16_t(0x2a00 | (v >> 32)), w1 = uint16_t(v >> 16), w2 = uint16_t(v);
      out.push_back(fmt::format("{:x}:{:x}:{:x}::/48", w0, w1, w2));
    }
  }
  return out;
}

// An address inside a prefix made by random_prefixes.
std::string host_in(const std::string& prefix, int family) {
  std::string p = prefix.substr(0, prefix.find('/'));
  if (family == 4) return p.substr(0, p.rfind('.')) + ".77";
  return "[" + p + "77]";
}

struct Measured {
  Summary hit, miss;
  uint32_t hit_ret = 0, miss_ret = 0;
};

// Cost of a member packet (rotating over members between runs) and of a
// non-member packet.
Measured measure(const kernel::Datapath& dp, HoldPool& holds, const std::vector<std::string>& hits,
                 const std::string& miss, uint32_t repeat, int runs) {
  holds.hold(dp.prog_fd());
  Measured m;
  std::vector<double> h, x;
  auto mf = frame(miss);
  test_run_ns(dp.prog_fd(), frame(hits[0]), repeat / 10);
  for (int r = 0; r < runs; ++r) {
    h.push_back(test_run_ns(dp.prog_fd(), frame(hits[size_t(r) % hits.size()]), repeat, &m.hit_ret));
    x.push_back(test_run_ns(dp.prog_fd(), mf, repeat, &m.miss_ret));
  }
  holds.release_all();
  m.hit = summarize(h);
  m.miss = summarize(x);
  return m;
}

std::string s3(const Summary& s) { return fmt::format("{:.2f} [{:.2f}-{:.2f}]", s.median, s.min, s.max); }

void record(Records& rec, const std::string& dim, size_t n, const BuiltPolicy& b, const Loaded& l,
            const Measured& m, uint64_t lookup_mem, uint64_t total_mem, size_t entries) {
  rec.add({{"section", jstr("scale")}, {"dimension", jstr(dim)}, {"size", jnum(double(n))},
           {"entries", jnum(double(entries))},
           {"parse_ms", jnum(b.parse_ms)}, {"compile_ms", jnum(b.compile_ms)},
           {"load_ms", jnum(l.load_ms)}, {"hit_median_ns", jnum(m.hit.median)},
           {"hit_min_ns", jnum(m.hit.min)}, {"hit_max_ns", jnum(m.hit.max)},
           {"miss_median_ns", jnum(m.miss.median)}, {"miss_min_ns", jnum(m.miss.min)},
           {"miss_max_ns", jnum(m.miss.max)}, {"hit_retval", jnum(m.hit_ret)},
           {"miss_retval", jnum(m.miss_ret)}, {"lookup_map_memlock", jnum(double(lookup_mem))},
           {"all_maps_memlock", jnum(double(total_mem))}});
}

// A tcp rule per group of ports, appended to the vendor rules of the default
// policy. Entries alternate a single port and a 3-port range, 5 ports apart,
// from 10000 up: clear of every port the default policy uses.
std::string policy_with_ports(size_t n, uint16_t* hit_port) {
  std::string text(kDefaultPolicyYaml);
  size_t rules = std::min<size_t>(n, 16);
  std::string extra;
  size_t k = 0;
  for (size_t r = 0; r < rules; ++r) {
    size_t count = n / rules + (r < n % rules ? 1 : 0);
    std::string ports;
    for (size_t i = 0; i < count; ++i, ++k) {
      unsigned p = 10000 + unsigned(k) * 5;
      ports += (i ? ", " : "") + (k % 2 ? fmt::format("\"{}-{}\"", p, p + 2) : std::to_string(p));
      *hit_port = static_cast<uint16_t>(p);
    }
    extra += fmt::format(
        "  - id: bench-ports-{}\n    section: bench\n    row: \"bench | TCP | many\"\n"
        "    protocol: tcp\n    local_port: [{}]\n    peers: ovoc-clients\n"
        "    initiator: remote\n    flow: bidirectional\n    secured: false\n"
        "    purpose: benchmark rule.\n\n",
        r, ports);
  }
  size_t at = text.find("\nhost_essentials:");
  if (at == std::string::npos) die("default policy has no host_essentials");
  at = text.rfind("\n# ====", at);  // before the essentials' comment banner
  text.insert(at + 1, extra);
  return text;
}

// `k` nested prefixes of 10.1.2.3 (IPv4: /32 down to /33-k) or 2001:db8:1:2::3
// (IPv6: /128 down to /129-k) as a YAML list, and a member that only the
// shortest holds (it differs from the anchor in the bit just past it), so
// that it costs every probe.
std::pair<std::string, std::string> nested_lengths(int family, unsigned k) {
  const int bits = family == 4 ? 32 : 128, af = family == 4 ? AF_INET : AF_INET6;
  std::array<uint8_t, 16> anchor{};
  inet_pton(af, family == 4 ? "10.1.2.3" : "2001:db8:1:2::3", anchor.data());
  auto text = [&](const std::array<uint8_t, 16>& a) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(af, a.data(), buf, sizeof buf);
    return std::string(buf);
  };
  std::string list;
  for (int len = bits; len > bits - int(k); --len) {
    auto net = anchor;
    for (int bit = len; bit < bits; ++bit) net[bit / 8] &= uint8_t(~(0x80 >> (bit % 8)));
    list += fmt::format("{}\"{}/{}\"", list.empty() ? "" : ", ", text(net), len);
  }
  auto member = anchor;
  const int past = bits - int(k) + 1;  // the shortest length; its first host bit flips
  member[past / 8] ^= uint8_t(0x80 >> (past % 8));
  return {fmt::format("[{}]", list), family == 4 ? text(member) : fmt::format("[{}]", text(member))};
}

// Cost against the number of distinct prefix lengths (the lookup probes one
// hash per length, longest first): a member of only the shortest prefix pays
// every probe. Separate section: the targets are about set size.
void run_lengths(const Args& args, HoldPool& holds, Records& rec,
                 const kernel::DatapathOptions& opts, uint32_t repeat, int runs) {
  fmt::print("\nDistinct prefix lengths (nested prefixes of one address; the member is in the "
             "shortest only), repeat {}\n", repeat);
  fmt::print("{:<10} {:>7} {:>22} {:>22} {:>9}\n", "family", "lengths", "member (pass)",
             "non-member (drop)", "load");
  for (int family : {4, 6}) {
    for (size_t k : sizes_from(args, family == 4 ? "lengths-v4" : "lengths-v6",
                               family == 4 ? "1,8,16,32" : "1,8,32,128")) {
      auto [cidrs, member] = nested_lengths(family, unsigned(k));
      BuiltPolicy b = build_policy(default_policy_with_set("managed-devices", cidrs));
      Loaded l = load_datapath(b.compiled, opts);
      const char* dst = family == 4 ? "198.51.100.10" : "[2001:db8::10]";
      Measured m = measure(l.dp, holds, {fmt::format("udp {}:40000 -> {}:162 len 20", member, dst)},
                           // outside the /1 too (its first bit differs)
                           fmt::format("udp {}:40000 -> {}:162 len 20",
                                       family == 4 ? "192.0.2.7" : "[a001:db8::7]", dst),
                           repeat, runs);
      fmt::print("{:<10} {:>7} {:>22} {:>22} {:>9.1f}\n", family == 4 ? "IPv4" : "IPv6", k,
                 s3(m.hit), s3(m.miss), l.load_ms);
      if (m.hit_ret != XDP_PASS || m.miss_ret != XDP_DROP)
        fmt::print(stderr, "warning: {} lengths IPv{}: verdicts {} / {}, expected pass / drop\n",
                   k, family, m.hit_ret, m.miss_ret);
      rec.add({{"section", jstr("peer-lengths")}, {"family", jnum(family)},
               {"lengths", jnum(double(k))}, {"load_ms", jnum(l.load_ms)},
               {"hit_median_ns", jnum(m.hit.median)}, {"hit_min_ns", jnum(m.hit.min)},
               {"hit_max_ns", jnum(m.hit.max)}, {"miss_median_ns", jnum(m.miss.median)},
               {"miss_min_ns", jnum(m.miss.min)}, {"miss_max_ns", jnum(m.miss.max)}});
    }
  }
}

}  // namespace

int run_scale(const Args& args) {
  const uint32_t repeat = static_cast<uint32_t>(args.num("repeat", 1'000'000));
  const int runs = static_cast<int>(args.num("runs", 7));
  Records rec(args.get("out"));
  HoldPool holds(args.get("hold-devs"));
  std::string work = args.get("workdir", "/tmp");
  realtime_if_asked(args);
  std::mt19937_64 rng(6);
  kernel::DatapathOptions opts;
  opts.egress_mode = XDPG_EGRESS_ENFORCE;

  fmt::print("Scale, repeat {}, {} runs: median [min-max] ns/packet; times in ms; memory in KiB\n",
             repeat, runs);
  fmt::print("{:<10} {:>7} {:>8} {:>22} {:>22} {:>9} {:>9} {:>9} {:>10} {:>10}\n", "dimension",
             "size", "entries", "member (pass)", "non-member (drop)", "parse", "compile", "load",
             "lookup KiB", "all KiB");
  for (int family : {4, 6}) {
    for (size_t n : sizes_from(args, "cidrs", "10,1000,100000")) {
      auto prefixes = random_prefixes(family, n, rng);
      std::string file = fmt::format("{}/xgb-set-v{}-{}.txt", work, family, n);
      {
        std::ofstream out(file);
        for (const auto& p : prefixes) out << p << '\n';
      }
      BuiltPolicy b = build_policy(default_policy_with_set("managed-devices", file, true), work);
      std::filesystem::remove(file);
      Loaded l = load_datapath(b.compiled, opts);
      std::vector<std::string> hits;
      for (int r = 0; r < runs; ++r) {
        const std::string& p = prefixes[(size_t(r) * 7919) % prefixes.size()];
        hits.push_back(fmt::format("udp {}:40000 -> {}:162 len 20", host_in(p, family),
                                   family == 4 ? "198.51.100.10" : "[2001:db8::10]"));
      }
      std::string miss = family == 4 ? "udp 192.0.2.7:40000 -> 198.51.100.10:162 len 20"
                                     : "udp [2001:db8::7]:40000 -> [2001:db8::10]:162 len 20";
      Measured m = measure(l.dp, holds, hits, miss, repeat, runs);
      auto peers = family == 4 ? kernel::MapId::PeersV4 : kernel::MapId::PeersV6;
      uint64_t peers_mem = map_memlock(l.dp.map_fd(peers));
      uint64_t all_mem = object_map_memlock(l.dp);
      size_t entries =
          family == 4 ? b.compiled.peers_v4.entries.size() : b.compiled.peers_v6.entries.size();
      std::string dim = family == 4 ? "cidrs-v4" : "cidrs-v6";
      fmt::print("{:<10} {:>7} {:>8} {:>22} {:>22} {:>9.1f} {:>9.1f} {:>9.1f} {:>10} {:>10}\n", dim,
                 n, entries, s3(m.hit), s3(m.miss), b.parse_ms, b.compile_ms, l.load_ms,
                 peers_mem / 1024, all_mem / 1024);
      if (m.hit_ret != XDP_PASS || m.miss_ret != XDP_DROP)
        fmt::print(stderr, "warning: {} {}: verdicts {} / {}, expected pass / drop\n", dim, n,
                   m.hit_ret, m.miss_ret);
      record(rec, dim, n, b, l, m, peers_mem, all_mem, entries);
    }
  }
  for (size_t n : sizes_from(args, "ports", "10,1000,10000")) {
    uint16_t hit_port = 0;
    BuiltPolicy b = build_policy(policy_with_ports(n, &hit_port));
    Loaded l = load_datapath(b.compiled, opts);
    std::vector<std::string> hits = {
        fmt::format("tcp 192.0.2.7:51515 -> 198.51.100.10:{} flags A len 20", hit_port)};
    Measured m = measure(l.dp, holds, hits,
                         "tcp 192.0.2.7:51515 -> 198.51.100.10:9999 flags S len 20", repeat, runs);
    uint64_t pt_mem = map_memlock(l.dp.map_fd(kernel::MapId::PortTable));
    uint64_t all_mem = object_map_memlock(l.dp);
    fmt::print("{:<10} {:>7} {:>8} {:>22} {:>22} {:>9.1f} {:>9.1f} {:>9.1f} {:>10} {:>10}\n", "ports",
               n, b.compiled.port_entries.size(), s3(m.hit), s3(m.miss), b.parse_ms, b.compile_ms,
               l.load_ms, pt_mem / 1024, all_mem / 1024);
    if (m.hit_ret != XDP_PASS || m.miss_ret != XDP_DROP)
      fmt::print(stderr, "warning: ports {}: verdicts {} / {}, expected pass / drop\n", n,
                 m.hit_ret, m.miss_ret);
    record(rec, "ports", n, b, l, m, pt_mem, all_mem, b.compiled.port_entries.size());
  }
  // A tenth of the repeats: 128 probes make a packet ~20x dearer.
  run_lengths(args, holds, rec, opts, std::max<uint32_t>(repeat / 10, 1000), runs);
  return 0;
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

int run_control(const Args& args) {
  const int runs = static_cast<int>(args.num("runs", 7));
  Records rec(args.get("out"));
  kernel::DatapathOptions opts;
  opts.egress_mode = XDPG_EGRESS_ENFORCE;
  long rss_before = rss_kib();
  std::vector<double> parse, compile, load, total, reload;
  std::optional<Loaded> current;
  for (int r = 0; r < runs; ++r) {
    uint64_t t0 = now_ns();
    BuiltPolicy b = build_policy(kDefaultPolicyYaml);
    Loaded l = load_datapath(b.compiled, opts);
    uint64_t t1 = now_ns();
    parse.push_back(b.parse_ms);
    compile.push_back(b.compile_ms);
    load.push_back(l.load_ms);
    // A reload: a new datapath built while the old one still exists, then
    // swapped in (the old one is released).
    if (current) reload.push_back(double(t1 - t0) / 1e6);
    total.push_back(double(t1 - t0) / 1e6);
    current.emplace(std::move(l));
  }
  long rss_loaded = rss_kib();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto row = [&](const char* what, const std::vector<double>& v) {
    Summary s = summarize(v);
    fmt::print("{:<34} {:>8.2f} ms [{:.2f}-{:.2f}]\n", what, s.median, s.min, s.max);
    rec.add({{"section", jstr("control")}, {"metric", jstr(what)}, {"median_ms", jnum(s.median)},
             {"min_ms", jnum(s.min)}, {"max_ms", jnum(s.max)}, {"runs", jnum(double(s.n))}});
  };
  fmt::print("Control plane, default policy, {} runs: median [min-max]\n", runs);
  row("parse+validate", parse);
  row("compile", compile);
  row("load (verify + fill maps)", load);
  row("parse+compile+load", total);
  row("reload (new datapath, old released)", reload);
  fmt::print("{:<34} {:>8} KiB before load, {} KiB with one datapath loaded, peak {} KiB\n",
             "bench process RSS", rss_before, rss_loaded, ru.ru_maxrss);
  // Size of the program itself: instructions after verification, JITed bytes.
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(current->dp.prog_fd(), &info, &len) == 0) {
    fmt::print("{:<34} {:>8} instructions (xlated), {} bytes JITed, {} instructions verified\n",
               "xdpguard_ingress", info.xlated_prog_len / 8, info.jited_prog_len,
               info.verified_insns);
    rec.add({{"section", jstr("control")}, {"metric", jstr("program size")},
             {"xlated_insns", jnum(info.xlated_prog_len / 8)},
             {"jited_bytes", jnum(info.jited_prog_len)},
             {"verified_insns", jnum(info.verified_insns)}});
  }
  uint64_t mem = object_map_memlock(current->dp);
  fmt::print("{:<34} {:>8} KiB (memlock of every map)\n", "kernel map memory", mem / 1024);
  rec.add({{"section", jstr("control")}, {"metric", jstr("rss")},
           {"rss_before_kib", jnum(double(rss_before))}, {"rss_loaded_kib", jnum(double(rss_loaded))},
           {"maxrss_kib", jnum(double(ru.ru_maxrss))}, {"map_memlock_bytes", jnum(double(mem))}});
  return 0;
}

}  // namespace xdpguard::bench
