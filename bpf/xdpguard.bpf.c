// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdpguard host filter: XDP ingress (xdpguard_ingress) and TC clsact egress
 * (xdpguard_egress). Implements docs/datapath.md exactly; the C++ reference
 * classifier (agent/classify/reference.cpp) implements the same procedure
 * and tests/bpf/ compares the two packet by packet.
 *
 * Shape: xdpg_classify() parses (the same code for both directions) and
 * decides, returning from wherever it knows the answer; each program's entry
 * point is the single exit that counts the decision and records it for a
 * first fragment, so no branch can forget either. The two directions share
 * the rules (port_table, peers) and the flow table: egress records the flows
 * the host opens, ingress admits their replies.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
/* <linux/icmp.h> pulls glibc sys/socket.h, which breaks -target bpf (gnu/stubs-32.h); only the type byte is read. */
#include <linux/icmpv6.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpguard/maps.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent (or a test) through the skeleton before load. */
const volatile __u64 frag_timeout_ns = 30000000000ULL;
const volatile __u8 egress_mode = XDPG_EGRESS_ENFORCE; /* enum xdpg_egress_mode */
/* Flow lifetimes since the last packet either way (docs/datapath.md 8.4). */
const volatile __u64 tcp_established_timeout_ns = 3600000000000ULL;
const volatile __u64 tcp_closing_timeout_ns = 30000000000ULL; /* after a FIN or RST */
const volatile __u64 udp_timeout_ns = 60000000000ULL;
/* Audit: decide and count exactly as in enforce mode, pass everything. */
const volatile __u8 audit_mode = 0;
/* enum xdpg_clock, chosen by the loader (kernel/probe.cpp): the coarse clock
 * when the kernel has bpf_ktime_get_coarse_ns for XDP and TC. The verifier
 * knows the rodata value and drops the branch not taken, so an older kernel
 * never sees the coarse helper. */
const volatile __u8 clock_kind = XDPG_CLOCK_PRECISE;
/* Multi-buffer XDP (Linux 5.18+), chosen by the loader like the clock: when
 * set, the ingress program is loaded with BPF_F_XDP_HAS_FRAGS (a jumbo frame
 * may then span several buffers) and a frame's length is all of them
 * (bpf_xdp_get_buff_len). The parser reads headers from the first buffer
 * only (docs/datapath.md 10). */
const volatile __u8 xdp_frags = 0;
/* Rule index -> counter/meta slot (maps.h, xdpg_info.rule_slot); identity
 * unless a reload keeps the slots of rules that moved. */
#define XDPG_SLOTS8(b) b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
const volatile __u8 rule_slot[XDPG_MAX_RULES] = {
	XDPG_SLOTS8(0),  XDPG_SLOTS8(8),  XDPG_SLOTS8(16), XDPG_SLOTS8(24),
	XDPG_SLOTS8(32), XDPG_SLOTS8(40), XDPG_SLOTS8(48), XDPG_SLOTS8(56),
};

/* Egress pulls this much (or the whole packet) into the linear part before
 * parsing: headers beyond it are malformed, as they would be past a frame. */
#define XDPG_EGRESS_PULL 256

#define XDPG_DIR_INGRESS 0
#define XDPG_DIR_EGRESS 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPG_PORT_TABLE_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} port_table SEC(".maps");

/* Peer sets (maps.h, docs/datapath.md 5.4): the agent sizes the hashes to
 * the prefix count and fills the probes before load. A probe count is a
 * rodata constant, so the verifier walks exactly that many iterations. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct xdpg_peer_v4_key);
	__type(value, __u64);
} peers_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct xdpg_peer_v6_key);
	__type(value, __u64);
} peers_v6 SEC(".maps");

const volatile __u32 peer_v4_probe_count = 0;
const volatile struct xdpg_peer_v4_probe peer_v4_probes[XDPG_PEER_V4_LENGTHS] = {};
const volatile __u64 peer_v4_default = 0; /* members of 0.0.0.0/0 */
const volatile __u32 peer_v6_probe_count = 0;
const volatile struct xdpg_peer_v6_probe peer_v6_probes[XDPG_PEER_V6_LENGTHS] = {};
const volatile __u64 peer_v6_default = 0; /* members of ::/0 */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xdpg_rule_counters);
} rule_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct xdpg_reason_counters);
} reason_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xdpg_rule_counters);
} egress_rule_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct xdpg_reason_counters);
} egress_reason_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FRAG_ENTRIES);
	__type(key, struct xdpg_frag_key);
	__type(value, struct xdpg_frag_value);
} frags SEC(".maps");

/* IPv6 flows; IPv4 ones in flows_v4, whose key is 16 bytes (maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FLOW_ENTRIES);
	__type(key, struct xdpg_flow_key);
	__type(value, struct xdpg_flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FLOW_ENTRIES);
	__type(key, struct xdpg_flow_v4_key);
	__type(value, struct xdpg_flow_value);
} flows_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpg_flow_counters);
} flow_counters SEC(".maps");

/* Entry f: mask of the rules with enum xdpg_rule_flag f; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPG_RULE_FLAG_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} rule_flags SEC(".maps");

/* Written by the agent only; declared here so the skeleton creates them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPG_MAX_RULES);
	__type(key, __u32);
	__type(value, struct xdpg_rule_meta);
} rule_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpg_info);
} info SEC(".maps");

/* Drop telemetry (maps.h). The agent sets the rate: event_interval_ns =
 * 1e9 / events per second (0: no events), event_tolerance_ns =
 * (burst - 1) * interval. */
const volatile __u64 event_interval_ns = 100000000ULL;   /* 10 per second */
const volatile __u64 event_tolerance_ns = 1900000000ULL; /* burst of 20 */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XDPG_EVENTS_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_EVENT_LIMIT_ENTRIES);
	__type(key, __u32);
	__type(value, struct xdpg_event_limit);
} event_limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPG_TOP_PORT_ENTRIES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} top_ports SEC(".maps");

