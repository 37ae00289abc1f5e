// The map layouts of include/xdpguard/maps.h as the kernel sees them: a change
// there that shifts a field breaks this file's build instead of the datapath.
#include <cstddef>

#include "xdpguard/maps.h"

static_assert(sizeof(xdpg_lpm_v4_key) == 8);
static_assert(sizeof(xdpg_lpm_v6_key) == 20);
static_assert(offsetof(xdpg_lpm_v4_key, addr) == 4 && offsetof(xdpg_lpm_v6_key, addr) == 4,
              "LPM keys need prefixlen first");
static_assert(sizeof(xdpg_rule_counters) == 32);
static_assert(sizeof(xdpg_reason_counters) == 16);
static_assert(sizeof(xdpg_frag_key) == 40);
static_assert(offsetof(xdpg_frag_key, id) == 4 && offsetof(xdpg_frag_key, saddr) == 8 &&
              offsetof(xdpg_frag_key, daddr) == 24);
static_assert(sizeof(xdpg_frag_value) == 16);
static_assert(offsetof(xdpg_frag_value, rule) == 8 && offsetof(xdpg_frag_value, verdict) == 12);
static_assert(sizeof(xdpg_rule_meta) == XDPG_RULE_ID_LEN + XDPG_RULE_ROW_LEN);
static_assert(sizeof(xdpg_info) == 112);
static_assert(offsetof(xdpg_info, policy_hash) == 8 && offsetof(xdpg_info, policy_name) == 16 &&
              offsetof(xdpg_info, profile) == 80);
static_assert(XDPG_MAX_RULES == 64, "a rule is one bit of a __u64 mask");
