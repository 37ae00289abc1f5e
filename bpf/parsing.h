/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cursor-style packet parsing for xdpguard.bpf.c.
 *
 * Every helper checks bounds before it reads and returns a drop reason
 * (0 = fine), so the caller can route every outcome to its single exit.
 * "Need N bytes" (docs/datapath.md) is checked against data_end for the
 * verifier and, once the L3 end is known, against the L3 end for the
 * semantics: the L3 end was itself checked to be within the frame.
 */
#ifndef XDPGUARD_BPF_PARSING_H
#define XDPGUARD_BPF_PARSING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpguard/maps.h"

struct xdpg_cursor {
	void *data;
	void *pos;
	void *data_end;
};

/* Largest offset xdpg_rebase() keeps: the verifier grants packet ranges only
 * below 64 KiB (MAX_PACKET_OFF), and XDP frames without multi-buffer are at
 * most a page, so no real frame reaches it. */
#define XDPG_MAX_REBASE_OFF 0xff00

/* Re-derive pos from its offset. Every path through the IPv6 extension
 * header walk then reaches the same verifier state and is pruned; without
 * this the explored states double with each header. The pointer subtraction
 * needs allow_ptr_leaks (CAP_PERFMON), as do the L3-end comparisons. */
static __always_inline __u8 *xdpg_rebase(void *data, void *pos)
{
	__u64 off = (__u8 *)pos - (__u8 *)data;

	/* Stops clang from folding data + (pos - data) back into pos. */
	asm volatile("" : "+r"(off));
	if (off > XDPG_MAX_REBASE_OFF)
		return NULL;
	return (__u8 *)data + off;
}

/* The L3 header a packet was parsed to, with its end (tot_len / payload_len). */
struct xdpg_l3 {
	void *ip;     /* IPv4 or IPv6 header */
	void *l4;     /* upper-layer header (after options / extension headers) */
	void *end;    /* IP start + tot_len, or IP start + 40 + payload_len */
	__u8 proto;   /* upper-layer protocol */
};

/* Fields of a fragment (IPv4 header or IPv6 fragment header). */
struct xdpg_frag_info {
	__u32 id;      /* IPv4: host-order 16-bit id; IPv6: network order */
	__u16 offset;  /* in 8-byte units */
	__u8 more;     /* MF / M */
	__u8 protocol; /* IPv4 protocol / fragment header's nexthdr */
};

static __always_inline int xdpg_need(const void *pos, __u32 n, const void *data_end)
{
	return (const __u8 *)pos + n <= (const __u8 *)data_end;
}

/* Within both the frame and the L3 end. */
static __always_inline int xdpg_need_l3(const void *pos, __u32 n, const void *data_end,
					const void *l3_end)
{
	return (const __u8 *)pos + n <= (const __u8 *)data_end &&
	       (const __u8 *)pos + n <= (const __u8 *)l3_end;
}

static __always_inline int xdpg_is_vlan(__u16 ethertype)
{
	return ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD;
}

/* Ethernet + up to XDPG_MAX_VLAN_TAGS tags. *ethertype is host order. */
static __always_inline int xdpg_parse_eth(struct xdpg_cursor *c, __u16 *ethertype)
{
	struct ethhdr *eth = c->pos;
	__u16 type;

	if (!xdpg_need(eth, sizeof(*eth), c->data_end))
		return XDPG_DROP_MALFORMED;
	type = bpf_ntohs(eth->h_proto);
	c->pos = eth + 1;

#pragma unroll
	for (int i = 0; i < XDPG_MAX_VLAN_TAGS; i++) {
		__u8 *tag = c->pos;

		if (!xdpg_is_vlan(type))
			break;
		if (!xdpg_need(tag, 4, c->data_end))
			return XDPG_DROP_MALFORMED;
		/* A tag is TCI (2 bytes) then the inner ethertype. */
		type = bpf_ntohs(*(__be16 *)(tag + 2));
		c->pos = tag + 4;
	}
	if (xdpg_is_vlan(type))
		return XDPG_DROP_MALFORMED;
	*ethertype = type;
	return 0;
}

/* IPv4 header checks (section 2.1), fragment fields and the L4 start. */
static __always_inline int xdpg_parse_ipv4(struct xdpg_cursor *c, struct xdpg_l3 *l3,
					   struct xdpg_frag_info *frag)
{
	struct iphdr *iph = c->pos;
	__u32 hlen, tot_len;
	__u16 frag_off;
	__u8 b0;