/* Per-CPU LRU lists: a flood of new keys takes no lock shared by the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_TOP_PEER_ENTRIES);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct xdpg_top_peer_key);
	__type(value, __u64);
} top_peers SEC(".maps");

/* Learning the peer sets (maps.h, docs/learn.md). Off, the verifier drops
 * every branch on learn_enabled: the fast path does not change. */
const volatile __u8 learn_enabled = 0;
const volatile __u64 learn_slots = 0; /* slots of the rules whose peer set is learned */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPG_LEARN_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpg_learn_key);
	__type(value, struct xdpg_learn_value);
} learn_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPG_LEARN_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpg_learn_confirm_key);
	__type(value, struct xdpg_learn_confirm_value);
} learn_confirmed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPG_LEARN_OVERFLOW_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} learn_overflow SEC(".maps");

struct xdpg_decision {
	__u32 rule; /* XDPG_NO_RULE when not attributed */
	__u8 verdict; /* XDP_PASS or XDP_DROP, for both directions */
	__u8 reason;
	__u8 host_opened; /* egress: passed on a rule's remote port (learning's proof) */
};

/* Filled only once the packet is known to be a first fragment. */
struct xdpg_frag_record {
	struct xdpg_frag_key key;
	int record;
};

/* An IP packet parsed down to its upper layer. */
struct xdpg_pkt {
	__u8 *saddr;
	__u8 *daddr;
	struct xdpg_l3 l3;
	struct xdpg_l4 l4;
	int v6;
};

static __always_inline struct xdpg_decision xdpg_pass(__u32 rule)
{
	struct xdpg_decision d = { .rule = rule, .verdict = XDP_PASS, .reason = XDPG_REASON_NONE };
	return d;
}

static __always_inline struct xdpg_decision xdpg_pass_opened(__u32 rule)
{
	struct xdpg_decision d = xdpg_pass(rule);

	d.host_opened = 1;
	return d;
}

static __always_inline struct xdpg_decision xdpg_drop(__u8 reason, __u32 rule)
{
	struct xdpg_decision d = { .rule = rule, .verdict = XDP_DROP, .reason = reason };
	return d;
}

/* The slot of the first rule in `mask` (non-zero): decisions, flows and
 * fragments carry slots, so they stay attributed across a reload. */
static __always_inline __u32 xdpg_rule_of(__u64 mask)
{
	return rule_slot[xdpg_lowest_bit(mask) & (XDPG_MAX_RULES - 1)];
}

static __always_inline __u64 xdpg_port_bits(__u32 kind, __u32 value)
{
	__u32 idx = kind << 16 | value;
	__u64 *bits = bpf_map_lookup_elem(&port_table, &idx);

	return bits ? *bits : 0;
}

static __always_inline __u64 xdpg_rule_flag_mask(__u32 flag)
{
	__u64 *mask = bpf_map_lookup_elem(&rule_flags, &flag);

	return mask ? *mask : 0;
}

/* Mask of rules whose peer set holds addr: the longest prefix present that
 * matches, probing the lengths longest first; no hit is /0's mask. */
static __always_inline __u64 xdpg_members_v4(const __u8 *addr)
{
	struct xdpg_peer_v4_key k;
	__u32 n = peer_v4_probe_count, a, i;
	__u64 *members;

	__builtin_memcpy(&a, addr, 4);
#pragma clang loop unroll(disable)
	for (i = 0; i < XDPG_PEER_V4_LENGTHS && i < n; i++) {
		__u32 masked = a & peer_v4_probes[i].mask;

		k.prefixlen = peer_v4_probes[i].prefixlen;
		__builtin_memcpy(k.addr, &masked, 4);
		members = bpf_map_lookup_elem(&peers_v4, &k);
		if (members)
			return *members;
	}
	return peer_v4_default;
}

static __always_inline __u64 xdpg_members_v6(const __u8 *addr)
{
	struct xdpg_peer_v6_key k;
	__u32 n = peer_v6_probe_count, a[4], i, w;
	__u64 *members;

	__builtin_memcpy(a, addr, 16);
#pragma clang loop unroll(disable)
	for (i = 0; i < XDPG_PEER_V6_LENGTHS && i < n; i++) {
		__u32 masked[4];

		for (w = 0; w < 4; w++)
			masked[w] = a[w] & peer_v6_probes[i].mask[w];
		k.prefixlen = peer_v6_probes[i].prefixlen;
		__builtin_memcpy(k.addr, masked, 16);
		members = bpf_map_lookup_elem(&peers_v6, &k);
		if (members)
			return *members;
	}
	return peer_v6_default;
}

static __always_inline __u64 xdpg_members(int v6, const __u8 *addr)
{
	return v6 ? xdpg_members_v6(addr) : xdpg_members_v4(addr);
}

/* Section 5 rule choice, given the candidates and the peer's memberships. */
static __always_inline struct xdpg_decision xdpg_choose(__u64 candidates, __u64 members)
{
	__u64 hits = candidates & members;

	if (hits)
		return xdpg_pass(xdpg_rule_of(hits));
	return xdpg_drop(XDPG_DROP_PEER_NOT_IN_SET, xdpg_rule_of(candidates));
}

/* The one clock of flows, fragments and the event bucket (docs/datapath.md
 * 8.3): CLOCK_MONOTONIC, at tick granularity when coarse. Timeouts are
 * seconds; the precise clock costs a pvclock/TSC read per call on some
 * machines (tens of ns on kvm-clock), the coarse one a few loads. */
static __always_inline __u64 xdpg_now(void)
{
	if (clock_kind == XDPG_CLOCK_COARSE)
		return bpf_ktime_get_coarse_ns();
	return bpf_ktime_get_ns();
}

