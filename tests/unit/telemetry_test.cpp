// The Prometheus text format and xdpguard's metric names, the metrics
// endpoint's address rules and request handling, and the event log lines:
// pure functions, no kernel.
#include <gtest/gtest.h>

#include <cstring>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "telemetry/events.hpp"
#include "telemetry/http.hpp"
#include "telemetry/prometheus.hpp"

namespace xdpguard::telemetry {
namespace {

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value("plain-rule_1"), "plain-rule_1");
  EXPECT_EQ(escape_label_value(R"(a"b)"), R"(a\"b)");
  EXPECT_EQ(escape_label_value(R"(C:\path)"), R"(C:\\path)");
  EXPECT_EQ(escape_label_value("two\nlines"), R"(two\nlines)");
  EXPECT_EQ(escape_label_value("Clients → server"), "Clients → server");  // UTF-8 as is
}

TEST(Prometheus, ChecksNames) {
  EXPECT_TRUE(valid_metric_name("xdpguard_rule_packets_total"));
  EXPECT_TRUE(valid_metric_name("ns:sub_total"));
  EXPECT_FALSE(valid_metric_name("1abc"));
  EXPECT_FALSE(valid_metric_name("has-dash"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("interface"));
  EXPECT_FALSE(valid_label_name("__reserved"));
  EXPECT_FALSE(valid_label_name("a:b"));
  Exposition x;
  EXPECT_THROW(x.family("bad-name", "counter", "h"), std::invalid_argument);
  EXPECT_THROW(x.family("ok", "summaryish", "h"), std::invalid_argument);
  EXPECT_THROW(x.sample("ok", {{"bad-label", "v"}}, 1ULL), std::invalid_argument);
}

TEST(Prometheus, FamilyAndSampleLines) {
  Exposition x;
  x.family("xdpguard_test_total", "counter", "A help line with a \\ and\na newline");
  x.sample("xdpguard_test_total", {{"rule", "r\"1"}, {"direction", "ingress"}}, 42ULL);
  x.sample("xdpguard_test_total", {}, 18446744073709551615ULL);
  EXPECT_EQ(x.text(),
            "# HELP xdpguard_test_total A help line with a \\\\ and\\na newline\n"
            "# TYPE xdpguard_test_total counter\n"
            "xdpguard_test_total{rule=\"r\\\"1\",direction=\"ingress\"} 42\n"
            "xdpguard_test_total 18446744073709551615\n");
}

InterfaceSnapshot snapshot() {
  InterfaceSnapshot s;
  s.stats.iface = "eth0";
  s.stats.attached_mode = kernel::XdpMode::Native;
  kernel::RuleStats r;
  r.index = 0;
  r.id = "https \"in\"";
  r.counters = {10, 1000, 2, 120};
  s.stats.rules = {r};
  r.counters = {3, 300, 0, 0};
  s.stats.egress_rules = {r};
  for (int i = 1; i < XDPG_DROP_REASON_COUNT; ++i)
    s.stats.reasons.push_back({static_cast<DropReason>(i), {uint64_t(i), uint64_t(i) * 60}});
  for (int i = 1; i < XDPG_DROP_REASON_COUNT; ++i)
    s.stats.egress_reasons.push_back({static_cast<DropReason>(i), {0, 0}});
  s.stats.flow_table = {5, 65536, 9, 4};
  s.stats.policy_name = "ovoc-single-node";
  s.stats.profile = "ovoc";
  s.stats.policy_hash = 0x00ab12cd34ef5678ULL;
  s.stats.audit = true;
  s.stats.maps = {{"flows_v4", 5, 32768}, {"frags", 0, 8192}, {"peers_v4", 3, 3}};
  s.events[XDPG_DROP_NO_RULE] = {0, 7, 93, 1, 0, 0};
  s.events_received = 7;
  return s;
}

// Every sample line "name{labels} value" of a family, as a map labels -> value.
std::map<std::string, std::string> samples(const std::string& text, const std::string& name) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    std::string rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;
    size_t sp = rest.rfind(' ');
    out[rest.substr(0, sp)] = rest.substr(sp + 1);
  }
  return out;
}

