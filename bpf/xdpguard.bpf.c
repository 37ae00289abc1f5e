// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdpguard ingress filter. Implements docs/datapath.md exactly; the C++
 * reference classifier (agent/classify/reference.cpp) implements the same
 * procedure and tests/bpf/ compares the two packet by packet.
 *
 * Shape: xdpg_classify() decides, returning from wherever it knows the
 * answer; xdpguard_ingress() is the single exit that counts the decision
 * and records it for a first fragment, so no branch can forget either.
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
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpguard/maps.h"
#include "parsing.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent (or a test) through the skeleton before load. */
const volatile __u64 frag_timeout_ns = 30000000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDPG_PORT_TABLE_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} port_table SEC(".maps");

/* NO_PREALLOC is mandatory for LPM tries; the agent may resize before load. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpg_lpm_v4_key);
	__type(value, __u64);
} peers_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xdpg_lpm_v6_key);
	__type(value, __u64);
} peers_v6 SEC(".maps");

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
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FRAG_ENTRIES);
	__type(key, struct xdpg_frag_key);
	__type(value, struct xdpg_frag_value);
} frags SEC(".maps");

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

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

struct xdpg_decision {
	__u32 rule; /* XDPG_NO_RULE when not attributed */
	__u8 verdict;
	__u8 reason;
};

/* Filled only once the packet is known to be a first fragment. */
struct xdpg_frag_record {
	struct xdpg_frag_key key;
	int record;
};

static __always_inline struct xdpg_decision xdpg_pass(__u32 rule)
{
	struct xdpg_decision d = { .rule = rule, .verdict = XDP_PASS, .reason = XDPG_REASON_NONE };
	return d;
}

static __always_inline struct xdpg_decision xdpg_drop(__u8 reason, __u32 rule)
{
	struct xdpg_decision d = { .rule = rule, .verdict = XDP_DROP, .reason = reason };
	return d;
}

static __always_inline __u64 xdpg_port_bits(__u32 kind, __u32 value)
{
	__u32 idx = kind << 16 | value;
	__u64 *bits = bpf_map_lookup_elem(&port_table, &idx);

	return bits ? *bits : 0;
}

/* Section 5, given the LPM result. */
static __always_inline struct xdpg_decision xdpg_choose(__u64 candidates, __u64 members)
{
	__u64 hits = candidates & members;

	if (hits)
		return xdpg_pass(xdpg_lowest_bit(hits));
	return xdpg_drop(XDPG_DROP_PEER_NOT_IN_SET, xdpg_lowest_bit(candidates));
}