/* ---- flow table (section 8) ---------------------------------------------- */

/* A flow's key in the map of its family. */
struct xdpg_flow_ref {
	union {
		struct xdpg_flow_v4_key v4;
		struct xdpg_flow_key v6;
	};
	int is_v6;
	__u8 protocol;
};

static __always_inline void xdpg_flow_ref(struct xdpg_flow_ref *r, int v6, __u8 proto,
					  const __u8 *local, const __u8 *remote, __u16 lport,
					  __u16 rport)
{
	r->is_v6 = v6;
	r->protocol = proto;
	if (v6) {
		struct xdpg_flow_key *k = &r->v6;

		k->family = 6;
		k->protocol = proto;
		k->local_port = lport;
		k->remote_port = rport;
		k->pad = 0;
		__builtin_memcpy(k->local_addr, local, 16);
		__builtin_memcpy(k->remote_addr, remote, 16);
	} else {
		struct xdpg_flow_v4_key *k = &r->v4;

		__builtin_memcpy(k->local_addr, local, 4);
		__builtin_memcpy(k->remote_addr, remote, 4);
		k->local_port = lport;
		k->remote_port = rport;
		k->protocol = proto;
		k->pad[0] = k->pad[1] = k->pad[2] = 0;
	}
}

/* One call site per map: the verifier inlines the lookup of a known map. */
static __always_inline struct xdpg_flow_value *xdpg_flow_lookup(const struct xdpg_flow_ref *r)
{
	if (r->is_v6)
		return bpf_map_lookup_elem(&flows, &r->v6);
	return bpf_map_lookup_elem(&flows_v4, &r->v4);
}

static __always_inline long xdpg_flow_insert(const struct xdpg_flow_ref *r,
					     const struct xdpg_flow_value *v)
{
	/* NOEXIST: a racing CPU's insert is not counted twice. */
	if (r->is_v6)
		return bpf_map_update_elem(&flows, &r->v6, v, BPF_NOEXIST);
	return bpf_map_update_elem(&flows_v4, &r->v4, v, BPF_NOEXIST);
}

/* Younger than its protocol's timeout; a last_seen written by another CPU
 * after `now` was read counts as fresh. */
static __always_inline int xdpg_flow_fresh(__u8 protocol, const struct xdpg_flow_value *v,
					   __u64 now)
{
	__u64 timeout = protocol == IPPROTO_UDP ? udp_timeout_ns :
			v->tcp_state ? tcp_closing_timeout_ns : tcp_established_timeout_ns;

	return now < v->last_seen_ns || now - v->last_seen_ns < timeout;
}

/* The tracked, unexpired flow with this key, or NULL. */
static __always_inline struct xdpg_flow_value *xdpg_flow_live(const struct xdpg_flow_ref *r,
							      __u64 now)
{
	struct xdpg_flow_value *v = xdpg_flow_lookup(r);

	if (!v || !xdpg_flow_fresh(r->protocol, v, now))
		return NULL;
	return v;
}

static __always_inline __u8 xdpg_tcp_state_bits(__u8 tcp_flags, __u8 fin_bit)
{
	return ((tcp_flags & TCP_FIN) ? fin_bit : 0) | ((tcp_flags & TCP_RST) ? XDPG_FLOW_RST : 0);
}

/* A packet of a tracked flow: last_seen moves forward, tcp_state and flags
 * gain bits. Each field is written only when it changes, so a busy flow (one
 * clock tick of packets, every bit already set) leaves its entry's cache line
 * clean instead of bouncing it between the CPUs of both directions. */
static __always_inline void xdpg_flow_touch(struct xdpg_flow_value *v, __u64 now, __u8 state,
					    __u8 flags)
{
	if (now > v->last_seen_ns)
		v->last_seen_ns = now;
	if ((v->tcp_state | state) != v->tcp_state)
		v->tcp_state |= state;
	if ((v->flags | flags) != v->flags)
		v->flags |= flags;
}

/* Egress, a packet passed on local-initiator rule `rule`: a UDP datagram or a
 * TCP SYN without ACK opens (or reopens) its flow, anything else refreshes a
 * flow that exists. */
static __always_inline void xdpg_flow_outbound(const struct xdpg_pkt *p, __u32 rule)
{
	struct xdpg_flow_ref r;
	struct xdpg_flow_value *v;
	__u64 now = xdpg_now();
	int tcp = p->l4.kind == XDPG_L4_TCP;
	int opens = !tcp || xdpg_tcp_bare_syn(&p->l4);

	xdpg_flow_ref(&r, p->v6, p->l3.proto, p->saddr, p->daddr, p->l4.sport, p->l4.dport);
	v = xdpg_flow_lookup(&r);
	if (v) {
		if (tcp && opens) {
			/* A new connection on a reused tuple starts over. */
			v->created_ns = now;
			v->rule = rule;
			v->tcp_state = 0;
			v->flags = 0;
		}
		xdpg_flow_touch(v, now,
				tcp ? xdpg_tcp_state_bits(p->l4.tcp_flags, XDPG_FLOW_FIN_LOCAL) : 0, 0);
		return;
	}
	if (opens) {
		struct xdpg_flow_value nv = {
			.last_seen_ns = now,
			.created_ns = now,
			.rule = rule,
		};
		__u32 zero = 0;
		struct xdpg_flow_counters *fc;

		if (xdpg_flow_insert(&r, &nv) == 0) {
			fc = bpf_map_lookup_elem(&flow_counters, &zero);
			if (fc)
				fc->inserts += 1;
		}
	}
}

/* ---- ingress decision (section 5) ------------------------------------------ */

/* A candidate reply (REMOTE kind hit by an allowed peer): only a tracked flow
 * admits it, and refreshes it. */
