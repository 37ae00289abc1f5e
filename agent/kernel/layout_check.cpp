// The map layouts of include/xdpguard/maps.h as the kernel sees them: a change
// there that shifts a field breaks this file's build instead of the datapath.
#include <cstddef>

#include "xdpguard/maps.h"

static_assert(sizeof(xdpg_peer_v4_key) == 8 && offsetof(xdpg_peer_v4_key, addr) == 4);
static_assert(sizeof(xdpg_peer_v6_key) == 20 && offsetof(xdpg_peer_v6_key, addr) == 4);
static_assert(sizeof(xdpg_peer_v4_probe) == 8 && offsetof(xdpg_peer_v4_probe, mask) == 4);
static_assert(sizeof(xdpg_peer_v6_probe) == 20 && offsetof(xdpg_peer_v6_probe, mask) == 4);
static_assert(sizeof(xdpg_rule_counters) == 32);
static_assert(sizeof(xdpg_reason_counters) == 16);
static_assert(sizeof(xdpg_frag_key) == 40);
static_assert(offsetof(xdpg_frag_key, id) == 4 && offsetof(xdpg_frag_key, saddr) == 8 &&
              offsetof(xdpg_frag_key, daddr) == 24);
static_assert(sizeof(xdpg_frag_value) == 16);
static_assert(offsetof(xdpg_frag_value, rule) == 8 && offsetof(xdpg_frag_value, verdict) == 12);
static_assert(sizeof(xdpg_rule_meta) == XDPG_RULE_ID_LEN + XDPG_RULE_ROW_LEN);
static_assert(sizeof(xdpg_flow_key) == 40);
static_assert(offsetof(xdpg_flow_key, local_port) == 2 &&
              offsetof(xdpg_flow_key, remote_port) == 4 && offsetof(xdpg_flow_key, pad) == 6 &&
              offsetof(xdpg_flow_key, local_addr) == 8 && offsetof(xdpg_flow_key, remote_addr) == 24);
static_assert(sizeof(xdpg_flow_v4_key) == 16);
static_assert(offsetof(xdpg_flow_v4_key, remote_addr) == 4 &&
              offsetof(xdpg_flow_v4_key, local_port) == 8 &&
              offsetof(xdpg_flow_v4_key, remote_port) == 10 &&
              offsetof(xdpg_flow_v4_key, protocol) == 12);
static_assert(sizeof(xdpg_flow_value) == 24);
static_assert(offsetof(xdpg_flow_value, created_ns) == 8 && offsetof(xdpg_flow_value, rule) == 16 &&
              offsetof(xdpg_flow_value, tcp_state) == 20 && offsetof(xdpg_flow_value, flags) == 21);
static_assert(sizeof(xdpg_flow_counters) == 8);
static_assert(XDPG_RULE_FLAG_COUNT == 4);
static_assert(sizeof(xdpg_info) == 224 && offsetof(xdpg_info, learn) == 115 &&
              offsetof(xdpg_info, learn_table_size) == 216);
static_assert(sizeof(xdpg_learn_key) == 20 && offsetof(xdpg_learn_key, addr) == 4);
static_assert(sizeof(xdpg_learn_value) == 24);
static_assert(sizeof(xdpg_learn_confirm_key) == 20 && offsetof(xdpg_learn_confirm_key, addr) == 4);
static_assert(sizeof(xdpg_learn_confirm_value) == 16);
static_assert(offsetof(xdpg_info, audit_mode) == 113 && offsetof(xdpg_info, clock) == 114 &&
              offsetof(xdpg_info, rule_slot) == 152);
static_assert(offsetof(xdpg_info, policy_hash) == 8 && offsetof(xdpg_info, policy_name) == 16 &&
              offsetof(xdpg_info, profile) == 80 && offsetof(xdpg_info, egress_mode) == 112 &&
              offsetof(xdpg_info, flow_table_size) == 116 &&
              offsetof(xdpg_info, tcp_established_timeout_ns) == 120 &&
              offsetof(xdpg_info, frag_timeout_ns) == 144);
static_assert(XDPG_MAX_RULES == 64, "a rule is one bit of a __u64 mask");