	if (!xdpg_need(iph, sizeof(*iph), c->data_end))
		return XDPG_DROP_MALFORMED;
	b0 = *(__u8 *)iph;
	if ((b0 >> 4) != 4)
		return XDPG_DROP_MALFORMED;
	hlen = (__u32)(b0 & 0x0f) * 4;
	if (hlen < sizeof(*iph))
		return XDPG_DROP_MALFORMED;
	if (!xdpg_need(iph, hlen, c->data_end))
		return XDPG_DROP_MALFORMED;
	tot_len = bpf_ntohs(iph->tot_len);
	if (tot_len < hlen)
		return XDPG_DROP_MALFORMED;
	if (!xdpg_need(iph, tot_len, c->data_end))
		return XDPG_DROP_MALFORMED;

	frag_off = bpf_ntohs(iph->frag_off);
	frag->offset = frag_off & 0x1fff;
	frag->more = (frag_off & 0x2000) != 0;
	frag->protocol = iph->protocol;
	frag->id = bpf_ntohs(iph->id);

	l3->ip = iph;
	l3->l4 = (__u8 *)iph + hlen;
	l3->end = (__u8 *)iph + tot_len;
	l3->proto = iph->protocol;
	return 0;
}

/* IPv6 header checks (section 3.1). Leaves c->pos after the fixed header;
 * the extension header walk is done by the caller, which needs to stop at
 * a fragment header. */
static __always_inline int xdpg_parse_ipv6(struct xdpg_cursor *c, struct xdpg_l3 *l3)
{
	struct ipv6hdr *ip6 = c->pos;
	__u32 plen;

	if (!xdpg_need(ip6, sizeof(*ip6), c->data_end))
		return XDPG_DROP_MALFORMED;
	if ((*(__u8 *)ip6 >> 4) != 6)
		return XDPG_DROP_MALFORMED;
	plen = bpf_ntohs(ip6->payload_len);
	if (plen == 0) /* jumbogram: no length we can trust */
		return XDPG_DROP_MALFORMED;
	if (!xdpg_need(ip6, sizeof(*ip6) + plen, c->data_end))
		return XDPG_DROP_MALFORMED;

	l3->ip = ip6;
	l3->l4 = ip6 + 1;
	l3->end = (__u8 *)(ip6 + 1) + plen;
	l3->proto = ip6->nexthdr;
	return 0;
}

static __always_inline int xdpg_is_ext_hdr(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_FRAGMENT ||
	       nh == IPPROTO_AH || nh == IPPROTO_DSTOPTS;
}

/* Length of the non-fragment extension header at pos (8 bytes of it are
 * known to be within the L3 end); 0 if it does not fit in the L3 end. */
static __always_inline __u32 xdpg_ext_hdr_len(const __u8 *pos, __u8 nh, const void *data_end,
					      const void *l3_end)
{
	__u32 len;

	if (nh == IPPROTO_AH)
		len = ((__u32)pos[1] + 2) * 4;
	else
		len = ((__u32)pos[1] + 1) * 8;
	if (!xdpg_need_l3(pos, len, data_end, l3_end))
		return 0;
	return len;
}

/* IPv6 fragment header (8 bytes at pos, already checked). */
static __always_inline void xdpg_parse_frag_hdr(const __u8 *pos, struct xdpg_frag_info *frag)
{
	__u16 frag_off = bpf_ntohs(*(__be16 *)(pos + 2));

	frag->offset = frag_off >> 3;
	frag->more = frag_off & 1;
	frag->protocol = pos[0];
	frag->id = *(__u32 *)(pos + 4); /* kept in network order */
}

/* Lowest set bit of a non-zero mask: popcount of the bits below it.
 * clang 14's BPF backend crashes on __builtin_ctzll; a branch-free SWAR
 * popcount also keeps the verifier from forking at every call site. */
static __always_inline __u32 xdpg_lowest_bit(__u64 x)
{
	__u64 v = (x & -x) - 1;

	v = v - ((v >> 1) & 0x5555555555555555ULL);
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((v * 0x0101010101010101ULL) >> 56);
}

#endif /* XDPGUARD_BPF_PARSING_H */