static __always_inline struct xdpg_decision xdpg_ingress_reply(const struct xdpg_pkt *p,
							       __u64 hits)
{
	struct xdpg_flow_ref r;
	struct xdpg_flow_value *v;
	__u64 now = xdpg_now();
	__u32 rule = xdpg_rule_of(hits);

	xdpg_flow_ref(&r, p->v6, p->l3.proto, p->daddr, p->saddr, p->l4.dport, p->l4.sport);
	v = xdpg_flow_live(&r, now);
	if (!v)
		return xdpg_drop(XDPG_DROP_NO_FLOW, rule);
	xdpg_flow_touch(v, now,
			p->l4.kind == XDPG_L4_TCP ?
				xdpg_tcp_state_bits(p->l4.tcp_flags, XDPG_FLOW_FIN_REMOTE) : 0,
			XDPG_FLOW_REPLIED);
	return xdpg_pass(rule);
}

/* ICMP/ICMPv6: the type rules first; an error no rule admits still passes if
 * it quotes a tracked flow, on that flow's rule (path MTU discovery). */
static __always_inline struct xdpg_decision xdpg_ingress_icmp(const struct xdpg_pkt *p,
							      const void *data_end)
{
	__u32 kind = p->v6 ? XDPG_KIND_ICMPV6 : XDPG_KIND_ICMP;
	__u64 candidates = xdpg_port_bits(kind, p->l4.icmp_type);
	struct xdpg_quoted q;

	if (candidates) {
		__u64 hits = candidates & xdpg_members(p->v6, p->saddr);

		if (hits)
			return xdpg_pass(xdpg_rule_of(hits));
	}
	if (egress_mode != XDPG_EGRESS_OFF && xdpg_icmp_is_error(p->v6, p->l4.icmp_type) &&
	    xdpg_parse_quoted(&p->l3, &p->l4, data_end, p->v6, &q)) {
		struct xdpg_flow_ref r;
		struct xdpg_flow_value *v;

		xdpg_flow_ref(&r, p->v6, q.proto, q.saddr, q.daddr, q.sport, q.dport);
		v = xdpg_flow_live(&r, xdpg_now());
		if (v)
			return xdpg_pass(v->rule);
	}
	if (!candidates)
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	return xdpg_drop(XDPG_DROP_PEER_NOT_IN_SET, xdpg_rule_of(candidates));
}

static __always_inline struct xdpg_decision xdpg_ingress_decide(const struct xdpg_pkt *p,
							        const void *data_end)
{
	__u64 local, remote = 0, members, hits;

	switch (p->l4.kind) {
	case XDPG_L4_TCP:
		local = xdpg_port_bits(XDPG_KIND_TCP_LOCAL, p->l4.dport);
		/* A reply never opens a connection: a bare SYN skips TCP_REMOTE. */
		if (!xdpg_tcp_bare_syn(&p->l4))
			remote = xdpg_port_bits(XDPG_KIND_TCP_REMOTE, p->l4.sport);
		break;
	case XDPG_L4_UDP:
		local = xdpg_port_bits(XDPG_KIND_UDP_LOCAL, p->l4.dport);
		remote = xdpg_port_bits(XDPG_KIND_UDP_REMOTE, p->l4.sport);
		break;
	case XDPG_L4_ICMP:
	case XDPG_L4_ICMPV6:
		return xdpg_ingress_icmp(p, data_end);
	default:
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	}
	if (!(local | remote))
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	members = xdpg_members(p->v6, p->saddr);
	/* Peer-initiated rules first: stateless, as before flow tracking. */
	hits = local & members;
	if (hits)
		return xdpg_pass(xdpg_rule_of(hits));
	hits = remote & members;
	if (hits) {
		if (egress_mode == XDPG_EGRESS_OFF)
			return xdpg_pass(xdpg_rule_of(hits));
		return xdpg_ingress_reply(p, hits);
	}
	return xdpg_drop(XDPG_DROP_PEER_NOT_IN_SET, xdpg_rule_of(local | remote));
}

/* ---- egress decision (section 9) ------------------------------------------- */

static __always_inline struct xdpg_decision xdpg_egress_decide(const struct xdpg_pkt *p)
{
	__u64 remote, local = 0, members, hits, open;

	switch (p->l4.kind) {
	case XDPG_L4_TCP:
		remote = xdpg_port_bits(XDPG_KIND_TCP_REMOTE, p->l4.dport);
		/* A server port does not open connections: a bare SYN skips TCP_LOCAL. */
		if (!xdpg_tcp_bare_syn(&p->l4))
			local = xdpg_port_bits(XDPG_KIND_TCP_LOCAL, p->l4.sport);
		break;
	case XDPG_L4_UDP:
		remote = xdpg_port_bits(XDPG_KIND_UDP_REMOTE, p->l4.dport);
		local = xdpg_port_bits(XDPG_KIND_UDP_LOCAL, p->l4.sport);
		break;
	case XDPG_L4_ICMP:
	case XDPG_L4_ICMPV6: {
		__u32 kind = p->v6 ? XDPG_KIND_ICMPV6_OUT : XDPG_KIND_ICMP_OUT;
		__u64 candidates = xdpg_port_bits(kind, p->l4.icmp_type);

		if (!candidates)
			return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
		return xdpg_choose(candidates, xdpg_members(p->v6, p->daddr));
	}
	default:
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	}
	if (!(local | remote))
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	members = xdpg_members(p->v6, p->daddr);
	/* Flows the host opens first: they are the ones to record. */
	hits = remote & members;
	if (hits) {
		__u32 rule = xdpg_rule_of(hits);

		xdpg_flow_outbound(p, rule);
		return xdpg_pass_opened(rule);
	}
	hits = local & members;
	if (hits) {
		open = hits & ~xdpg_rule_flag_mask(XDPG_RULE_RECEIVE_ONLY);
		if (open)
			return xdpg_pass(xdpg_rule_of(open));
		return xdpg_drop(XDPG_DROP_RECEIVE_ONLY, xdpg_rule_of(hits));
	}
	return xdpg_drop(XDPG_DROP_PEER_NOT_IN_SET, xdpg_rule_of(local | remote));
}