TEST(Metrics, NamesLabelsAndValues) {
  AgentSnapshot agent{3, 1};
  std::string text = render_metrics({snapshot()}, {{"eth1", "not attached"}}, &agent);

  auto pk = samples(text, "xdpguard_rule_packets_total");
  EXPECT_EQ(pk.at(R"({interface="eth0",rule="https \"in\"",direction="ingress",verdict="pass"})"), "10");
  EXPECT_EQ(pk.at(R"({interface="eth0",rule="https \"in\"",direction="ingress",verdict="drop"})"), "2");
  EXPECT_EQ(pk.at(R"({interface="eth0",rule="https \"in\"",direction="egress",verdict="pass"})"), "3");
  auto by = samples(text, "xdpguard_rule_bytes_total");
  EXPECT_EQ(by.at(R"({interface="eth0",rule="https \"in\"",direction="ingress",verdict="drop"})"), "120");
  auto drops = samples(text, "xdpguard_drops_total");
  EXPECT_EQ(drops.at(R"({interface="eth0",reason="no_rule",direction="ingress"})"), "1");
  EXPECT_EQ(drops.at(R"({interface="eth0",reason="peer_not_in_set",direction="ingress"})"), "2");
  EXPECT_EQ(drops.at(R"({interface="eth0",reason="no_rule",direction="egress"})"), "0");
  EXPECT_EQ(samples(text, "xdpguard_flow_table_entries").at(R"({interface="eth0"})"), "5");
  EXPECT_EQ(samples(text, "xdpguard_flow_table_capacity").at(R"({interface="eth0"})"), "65536");
  EXPECT_EQ(samples(text, "xdpguard_flow_evictions_total").at(R"({interface="eth0"})"), "4");
  EXPECT_EQ(samples(text, "xdpguard_events_suppressed_total")
                .at(R"({interface="eth0",reason="no_rule",direction="ingress"})"),
            "93");
  EXPECT_EQ(samples(text, "xdpguard_events_emitted_total")
                .at(R"({interface="eth0",reason="no_rule",direction="ingress"})"),
            "7");
  EXPECT_EQ(samples(text, "xdpguard_events_received_total").at(R"({interface="eth0"})"), "7");
  EXPECT_EQ(samples(text, "xdpguard_reloads_total").at(""), "3");
  EXPECT_EQ(samples(text, "xdpguard_reload_failures_total").at(""), "1");
  // Identity as labels; the hash as `stats` prints it (16 hex digits).
  EXPECT_EQ(samples(text, "xdpguard_policy_info")
                .at(R"({interface="eth0",policy="ovoc-single-node",hash="00ab12cd34ef5678",)"
                    R"(mode="audit",profile="ovoc"})"),
            "1");
  auto entries = samples(text, "xdpguard_bpf_map_entries");
  auto capacity = samples(text, "xdpguard_bpf_map_capacity");
  EXPECT_EQ(entries.at(R"({interface="eth0",map="flows_v4"})"), "5");
  EXPECT_EQ(capacity.at(R"({interface="eth0",map="flows_v4"})"), "32768");
  EXPECT_EQ(entries.at(R"({interface="eth0",map="peers_v4"})"), "3");
  EXPECT_EQ(capacity.at(R"({interface="eth0",map="frags"})"), "8192");
  EXPECT_EQ(entries.size(), 3u);
  auto up = samples(text, "xdpguard_interface_up");
  EXPECT_EQ(up.at(R"({interface="eth0"})"), "1");
  EXPECT_EQ(up.at(R"({interface="eth1"})"), "0");

  // Well-formed throughout: each family once, HELP then TYPE, counters end in _total.
  std::regex help(R"(# HELP ([a-z_]+) .+)"), type(R"(# TYPE ([a-z_]+) (counter|gauge))");
  std::regex sample(R"(([a-z_]+)(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? [0-9]+)");
  std::istringstream in(text);
  std::string line, family, last_help;
  std::set<std::string> seen;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, help)) {
      last_help = m[1];
      EXPECT_TRUE(seen.insert(last_help).second) << "family twice: " << last_help;
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], last_help);
      family = m[1];
      if (m[2] == "counter") EXPECT_TRUE(family.ends_with("_total")) << family;
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "bad line: " << line;
      EXPECT_EQ(m[1], family) << line;
    }
  }
  EXPECT_GE(seen.size(), 17u);
}

TEST(Metrics, WithoutAgentNoDaemonFamilies) {
  std::string text = render_metrics({snapshot()}, {}, nullptr);
  EXPECT_EQ(text.find("xdpguard_reloads_total"), std::string::npos);
  EXPECT_NE(text.find("xdpguard_drops_total"), std::string::npos);
}

