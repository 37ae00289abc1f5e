// Every JSON producer of the telemetry library fed hostile strings (quotes,
// backslashes, control bytes, NUL, invalid UTF-8) where the outside world
// puts them: interface names, rule ids and rows, policy names, log messages.
// Each output is parsed back by nlohmann's strict parser, which refuses raw
// control characters and invalid UTF-8.
//
// Invalid UTF-8 is not an error: each invalid byte sequence becomes U+FFFD
// (json_text), so the line is still written; valid strings come back as given.
#include <gtest/gtest.h>

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include "telemetry/events.hpp"
#include "telemetry/json.hpp"
#include "telemetry/logging.hpp"

namespace xdpguard::telemetry {
namespace {

using json = nlohmann::ordered_json;  // parsed back keeping the key order

struct Hostile {
  std::string in;
  std::string out;  // what a JSON reader gets back
};

const std::vector<Hostile>& hostile() {
  static const std::vector<Hostile> cases = {
      {R"(say "hi")", R"(say "hi")"},
      {R"(C:\new\table)", R"(C:\new\table)"},
      {"\x01\x08\t\n\x0c\r\x1b\x1f\x7f", "\x01\x08\t\n\x0c\r\x1b\x1f\x7f"},
      {std::string("nul\0byte", 8), std::string("nul\0byte", 8)},
      {"\",\"injected\":\"1", "\",\"injected\":\"1"},
      {"Clients → server", "Clients → server"},
      {"cut \xc3", "cut \xef\xbf\xbd"},               // é cut at a byte boundary
      {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},       // never UTF-8
      {"\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},  // a surrogate: each byte
      {"a\xc3(b", "a\xef\xbf\xbd(b"},  // a lead byte without its tail: the next byte stays
  };
  return cases;
}

// The text parsed back (throws on invalid JSON), and one line.
json parse_line(const std::string& text) {
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  return json::parse(text);
}

DropEvent event(const std::string& iface, const std::string& rule) {
  DropEvent ev;
  ev.iface = iface;
  ev.rule_id = rule;
  ev.raw.family = 4;
  ev.raw.protocol = 17;
  ev.raw.saddr[0] = 192, ev.raw.saddr[3] = 7;
  ev.raw.daddr[0] = 192, ev.raw.daddr[3] = 1;
  ev.raw.sport = 5000, ev.raw.dport = 5060;
  ev.raw.reason = XDPG_DROP_PEER_NOT_IN_SET;
  ev.time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  return ev;
}

TEST(TelemetryJson, EventsCarryHostileNamesIntact) {
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    json e = parse_line(json_text(event_json(event(h.in, h.in))));
    EXPECT_EQ(e["interface"], h.out);
    EXPECT_EQ(e["rule"], h.out);
    EXPECT_EQ(e["dport"], 5060);
    EXPECT_FALSE(e.contains("injected"));
  }
  EXPECT_TRUE(parse_line(json_text(event_json(event("eth0", ""))))["rule"].is_null());
}

TEST(TelemetryJson, EventLogLinesAreOneObject) {
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    json e = parse_line(event_log_json(event(h.in, h.in)));
    EXPECT_EQ(e["level"], "info");
    EXPECT_EQ(e["msg"], "drop event");
    EXPECT_EQ(e["interface"], h.out);
    EXPECT_EQ(e["rule"], h.out);
    EXPECT_EQ(e.begin().key(), "level") << "the keys of every other log line first";
  }
}

TEST(TelemetryJson, LogLinesEscapeTheMessage) {
  auto f = json_log_formatter();
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    spdlog::details::log_msg msg("", spdlog::level::warn, h.in);
    spdlog::memory_buf_t buf;
    f->format(msg, buf);
    std::string line(buf.data(), buf.size());
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    line.pop_back();
    json l = parse_line(line);
    EXPECT_EQ(l["msg"], h.out);
    EXPECT_EQ(l["level"], "warning");
    EXPECT_EQ(l["time"].get<std::string>().size(),
              std::string("2026-12-04T14:28:07.123456+00:00").size());
    std::vector<std::string> keys;
    for (const auto& [k, v] : l.items()) keys.push_back(k);
    EXPECT_EQ(keys.size(), 3u);
  }
}

kernel::PinnedStats stats(const std::string& s) {
  kernel::PinnedStats st;
  st.iface = s;
  st.pin_dir = "/sys/fs/bpf/xdpguard/" + s;
  st.policy_name = s;
  st.profile = s;
  st.policy_hash = 0xabc;
  st.attached_mode = kernel::XdpMode::Native;
  kernel::RuleStats r;
  r.index = 2;
  r.id = s;
  r.row = s;
  r.counters = {10, 1000, 2, 120};
  st.rules = {r};
  st.egress_rules = {r};
  st.reasons = {{DropReason::NoRule, {5, 300}}};
  st.flow_table = {5, 65536, 9, 4};
  return st;
}