/* ---- parsing and fragments (sections 1-4) ---------------------------------- */

/* A non-first fragment takes its first fragment's decision, if fresh. */
static __always_inline struct xdpg_decision xdpg_frag_lookup(const struct xdpg_frag_key *key)
{
	struct xdpg_frag_value *v = bpf_map_lookup_elem(&frags, key);
	struct xdpg_decision d = {};

	if (!v || xdpg_now() - v->seen_ns >= frag_timeout_ns)
		return xdpg_drop(XDPG_DROP_FRAGMENT_ORPHAN, XDPG_NO_RULE);
	d.rule = v->rule;
	d.verdict = v->verdict == XDP_PASS ? XDP_PASS : XDP_DROP;
	d.reason = v->reason;
	return d;
}

static __always_inline void xdpg_frag_key_v4(struct xdpg_frag_key *key, __u8 dir,
					     const struct iphdr *iph,
					     const struct xdpg_frag_info *fi)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->family = 4;
	key->protocol = fi->protocol;
	key->direction = dir;
	key->id = fi->id;
	__builtin_memcpy(key->saddr, &iph->saddr, 4);
	__builtin_memcpy(key->daddr, &iph->daddr, 4);
}

static __always_inline void xdpg_frag_key_v6(struct xdpg_frag_key *key, __u8 dir,
					     const struct ipv6hdr *ip6,
					     const struct xdpg_frag_info *fi)
{
	key->family = 6;
	key->protocol = fi->protocol;
	key->direction = dir;
	key->pad = 0;
	key->id = fi->id;
	__builtin_memcpy(key->saddr, &ip6->saddr, 16);
	__builtin_memcpy(key->daddr, &ip6->daddr, 16);
}

static __always_inline struct xdpg_decision xdpg_decide(struct xdpg_pkt *p,
							const struct xdpg_cursor *c, __u8 dir)
{
	int reason = xdpg_parse_l4(&p->l3, c->data_end, p->v6, &p->l4);

	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	if (dir == XDPG_DIR_EGRESS)
		return xdpg_egress_decide(p);
	return xdpg_ingress_decide(p, c->data_end);
}

static __always_inline struct xdpg_decision xdpg_classify_v4(struct xdpg_cursor *c, __u8 dir,
							     struct xdpg_frag_record *rec)
{
	struct xdpg_frag_info fi;
	struct xdpg_pkt p;
	struct iphdr *iph;
	int reason;

	reason = xdpg_parse_ipv4(c, &p.l3, &fi);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	iph = p.l3.ip;

	if (fi.offset) {
		/* RFC 1858: offset 1 could rewrite the TCP flags of the first fragment. */
		if (fi.protocol == IPPROTO_TCP && fi.offset == 1)
			return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
		xdpg_frag_key_v4(&rec->key, dir, iph, &fi);
		return xdpg_frag_lookup(&rec->key);
	}
	if (fi.more) {
		xdpg_frag_key_v4(&rec->key, dir, iph, &fi);
		rec->record = 1;
	}
	p.v6 = 0;
	p.saddr = (__u8 *)&iph->saddr;
	p.daddr = (__u8 *)&iph->daddr;
	return xdpg_decide(&p, c, dir);
}

static __always_inline struct xdpg_decision xdpg_classify_v6(struct xdpg_cursor *c, __u8 dir,
							     struct xdpg_frag_record *rec)
{
	struct xdpg_v6_walk w;
	struct xdpg_pkt p;
	struct ipv6hdr *ip6;
	int reason;

	reason = xdpg_parse_ipv6(c, &p.l3);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	ip6 = p.l3.ip;

	reason = xdpg_walk_ipv6(c, &p.l3, &w);
	if (reason) {
		/* Recorded too when a first fragment header came before the bad one. */
		if (w.first_frag) {
			xdpg_frag_key_v6(&rec->key, dir, ip6, &w.frag);
			rec->record = 1;
		}
		return xdpg_drop(reason, XDPG_NO_RULE);
	}
	if (w.later_frag) {
		/* Non-first fragments never create or change entries. */
		if (w.frag.protocol == IPPROTO_TCP && w.frag.offset == 1)
			return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
		xdpg_frag_key_v6(&rec->key, dir, ip6, &w.frag);
		return xdpg_frag_lookup(&rec->key);
	}
	if (w.first_frag) {
		xdpg_frag_key_v6(&rec->key, dir, ip6, &w.frag);
		rec->record = 1;
	}
	if (xdpg_is_ext_hdr(p.l3.proto))
		return xdpg_drop(XDPG_DROP_EXT_HDR_LIMIT, XDPG_NO_RULE);
	p.v6 = 1;
	p.saddr = (__u8 *)&ip6->saddr;
	p.daddr = (__u8 *)&ip6->daddr;
	return xdpg_decide(&p, c, dir);
}

static __always_inline struct xdpg_decision xdpg_classify(struct xdpg_cursor *c, __u8 dir,
							  struct xdpg_frag_record *rec)
{
	__u16 ethertype;
	__u64 candidates;
	int reason;

	reason = xdpg_parse_eth(c, &ethertype);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	if (ethertype == ETH_P_IP)
		return xdpg_classify_v4(c, dir, rec);
	if (ethertype == ETH_P_IPV6)
		return xdpg_classify_v6(c, dir, rec);

	/* No address to match: every ethertype rule's peers are "any", and the
	 * same slots serve both directions. */
	candidates = xdpg_port_bits(XDPG_KIND_ETHERTYPE, ethertype);
	if (candidates)
		return xdpg_pass(xdpg_rule_of(candidates));
	return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
}

/* ---- single exit (section 6) ----------------------------------------------- */