/* Section 4: candidates of the upper-layer header, or a drop reason. */
static __always_inline int xdpg_candidates(const struct xdpg_l3 *l3, const void *data_end,
					   int v6, __u64 *candidates)
{
	__u8 *l4 = l3->l4;

	*candidates = 0;
	switch (l3->proto) {
	case IPPROTO_TCP: {
		__u32 doff;
		__u8 flags;
		__u64 bits;

		if (!xdpg_need_l3(l4, sizeof(struct tcphdr), data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		doff = (__u32)(l4[12] >> 4) * 4;
		if (doff < sizeof(struct tcphdr))
			return XDPG_DROP_MALFORMED;
		/* l3->end is within the frame, so this is the whole check. */
		if ((__u8 *)l4 + doff > (__u8 *)l3->end)
			return XDPG_DROP_MALFORMED;
		flags = l4[13];
		if ((flags & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN) ||
		    (flags & (TCP_SYN | TCP_RST)) == (TCP_SYN | TCP_RST) ||
		    !(flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG)) ||
		    (flags & (TCP_FIN | TCP_PSH | TCP_URG)) == (TCP_FIN | TCP_PSH | TCP_URG))
			return XDPG_DROP_BAD_TCP_FLAGS;
		bits = xdpg_port_bits(XDPG_KIND_TCP_LOCAL, bpf_ntohs(*(__be16 *)(l4 + 2)));
		/* A reply never opens a connection: a bare SYN skips TCP_REMOTE. */
		if ((flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
			bits |= xdpg_port_bits(XDPG_KIND_TCP_REMOTE, bpf_ntohs(*(__be16 *)l4));
		*candidates = bits;
		return 0;
	}
	case IPPROTO_UDP:
		if (!xdpg_need_l3(l4, sizeof(struct udphdr), data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		*candidates = xdpg_port_bits(XDPG_KIND_UDP_LOCAL, bpf_ntohs(*(__be16 *)(l4 + 2))) |
			      xdpg_port_bits(XDPG_KIND_UDP_REMOTE, bpf_ntohs(*(__be16 *)l4));
		return 0;
	case IPPROTO_ICMP:
		if (v6)
			return 0;
		if (!xdpg_need_l3(l4, 8, data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		*candidates = xdpg_port_bits(XDPG_KIND_ICMP, l4[0]);
		return 0;
	case IPPROTO_ICMPV6:
		if (!v6)
			return 0;
		if (!xdpg_need_l3(l4, 8, data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		*candidates = xdpg_port_bits(XDPG_KIND_ICMPV6, l4[0]);
		return 0;
	}
	return 0;
}

/* A non-first fragment takes its first fragment's decision, if fresh. */
static __always_inline struct xdpg_decision xdpg_frag_lookup(const struct xdpg_frag_key *key)
{
	struct xdpg_frag_value *v = bpf_map_lookup_elem(&frags, key);
	struct xdpg_decision d;

	if (!v || bpf_ktime_get_ns() - v->seen_ns >= frag_timeout_ns)
		return xdpg_drop(XDPG_DROP_FRAGMENT_ORPHAN, XDPG_NO_RULE);
	d.rule = v->rule;
	d.verdict = v->verdict == XDP_PASS ? XDP_PASS : XDP_DROP;
	d.reason = v->reason;
	return d;
}

static __always_inline void xdpg_frag_key_v4(struct xdpg_frag_key *key, const struct iphdr *iph,
					     const struct xdpg_frag_info *fi)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->family = 4;
	key->protocol = fi->protocol;
	key->id = fi->id;
	__builtin_memcpy(key->saddr, &iph->saddr, 4);
	__builtin_memcpy(key->daddr, &iph->daddr, 4);
}

static __always_inline void xdpg_frag_key_v6(struct xdpg_frag_key *key, const struct ipv6hdr *ip6,
					     const struct xdpg_frag_info *fi)
{
	key->family = 6;
	key->protocol = fi->protocol;
	key->pad = 0;
	key->id = fi->id;
	__builtin_memcpy(key->saddr, &ip6->saddr, 16);
	__builtin_memcpy(key->daddr, &ip6->daddr, 16);
}

static __always_inline struct xdpg_decision xdpg_classify_v4(struct xdpg_cursor *c,
							     struct xdpg_frag_record *rec)
{
	struct xdpg_lpm_v4_key lpm = { .prefixlen = 32 };
	struct xdpg_frag_info fi;
	struct xdpg_l3 l3;
	struct iphdr *iph;
	__u64 candidates, *members;
	int reason;

	reason = xdpg_parse_ipv4(c, &l3, &fi);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	iph = l3.ip;

	if (fi.offset) {
		/* RFC 1858: offset 1 could rewrite the TCP flags of the first fragment. */
		if (fi.protocol == IPPROTO_TCP && fi.offset == 1)
			return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
		xdpg_frag_key_v4(&rec->key, iph, &fi);
		return xdpg_frag_lookup(&rec->key);
	}
	if (fi.more) {
		xdpg_frag_key_v4(&rec->key, iph, &fi);
		rec->record = 1;
	}

	reason = xdpg_candidates(&l3, c->data_end, 0, &candidates);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	if (!candidates)
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	__builtin_memcpy(lpm.addr, &iph->saddr, 4);
	members = bpf_map_lookup_elem(&peers_v4, &lpm);
	return xdpg_choose(candidates, members ? *members : 0);
}

static __always_inline struct xdpg_decision xdpg_classify_v6(struct xdpg_cursor *c,
							     struct xdpg_frag_record *rec)
{
	struct xdpg_lpm_v6_key lpm = { .prefixlen = 128 };
	struct xdpg_frag_info fi = {};
	struct xdpg_l3 l3;
	struct ipv6hdr *ip6;
	__u64 candidates, *members;
	int first_frag = 0, later_frag = 0;
	__u8 *pos;
	__u8 nh;
	int reason;

	reason = xdpg_parse_ipv6(c, &l3);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	ip6 = l3.ip;
	pos = l3.l4;
	nh = l3.proto;

#pragma unroll
	for (int i = 0; i < XDPG_MAX_EXT_HDRS; i++) {
		__u32 len = 8;

		if (!xdpg_is_ext_hdr(nh))
			break;
		pos = xdpg_rebase(c->data, pos);
		if (!pos || !xdpg_need_l3(pos, 8, c->data_end, l3.end))
			goto malformed;
		if (nh == IPPROTO_FRAGMENT) {
			struct xdpg_frag_info f;

			xdpg_parse_frag_hdr(pos, &f);
			if (f.offset) {
				fi = f;
				later_frag = 1;
				break;
			}
			/* The last first-fragment header names the datagram. */
			if (f.more) {
				fi = f;
				first_frag = 1;
			}
		} else {
			len = xdpg_ext_hdr_len(pos, nh, c->data_end, l3.end);
			if (!len)
				goto malformed;
		}
		nh = pos[0];
		pos += len;
	}

	if (later_frag) {
		/* Non-first fragments never create or change entries. */
		if (fi.protocol == IPPROTO_TCP && fi.offset == 1)
			return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
		xdpg_frag_key_v6(&rec->key, ip6, &fi);
		return xdpg_frag_lookup(&rec->key);
	}
	if (first_frag) {
		xdpg_frag_key_v6(&rec->key, ip6, &fi);
		rec->record = 1;
	}
	if (xdpg_is_ext_hdr(nh))
		return xdpg_drop(XDPG_DROP_EXT_HDR_LIMIT, XDPG_NO_RULE);

	l3.l4 = xdpg_rebase(c->data, pos);
	if (!l3.l4)
		return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
	l3.proto = nh;
	reason = xdpg_candidates(&l3, c->data_end, 1, &candidates);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	if (!candidates)
		return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
	__builtin_memcpy(lpm.addr, &ip6->saddr, 16);
	members = bpf_map_lookup_elem(&peers_v6, &lpm);
	return xdpg_choose(candidates, members ? *members : 0);

malformed:
	/* Recorded too when a first fragment header came before the bad one. */
	if (first_frag) {
		xdpg_frag_key_v6(&rec->key, ip6, &fi);
		rec->record = 1;
	}
	return xdpg_drop(XDPG_DROP_MALFORMED, XDPG_NO_RULE);
}

static __always_inline struct xdpg_decision xdpg_classify(struct xdp_md *ctx,
							  struct xdpg_frag_record *rec)
{
	struct xdpg_cursor c = {
		.data = (void *)(long)ctx->data,
		.pos = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
	};
	__u16 ethertype;
	__u64 candidates;
	int reason;

	reason = xdpg_parse_eth(&c, &ethertype);
	if (reason)
		return xdpg_drop(reason, XDPG_NO_RULE);
	if (ethertype == ETH_P_IP)
		return xdpg_classify_v4(&c, rec);
	if (ethertype == ETH_P_IPV6)
		return xdpg_classify_v6(&c, rec);

	/* No source address: every ethertype rule's peers are "any". */
	candidates = xdpg_port_bits(XDPG_KIND_ETHERTYPE, ethertype);
	if (candidates)
		return xdpg_pass(xdpg_lowest_bit(candidates));
	return xdpg_drop(XDPG_DROP_NO_RULE, XDPG_NO_RULE);
}

/* Section 6: exactly one pass counter or one reason counter per packet. */
static __always_inline void xdpg_count(const struct xdpg_decision *d, __u64 len)
{
	if (d->rule != XDPG_NO_RULE) {
		__u32 rule = d->rule;
		struct xdpg_rule_counters *rc = bpf_map_lookup_elem(&rule_counters, &rule);

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
		struct xdpg_reason_counters *cnt = bpf_map_lookup_elem(&reason_counters, &reason);

		if (cnt) {
			cnt->packets += 1;
			cnt->bytes += len;
		}
	}
}

SEC("xdp")
int xdpguard_ingress(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;
	struct xdpg_frag_record rec;
	struct xdpg_decision d;

	rec.record = 0;
	d = xdpg_classify(ctx, &rec);
	xdpg_count(&d, len);
	if (rec.record) {
		struct xdpg_frag_value v = {
			.seen_ns = bpf_ktime_get_ns(),
			.rule = d.rule,
			.verdict = d.verdict,
			.reason = d.reason,
			.pad = 0,
		};

		bpf_map_update_elem(&frags, &rec.key, &v, BPF_ANY);
	}
	return d.verdict;
}
