// What the compiler gives the egress program (docs/datapath.md 9), on the
// default policy:
// - rule_flags masks follow each rule's flow and initiator
// - ICMP*_OUT slots hold the types the host may send: the answer to an inbound
//   request, the request of an inbound answer, MLD reports for a query, and
//   errors / NDP as themselves
#include <string_view>
#include <variant>

#include <gtest/gtest.h>

#include "compile/compiler.hpp"
#include "policy/parser.hpp"

namespace xdpguard {
extern const std::string_view kDefaultPolicyYaml;
}

namespace xdpguard::compile {
namespace {

class DefaultCompiled : public ::testing::Test {
 protected:
  void SetUp() override {
    parsed_ = policy::parse_policy_text(kDefaultPolicyYaml, "<embedded default>", "");
    ASSERT_TRUE(parsed_.ok());
    auto s = policy::select_rules(*parsed_.policy, "");
    ASSERT_TRUE(std::holds_alternative<policy::RuleSet>(s));
    rules_ = std::get<policy::RuleSet>(s);
    compiled_ = compile(rules_);
  }
  uint64_t bit(const std::string& id) const {
    for (size_t i = 0; i < rules_.rules.size(); ++i)
      if (rules_.rules[i].rule->id == id) return 1ULL << i;
    ADD_FAILURE() << "no rule " << id;
    return 0;
  }
  uint64_t slot(xdpg_port_kind kind, uint16_t value) const {
    for (const auto& [i, mask] : compiled_.port_entries)
      if (i == port_table_index(kind, value)) return mask;
    return 0;
  }
  policy::ParseResult parsed_;
  policy::RuleSet rules_;
  CompiledPolicy compiled_;
};

TEST_F(DefaultCompiled, RuleFlagMasksFollowFlowAndInitiator) {
  const auto& f = compiled_.rule_flags;
  EXPECT_EQ(f[XDPG_RULE_RECEIVE_ONLY],
            bit("device-snmp-traps-162") | bit("device-snmp-keepalive-1161"));
  EXPECT_EQ(f[XDPG_RULE_SEND_ONLY], bit("azure-blob-upload-443"));
  EXPECT_TRUE(f[XDPG_RULE_LOCAL_INIT] & bit("ldap-389"));
  EXPECT_TRUE(f[XDPG_RULE_LOCAL_INIT] & bit("device-ntp-123"));
  EXPECT_FALSE(f[XDPG_RULE_LOCAL_INIT] & bit("admin-ssh"));
  EXPECT_TRUE(f[XDPG_RULE_REMOTE_INIT] & bit("device-ntp-123"));
  EXPECT_TRUE(f[XDPG_RULE_REMOTE_INIT] & bit("admin-ssh"));
  EXPECT_FALSE(f[XDPG_RULE_REMOTE_INIT] & bit("ldap-389"));
}

TEST_F(DefaultCompiled, IcmpOutSlotsMirrorInboundTypes) {
  EXPECT_EQ(slot(XDPG_KIND_ICMP_OUT, 0), bit("icmp-echo-request"));
  EXPECT_EQ(slot(XDPG_KIND_ICMP_OUT, 8), bit("icmp-echo-reply"));
  EXPECT_EQ(slot(XDPG_KIND_ICMP_OUT, 3), bit("icmp-errors"));
  EXPECT_EQ(slot(XDPG_KIND_ICMP_OUT, 11), bit("icmp-errors"));
  EXPECT_EQ(slot(XDPG_KIND_ICMP_OUT, 5), 0u);
  EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, 129), bit("icmpv6-echo-request"));
  EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, 128), bit("icmpv6-echo-reply"));
  EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, 2), bit("icmpv6-errors"));
  for (uint16_t t : {133, 134, 135, 136, 137})
    EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, t), bit("icmpv6-ndp")) << t;
  for (uint16_t t : {131, 132, 143})
    EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, t), bit("icmpv6-mld-query")) << t;
  EXPECT_EQ(slot(XDPG_KIND_ICMPV6_OUT, 130), 0u);  // the host does not query
}

TEST(IcmpOutTypes, RequestsAndAnswersSwapOthersStay) {
  EXPECT_EQ(icmp_out_types(4, 8), std::vector<uint8_t>{0});
  EXPECT_EQ(icmp_out_types(4, 14), std::vector<uint8_t>{13});
  EXPECT_EQ(icmp_out_types(4, 12), std::vector<uint8_t>{12});
  EXPECT_EQ(icmp_out_types(6, 130), (std::vector<uint8_t>{131, 132, 143}));
  EXPECT_EQ(icmp_out_types(6, 4), std::vector<uint8_t>{4});
}

}  // namespace
}  // namespace xdpguard::compile