/* Exactly one pass counter or one reason counter per packet. */
static __always_inline void xdpg_count(const struct xdpg_decision *d, __u64 len, void *rule_map,
				       void *reason_map)
{
	if (d->rule != XDPG_NO_RULE) {
		__u32 rule = d->rule;
		struct xdpg_rule_counters *rc = bpf_map_lookup_elem(rule_map, &rule);

		if (rc) {
			if (d->verdict == XDP_PASS) {
				rc->pass_packets += 1;
				rc->pass_bytes += len;
			} else {
				rc->drop_packets += 1;
				rc->drop_bytes += len;
			}
		}
	}
	if (d->verdict != XDP_PASS) {
		__u32 reason = d->reason;
		struct xdpg_reason_counters *cnt = bpf_map_lookup_elem(reason_map, &reason);

		if (cnt) {
			cnt->packets += 1;
			cnt->bytes += len;
		}
	}
}

static __always_inline void xdpg_frag_store(const struct xdpg_frag_record *rec,
					    const struct xdpg_decision *d)
{
	struct xdpg_frag_value v = {
		.seen_ns = xdpg_now(),
		.rule = d->rule,
		.verdict = d->verdict,
		.reason = d->reason,
		.pad = 0,
	};

	bpf_map_update_elem(&frags, &rec->key, &v, BPF_ANY);
}

/* ---- drop telemetry --------------------------------------------------------- */

/* Upper-layer fields of an event, as far as the frame has them. */
static __always_inline void xdpg_describe_l4(__u8 *l4, const void *data_end, struct xdpg_event *e)
{
	if (e->protocol == IPPROTO_TCP) {
		if (!xdpg_need(l4, 14, data_end))
			return;
		e->sport = bpf_ntohs(*(__be16 *)l4);
		e->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		e->tcp_flags = l4[13];
	} else if (e->protocol == IPPROTO_UDP) {
		if (!xdpg_need(l4, 4, data_end))
			return;
		e->sport = bpf_ntohs(*(__be16 *)l4);
		e->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
	} else if (e->protocol == IPPROTO_ICMP || e->protocol == IPPROTO_ICMPV6) {
		if (!xdpg_need(l4, 1, data_end))
			return;
		e->icmp_type = l4[0];
	}
}

/* The dropped packet parsed again, leniently (it may be the malformed one):
 * whatever fits in the frame is reported, the rest stays zero. Only drops
 * pay for this; the decision itself never looks at it. */
static __always_inline void xdpg_describe(struct xdpg_cursor *c, struct xdpg_event *e)
{
	__u16 ethertype;

	if (xdpg_parse_eth(c, &ethertype))
		return;
	e->ethertype = ethertype;
	if (ethertype == ETH_P_IP) {
		struct iphdr *iph = c->pos;
		__u32 hlen;

		if (!xdpg_need(iph, sizeof(*iph), c->data_end))
			return;
		e->family = 4;
		e->protocol = iph->protocol;
		__builtin_memcpy(e->saddr, &iph->saddr, 4);
		__builtin_memcpy(e->daddr, &iph->daddr, 4);
		hlen = (__u32)(iph->ihl) * 4;
		if ((bpf_ntohs(iph->frag_off) & 0x1fff) || hlen < sizeof(*iph))
			return;
		xdpg_describe_l4((__u8 *)iph + hlen, c->data_end, e);
	} else if (ethertype == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = c->pos;
		struct xdpg_v6_walk w;
		struct xdpg_l3 l3;

		if (!xdpg_need(ip6, sizeof(*ip6), c->data_end))
			return;
		e->family = 6;
		e->protocol = ip6->nexthdr;
		__builtin_memcpy(e->saddr, &ip6->saddr, 16);
		__builtin_memcpy(e->daddr, &ip6->daddr, 16);
		l3.ip = ip6;
		l3.l4 = ip6 + 1;
		l3.end = c->data_end;
		l3.proto = ip6->nexthdr;
		if (xdpg_walk_ipv6(c, &l3, &w) || w.later_frag)
			return;
		e->protocol = l3.proto;
		xdpg_describe_l4(l3.l4, c->data_end, e);
	}
}