TEST(MetricsEndpoint, LoopbackByDefault) {
  auto a = parse_endpoint("127.0.0.1:9740", false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9740);
  EXPECT_TRUE(a->loopback);
  auto b = parse_endpoint("[::1]:9100", false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_TRUE(parse_endpoint("localhost:1", false).ok());
  EXPECT_EQ(parse_endpoint(":9740", false)->host, "127.0.0.1");
  EXPECT_TRUE(parse_endpoint("127.3.4.5:80", false)->loopback);

  auto remote = parse_endpoint("0.0.0.0:9740", false);
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().message.find("--metrics-allow-remote"), std::string::npos);
  EXPECT_FALSE(parse_endpoint("192.0.2.1:9740", false).ok());
  EXPECT_FALSE(parse_endpoint("[2001:db8::1]:9740", false).ok());
  auto allowed = parse_endpoint("0.0.0.0:9740", true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_FALSE(allowed->loopback);

  EXPECT_FALSE(parse_endpoint("127.0.0.1", false).ok());
  EXPECT_FALSE(parse_endpoint("127.0.0.1:70000", false).ok());
  EXPECT_FALSE(parse_endpoint("127.0.0.1:12x", false).ok());
  EXPECT_FALSE(parse_endpoint("example.com:80", true).ok());
}

TEST(MetricsEndpoint, AnswersOnlyGetMetrics) {
  int renders = 0;
  Render render = [&] {
    ++renders;
    return std::string("xdpguard_x 1\n");
  };
  auto ok = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", render);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "xdpguard_x 1\n");
  EXPECT_NE(ok.content_type.find("version=0.0.4"), std::string::npos);
  EXPECT_EQ(answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n", render).status, 200);
  EXPECT_EQ(answer("GET /other HTTP/1.0\r\n\r\n", render).status, 404);
  EXPECT_EQ(answer("POST /metrics HTTP/1.0\r\n\r\n", render).status, 405);
  EXPECT_EQ(answer("garbage\r\n\r\n", render).status, 400);
  EXPECT_EQ(answer("GET /metrics FTP/1.0\r\n\r\n", render).status, 400);
  EXPECT_EQ(renders, 2) << "only /metrics renders";
}

TEST(EventLines, TextAndJson) {
  DropEvent ev;
  ev.iface = "eth0";
  ev.raw.family = 6;
  ev.raw.protocol = 6;
  ev.raw.saddr[0] = 0x20, ev.raw.saddr[1] = 0x01, ev.raw.saddr[2] = 0x0d, ev.raw.saddr[3] = 0xb8;
  ev.raw.saddr[15] = 9;
  ev.raw.daddr[0] = 0x20, ev.raw.daddr[1] = 0x01, ev.raw.daddr[2] = 0x0d, ev.raw.daddr[3] = 0xb8;
  ev.raw.daddr[15] = 1;
  ev.raw.sport = 40000;
  ev.raw.dport = 22;
  ev.raw.tcp_flags = 0x02;
  ev.raw.reason = XDPG_DROP_PEER_NOT_IN_SET;
  ev.raw.rule = 3;
  ev.raw.packet_len = 74;
  ev.raw.suppressed = 12;
  ev.raw.flags = XDPG_EVENT_PASSED;
  ev.rule_id = "ssh\"admin";
  ev.time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  EXPECT_EQ(event_text(ev),
            "would-drop ingress eth0 tcp [2001:db8::9]:40000 -> [2001:db8::1]:22 flags=S "
            "reason=peer_not_in_set rule=ssh\"admin len=74 suppressed=12");
  EXPECT_EQ(json_text(event_json(ev)),
            R"({"time":"2023-11-14T22:13:20.000000Z","event":"would-drop","interface":"eth0",)"
            R"("direction":"ingress","reason":"peer_not_in_set","rule":"ssh\"admin","length":74,)"
            R"("suppressed":12,"family":6,"protocol":"tcp","src":"2001:db8::9","dst":"2001:db8::1",)"
            R"("sport":40000,"dport":22,"tcp_flags":"S"})");
  EXPECT_EQ(tcp_flags_text(0x12), "SA");
  EXPECT_EQ(tcp_flags_text(0), "-");
}

}  // namespace
}  // namespace xdpguard::telemetry