TEST(TelemetryJson, StatsCarryHostileNamesIntact) {
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    json s = parse_line(json_text(stats_json(stats(h.in))));
    EXPECT_EQ(s["interface"], h.out);
    EXPECT_EQ(s["pin_dir"], "/sys/fs/bpf/xdpguard/" + h.out);
    EXPECT_EQ(s["policy"]["name"], h.out);
    EXPECT_EQ(s["policy"]["profile"], h.out);
    for (const char* side : {"rules", "egress_rules"}) {
      EXPECT_EQ(s[side][0]["id"], h.out);
      EXPECT_EQ(s[side][0]["row"], h.out);
    }
  }
}

TEST(TelemetryJson, StatsDocumentAsDocumented) {
  auto st = stats("eth0");
  st.settings.egress_mode = XDPG_EGRESS_ENFORCE;
  st.settings.tcp_established_timeout_ns = 7200'000'000'000ULL;
  EXPECT_EQ(
      json_text(stats_json(st)),
      R"({"interface":"eth0","pin_dir":"/sys/fs/bpf/xdpguard/eth0","attached":true,)"
      R"("mode":"native","egress_attached":false,"policy":{"name":"eth0","profile":"eth0",)"
      R"("hash":"0000000000000abc","mode":"enforce"},"settings":{"egress":"enforce",)"
      R"("timeouts":{"tcp_established":7200,"tcp_closing":0,"udp":0,"fragments":0},)"
      R"("clock":"precise","xdp_multi_buffer":false},"rules":[{"index":2,"id":"eth0","row":"eth0","pass_packets":10,)"
      R"("pass_bytes":1000,"drop_packets":2,"drop_bytes":120}],"drop_reasons":[{"reason":)"
      R"("no_rule","packets":5,"bytes":300}],"egress_rules":[{"index":2,"id":"eth0",)"
      R"("row":"eth0","pass_packets":10,"pass_bytes":1000,"drop_packets":2,"drop_bytes":120}],)"
      R"("egress_drop_reasons":[],"flow_table":{"entries":5,"capacity":65536,"inserts":9,)"
      R"("evictions":4}})");
  st.attached_mode.reset();
  json s = parse_line(json_text(stats_json(st)));
  EXPECT_EQ(s["attached"], false);
  EXPECT_TRUE(s["mode"].is_null());
}

TEST(TelemetryJson, FlowsCarryHostileNamesIntact) {
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    kernel::FlowTable t;
    t.iface = h.in;
    t.capacity = 1024;
    kernel::FlowEntry f;
    f.key.family = 4;
    f.key.protocol = 6;
    f.key.local_addr[0] = 10, f.key.local_addr[3] = 1;
    f.key.remote_addr[0] = 10, f.key.remote_addr[3] = 2;
    f.key.local_port = 50000, f.key.remote_port = 389;
    f.value.rule = 4;
    f.value.tcp_state = XDPG_FLOW_FIN_LOCAL | XDPG_FLOW_RST;
    f.value.flags = XDPG_FLOW_REPLIED;
    f.rule_id = h.in;
    f.age_ns = 3'500'000'000ULL;
    f.live = true;
    t.flows = {f};
    json doc = parse_line(json_text(flows_json(t)));
    EXPECT_EQ(doc["interface"], h.out);
    const json& flow = doc["flows"][0];
    EXPECT_EQ(flow["rule_id"], h.out);
    EXPECT_EQ(flow["local_addr"], "10.0.0.1");
    EXPECT_EQ(flow["remote_port"], 389);
    EXPECT_EQ(flow["age_seconds"], 3);
    EXPECT_EQ(flow["tcp_state"], json({"fin_local", "rst"}));
    EXPECT_EQ(flow["replied"], true);
  }
}

TEST(TelemetryJson, DropsCarryHostileNamesIntact) {
  DropTops tops;
  tops.ports = {{1, 6, 6667, 12}};
  xdpg_top_peer_key peer{};
  peer.family = 6;
  peer.addr[0] = 0x20, peer.addr[1] = 0x01, peer.addr[2] = 0x0d, peer.addr[3] = 0xb8;
  tops.peers = {{peer, 40}};
  tops.port_keys = 1, tops.peer_keys = 1;
  EventCounters events{};
  events[1].emitted = 3, events[1].suppressed = 4;
  events[XDPG_DROP_REASON_COUNT + 1].emitted = 1;
  EXPECT_EQ(
      json_text(drops_json("eth0", tops, &events)),
      R"({"interface":"eth0","ports":[{"direction":"egress","protocol":"tcp","port":6667,)"
      R"("packets":12}],"peers":[{"direction":"ingress","address":"2001:db8::","packets":40}],)"
      R"("tracked_ports":1,"tracked_peers":1,"events_emitted":4,"events_suppressed":4})");
  for (const auto& h : hostile()) {
    SCOPED_TRACE(h.in);
    json d = parse_line(json_text(drops_json(h.in, tops, nullptr)));
    EXPECT_EQ(d["interface"], h.out);
    EXPECT_FALSE(d.contains("events_emitted"));
  }
}

}  // namespace
}  // namespace xdpguard::telemetry