static __always_inline void xdpg_top_count(void *map, const void *key, __u64 weight)
{
	__u64 *n = bpf_map_lookup_elem(map, key);

	if (n) {
		__sync_fetch_and_add(n, weight);
		return;
	}
	/* NOEXIST: another CPU's insert of the same key is added to, not replaced. */
	if (bpf_map_update_elem(map, key, &weight, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(map, key);
		if (n)
			__sync_fetch_and_add(n, weight);
	}
}

/* Both top lists, `weight` drops of this packet's port and peer. */
static __always_inline void xdpg_top_drops(const struct xdpg_event *info, __u8 dir, __u64 weight)
{
	struct xdpg_top_peer_key rk = {};
	__u32 cls = XDPG_TOP_CLASS_COUNT, port = info->dport;
	__u64 *n;

	if (info->protocol == IPPROTO_TCP)
		cls = XDPG_TOP_TCP;
	else if (info->protocol == IPPROTO_UDP)
		cls = XDPG_TOP_UDP;
	else if (info->protocol == IPPROTO_ICMP)
		cls = XDPG_TOP_ICMP, port = info->icmp_type;
	else if (info->protocol == IPPROTO_ICMPV6)
		cls = XDPG_TOP_ICMPV6, port = info->icmp_type;
	if (cls < XDPG_TOP_CLASS_COUNT) {
		__u32 slot = (dir * XDPG_TOP_CLASS_COUNT + cls) << 16 | (port & 0xffff);

		n = bpf_map_lookup_elem(&top_ports, &slot);
		if (n)
			__sync_fetch_and_add(n, weight);
	}
	rk.direction = dir;
	rk.family = info->family;
	__builtin_memcpy(rk.addr, dir == XDPG_DIR_INGRESS ? info->saddr : info->daddr, 16);
	xdpg_top_count(&top_peers, &rk, weight);
}

/* Every drop counts in the top lists (exactly, or sampled under a flood);
 * a sample of them, at most the rate per CPU and reason, becomes an event.
 * The packet is parsed again only when one of the two needs it. */
static __always_inline void xdpg_drop_event(struct xdpg_cursor *c, __u32 ifindex, __u8 dir,
					    __u32 reason, __u32 rule, __u32 passed)
{
	struct xdpg_event info = {};
	struct xdpg_event_limit *lim;
	struct xdpg_event *e = NULL;
	__u32 idx;
	__u64 now, tat, weight = 1;

	idx = dir * XDPG_DROP_REASON_COUNT + (reason < XDPG_DROP_REASON_COUNT ? reason : 0);
	lim = bpf_map_lookup_elem(&event_limits, &idx);
	if (!lim)
		return;
	/* The clock is read once per jiffy (maps.h): bpf_jiffies64() is one
	 * inlined load, cheaper than either clock helper. */
	now = bpf_jiffies64();
	if (now != lim->jiffies) {
		lim->jiffies = now;
		lim->now_ns = xdpg_now();
		lim->tick_drops = 0;
	}
	lim->tick_drops += 1;
	if (lim->tick_drops > XDPG_TOP_EXACT_PER_TICK)
		weight = bpf_get_prandom_u32() % XDPG_TOP_SAMPLE ? 0 : XDPG_TOP_SAMPLE;
	now = lim->now_ns;
	tat = lim->tat_ns > now ? lim->tat_ns : now;
	if (event_interval_ns && tat - now <= event_tolerance_ns)
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		/* Over the rate, or the agent is behind: the sample is lost, and counted. */
		lim->suppressed += 1;
		lim->pending += 1;
		if (!weight)
			return;
	}
	xdpg_describe(c, &info);
	if (weight && info.family)
		xdpg_top_drops(&info, dir, weight);
	if (!e)
		return;
	lim->tat_ns = tat + event_interval_ns;
	info.timestamp_ns = bpf_ktime_get_ns();
	info.ifindex = ifindex;
	info.rule = rule;
	info.packet_len = c->frame_len;
	info.suppressed = lim->pending > 0xffffffffULL ? 0xffffffffU : (__u32)lim->pending;
	info.direction = dir;
	info.reason = reason;
	info.flags = passed ? XDPG_EVENT_PASSED : 0;
	__builtin_memcpy(e, &info, sizeof(info));
	bpf_ringbuf_submit(e, 0);
	lim->pending = 0;
	lim->emitted += 1;
}

/* ---- learning the peer sets (maps.h, docs/learn.md) ------------------------ */

#define XDPG_EEXIST 17 /* <errno.h> is not for -target bpf */

/* Does this decision teach anything? An admitted packet of a learned rule,
 * or, in audit mode, a would-drop of a rule's peer set. */
static __always_inline int xdpg_learns(const struct xdpg_decision *d)
{
	if (d->rule == XDPG_NO_RULE)
		return 0;
	if (d->verdict == XDP_PASS)
		return (learn_slots >> (d->rule & (XDPG_MAX_RULES - 1))) & 1;
	return audit_mode && d->reason == XDPG_DROP_PEER_NOT_IN_SET;
}

static __always_inline void xdpg_learn_overflow(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&learn_overflow, &idx);

	if (n)
		*n += 1;
}

/* One packet of `peer` on rule slot `rule`. A full map refuses the new
 * peer; the refusal is counted on the rule. */
static __always_inline void xdpg_learn_peer(__u8 family, const __u8 *peer, __u32 rule)
{
	struct xdpg_learn_key k = {};
	struct xdpg_learn_value *v;
	__u64 now = xdpg_now();
	long err;

	k.slot = rule & (XDPG_MAX_RULES - 1);
	k.family = family;
	__builtin_memcpy(k.addr, peer, 16);
	v = bpf_map_lookup_elem(&learn_peers, &k);
	if (!v) {
		struct xdpg_learn_value nv = { .packets = 1, .first_ns = now, .last_ns = now };

		err = bpf_map_update_elem(&learn_peers, &k, &nv, BPF_NOEXIST);
		if (!err)
			return;
		/* Another CPU inserted it first: add to that one. */
		v = err == -XDPG_EEXIST ? bpf_map_lookup_elem(&learn_peers, &k) : NULL;
		if (!v) {
			xdpg_learn_overflow(k.slot);
			return;
		}
	}
	__sync_fetch_and_add(&v->packets, 1);
	if (now - v->last_ns >= XDPG_LEARN_LAST_SEEN_STEP_NS && now > v->last_ns)
		v->last_ns = now;
}

static __always_inline void xdpg_learn_confirm(__u8 family, const __u8 *peer, __u32 how)
{
	struct xdpg_learn_confirm_key k = {};
	struct xdpg_learn_confirm_value *v;
	long err;

	k.family = family;
	__builtin_memcpy(k.addr, peer, 16);
	v = bpf_map_lookup_elem(&learn_confirmed, &k);
	if (v) {
		/* Bits are only ever set: a lost race loses nothing a later
		 * packet does not set again. */
		if ((v->how & how) != how)
			v->how |= how;
		return;
	}
	{
		struct xdpg_learn_confirm_value nv = { .confirmed_ns = xdpg_now(), .how = how };

		err = bpf_map_update_elem(&learn_confirmed, &k, &nv, BPF_NOEXIST);
		if (err && err != -XDPG_EEXIST)
			xdpg_learn_overflow(XDPG_MAX_RULES);
	}
}

/* Global (not inlined) functions: the verifier checks each once, apart from
 * every path of the decision that reaches the exit, and the pass path only
 * pays for the verdict test in front of the call. */
__attribute__((noinline)) int xdpg_drop_event_xdp(struct xdp_md *ctx, __u32 frame_len,
						  __u32 reason, __u32 rule)
{
	struct xdpg_cursor c;

	c.data = (void *)(long)ctx->data;
	c.pos = c.data;
	c.data_end = (void *)(long)ctx->data_end;
	c.frame_len = frame_len;
	xdpg_drop_event(&c, ctx->ingress_ifindex, XDPG_DIR_INGRESS, reason, rule, audit_mode);
	return 0;
}

__attribute__((noinline)) int xdpg_drop_event_tc(struct __sk_buff *skb, __u32 reason, __u32 rule,
						 __u32 passed)
{
	struct xdpg_cursor c;

	c.data = (void *)(long)skb->data;
	c.pos = c.data;
	c.data_end = (void *)(long)skb->data_end;
	c.frame_len = skb->len;
	xdpg_drop_event(&c, skb->ifindex, XDPG_DIR_EGRESS, reason, rule, passed);
	return 0;
}

/* Learning re-parses the frame (xdpg_describe) instead of widening the
 * decision: the fast path stays what it is, learning pays for itself. */
__attribute__((noinline)) int xdpg_learn_xdp(struct xdp_md *ctx, __u32 frame_len, __u32 rule)
{
	struct xdpg_cursor c;
	struct xdpg_event info = {};

	c.data = (void *)(long)ctx->data;
	c.pos = c.data;
	c.data_end = (void *)(long)ctx->data_end;
	c.frame_len = frame_len;
	xdpg_describe(&c, &info);
	if (info.family)
		xdpg_learn_peer(info.family, info.saddr, rule);
	return 0;
}

/* Egress: the destination is observed on a learned rule's pass, and proven
 * (confirmed) by what the host itself sent and the policy passed: a TCP
 * segment of an established connection, or a flow the host opened. */
__attribute__((noinline)) int xdpg_learn_tc(struct __sk_buff *skb, __u32 rule, __u32 observe,
					    __u32 host_opened, __u32 passed)
{
	struct xdpg_cursor c;
	struct xdpg_event info = {};
	__u32 how = 0;

	c.data = (void *)(long)skb->data;
	c.pos = c.data;
	c.data_end = (void *)(long)skb->data_end;
	c.frame_len = skb->len;
	xdpg_describe(&c, &info);
	if (!info.family)
		return 0;
	if (observe)
		xdpg_learn_peer(info.family, info.daddr, rule);
	if (!passed)
		return 0;
	if (info.protocol == IPPROTO_TCP && (info.tcp_flags & TCP_ACK) &&
	    !(info.tcp_flags & (TCP_SYN | TCP_RST)))
		how |= XDPG_CONFIRM_TCP_ESTABLISHED;
	if (host_opened)
		how |= XDPG_CONFIRM_HOST_OPENED;
	if (how)
		xdpg_learn_confirm(info.family, info.daddr, how);
	return 0;
}

SEC("xdp")
int xdpguard_ingress(struct xdp_md *ctx)
{
	struct xdpg_cursor c = {
		.data = (void *)(long)ctx->data,
		.pos = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
	};
	/* Every buffer of a multi-buffer frame; the first alone otherwise. */
	__u64 len = xdp_frags ? bpf_xdp_get_buff_len(ctx) : ctx->data_end - ctx->data;
	struct xdpg_frag_record rec;
	struct xdpg_decision d;

	c.frame_len = len;
	rec.record = 0;
	d = xdpg_classify(&c, XDPG_DIR_INGRESS, &rec);
	xdpg_count(&d, len, &rule_counters, &reason_counters);
	if (rec.record)
		xdpg_frag_store(&rec, &d);
	if (d.verdict != XDP_PASS)
		xdpg_drop_event_xdp(ctx, len, d.reason, d.rule);
	if (learn_enabled && xdpg_learns(&d))
		xdpg_learn_xdp(ctx, len, d.rule);
	return audit_mode ? XDP_PASS : d.verdict;
}

/* TC clsact egress (attached with bpf_tc_attach; no tcx, for 5.14). In
 * track mode the decision is counted as if enforced, and the packet sent. */
SEC("tc")
int xdpguard_egress(struct __sk_buff *skb)
{
	struct xdpg_cursor c;
	struct xdpg_frag_record rec;
	struct xdpg_decision d;
	__u32 len = skb->len;
	__u32 want = len < XDPG_EGRESS_PULL ? len : XDPG_EGRESS_PULL;

	if (egress_mode == XDPG_EGRESS_OFF)
		return TC_ACT_OK;
	/* Headers in paged data are not reachable by direct access; a failed
	 * pull leaves them short and the packet malformed. */
	if (skb->data_end - skb->data < want)
		bpf_skb_pull_data(skb, want);
	c.data = (void *)(long)skb->data;
	c.pos = c.data;
	c.data_end = (void *)(long)skb->data_end;
	c.frame_len = len;
	rec.record = 0;
	d = xdpg_classify(&c, XDPG_DIR_EGRESS, &rec);
	xdpg_count(&d, len, &egress_rule_counters, &egress_reason_counters);
	if (rec.record)
		xdpg_frag_store(&rec, &d);
	if (learn_enabled && (d.verdict == XDP_PASS || xdpg_learns(&d)))
		xdpg_learn_tc(skb, d.rule, xdpg_learns(&d), d.host_opened, d.verdict == XDP_PASS);
	if (d.verdict == XDP_PASS)
		return TC_ACT_OK;
	if (egress_mode != XDPG_EGRESS_ENFORCE || audit_mode) {
		xdpg_drop_event_tc(skb, d.reason, d.rule, 1);
		return TC_ACT_OK;
	}
	xdpg_drop_event_tc(skb, d.reason, d.rule, 0);
	return TC_ACT_SHOT;
}
