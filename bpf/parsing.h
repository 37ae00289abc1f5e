/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cursor-style packet parsing for xdpguard.bpf.c.
 *
 * Shared by the XDP ingress and the TC egress program: both hand in a cursor
 * over direct packet access. Every helper checks bounds before it reads and
 * returns a drop reason (0 = fine), so the caller can route every outcome to
 * its single exit. "Need N bytes" (docs/datapath.md) is checked against
 * data_end for the verifier and, once the L3 end is known, against the L3
 * end for the semantics: the L3 end was itself checked against frame_len.
 * For XDP data_end is the end of the frame's first buffer (the whole frame
 * unless it is a multi-buffer one); for TC it is the end of the linear part,
 * which the egress program first pulls to XDPG_EGRESS_PULL. Either way
 * headers past data_end are not read: the packet is malformed.
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
	__u32 frame_len; /* whole packet: every buffer (XDP), skb->len (TC) */
};

/* Bytes of the whole packet from pos on; pos is at most a few headers in. */
static __always_inline __u32 xdpg_remaining(const struct xdpg_cursor *c, const void *pos)
{
	__u32 off = (const __u8 *)pos - (const __u8 *)c->data;

	return off > c->frame_len ? 0 : c->frame_len - off;
}

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

/* Largest offset xdpg_rebase() keeps: the verifier grants packet ranges only
 * below 64 KiB (MAX_PACKET_OFF), and an XDP frame's first buffer is at most
 * a page (later buffers of a multi-buffer frame are never read), so no real
 * frame reaches it. */
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

/* A 16-bit length field in host order, with bounds the verifier can see.
 * Verifiers before 6.x (Debian's 5.10 and 6.1 among them) keep no bounds
 * across a byte swap (BPF_END): ntohs() of a loaded u16 is an unbounded
 * scalar there, and adding it to a packet pointer is refused. The mask is in
 * asm so that clang, which knows the swap's range, cannot drop it. */
static __always_inline __u32 xdpg_len16(const void *field)
{
	__u64 v = bpf_ntohs(*(const __be16 *)field);

	asm volatile("%0 &= 0xffff" : "+r"(v));
	return (__u32)v;
}

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
	tot_len = xdpg_len16(&iph->tot_len);
	if (tot_len < hlen)
		return XDPG_DROP_MALFORMED;
	if (tot_len > xdpg_remaining(c, iph))
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
	plen = xdpg_len16(&ip6->payload_len);
	if (plen == 0) /* jumbogram: no length we can trust */
		return XDPG_DROP_MALFORMED;
	if (sizeof(*ip6) + plen > xdpg_remaining(c, ip6))
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

/* Result of the IPv6 extension header walk (section 3.2). */
struct xdpg_v6_walk {
	struct xdpg_frag_info frag; /* valid when first_frag or later_frag */
	__u8 first_frag;            /* a first-fragment header names the datagram */
	__u8 later_frag;            /* a non-first fragment header: decided by frags */
};

/* Walks at most XDPG_MAX_EXT_HDRS headers from l3->l4 / l3->proto and leaves
 * there the header after them (which may still be an extension header: the
 * caller drops ext_hdr_limit, after the fragment checks). Returns
 * XDPG_DROP_MALFORMED when a header does not fit; w is valid either way. */
static __always_inline int xdpg_walk_ipv6(const struct xdpg_cursor *c, struct xdpg_l3 *l3,
					  struct xdpg_v6_walk *w)
{
	__u8 *pos = l3->l4;
	__u8 nh = l3->proto;

	/* w->frag too: clang carries its fields through the loop in stack
	 * slots, and verifiers before 5.12 refuse reading a slot that no path
	 * has written, even when the value is never used. */
	__builtin_memset(w, 0, sizeof(*w));
#pragma unroll
	for (int i = 0; i < XDPG_MAX_EXT_HDRS; i++) {
		__u32 len = 8;

		if (!xdpg_is_ext_hdr(nh))
			break;
		pos = xdpg_rebase(c->data, pos);
		if (!pos || !xdpg_need_l3(pos, 8, c->data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			struct xdpg_frag_info f;

			xdpg_parse_frag_hdr(pos, &f);
			if (f.offset) {
				w->frag = f;
				w->later_frag = 1;
				break;
			}
			/* The last first-fragment header names the datagram. */
			if (f.more) {
				w->frag = f;
				w->first_frag = 1;
			}
		} else {
			len = xdpg_ext_hdr_len(pos, nh, c->data_end, l3->end);
			if (!len)
				return XDPG_DROP_MALFORMED;
		}
		nh = pos[0];
		pos += len;
	}
	l3->l4 = xdpg_rebase(c->data, pos);
	if (!l3->l4)
		return XDPG_DROP_MALFORMED;
	l3->proto = nh;
	return 0;
}

enum xdpg_l4_kind {
	XDPG_L4_OTHER = 0, /* no ports, no type: any other protocol */
	XDPG_L4_TCP,
	XDPG_L4_UDP,
	XDPG_L4_ICMP,      /* ICMP over IPv4 only */
	XDPG_L4_ICMPV6,    /* ICMPv6 over IPv6 only */
};

/* The upper-layer fields both directions decide on. */
struct xdpg_l4 {
	__u8 *hdr;
	__u16 sport;     /* host order; TCP/UDP */
	__u16 dport;
	__u8 kind;       /* enum xdpg_l4_kind */
	__u8 tcp_flags;
	__u8 icmp_type;
};

static __always_inline int xdpg_tcp_bare_syn(const struct xdpg_l4 *l4)
{
	return (l4->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

/* Section 4: header checks of the upper layer, the same for both directions. */
static __always_inline int xdpg_parse_l4(const struct xdpg_l3 *l3, const void *data_end, int v6,
					 struct xdpg_l4 *out)
{
	__u8 *l4 = l3->l4;

	out->hdr = l4;
	out->kind = XDPG_L4_OTHER;
	out->sport = 0;
	out->dport = 0;
	out->tcp_flags = 0;
	out->icmp_type = 0;
	switch (l3->proto) {
	case IPPROTO_TCP: {
		__u32 doff;
		__u8 flags;

		if (!xdpg_need_l3(l4, 20, data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		doff = (__u32)(l4[12] >> 4) * 4;
		if (doff < 20)
			return XDPG_DROP_MALFORMED;
		/* Options are not read: the L3 end is the whole check. */
		if ((__u8 *)l4 + doff > (__u8 *)l3->end)
			return XDPG_DROP_MALFORMED;
		flags = l4[13];
		if ((flags & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN) ||
		    (flags & (TCP_SYN | TCP_RST)) == (TCP_SYN | TCP_RST) ||
		    !(flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG)) ||
		    (flags & (TCP_FIN | TCP_PSH | TCP_URG)) == (TCP_FIN | TCP_PSH | TCP_URG))
			return XDPG_DROP_BAD_TCP_FLAGS;
		out->kind = XDPG_L4_TCP;
		out->tcp_flags = flags;
		out->sport = bpf_ntohs(*(__be16 *)l4);
		out->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		return 0;
	}
	case IPPROTO_UDP:
		if (!xdpg_need_l3(l4, 8, data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		out->kind = XDPG_L4_UDP;
		out->sport = bpf_ntohs(*(__be16 *)l4);
		out->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
		return 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((l3->proto == IPPROTO_ICMPV6) != (v6 != 0))
			return 0; /* ICMP over IPv6 / ICMPv6 over IPv4: any other protocol */
		if (!xdpg_need_l3(l4, 8, data_end, l3->end))
			return XDPG_DROP_MALFORMED;
		out->kind = v6 ? XDPG_L4_ICMPV6 : XDPG_L4_ICMP;
		out->icmp_type = l4[0];
		return 0;
	}
	return 0;
}

/* ICMP error types that quote the offending packet (docs/datapath.md 5.2). */
static __always_inline int xdpg_icmp_is_error(int v6, __u8 type)
{
	if (v6)
		return type >= 1 && type <= 4;
	return type == 3 || type == 11 || type == 12;
}

/* The packet quoted by an ICMP error, as its sender (the host) sent it. */
struct xdpg_quoted {
	__u8 *saddr;
	__u8 *daddr;
	__u16 sport; /* host order */
	__u16 dport;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
};

/* The quoted IP header starts 8 bytes into the ICMP message; it must be
 * whole, carry TCP or UDP directly (IPv4: not a non-first fragment; IPv6: no
 * extension headers) and its first 4 transport bytes (the ports) must be
 * there. Returns 1 when q is filled. */
static __always_inline int xdpg_parse_quoted(const struct xdpg_l3 *l3, const struct xdpg_l4 *l4,
					     const void *data_end, int v6, struct xdpg_quoted *q)
{
	__u8 *in = l4->hdr + 8;
	__u8 *ports;

	if (v6) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)in;

		if (!xdpg_need_l3(in, sizeof(*ip6) + 4, data_end, l3->end))
			return 0;
		if ((in[0] >> 4) != 6)
			return 0;
		q->proto = ip6->nexthdr;
		q->saddr = (__u8 *)&ip6->saddr;
		q->daddr = (__u8 *)&ip6->daddr;
		ports = in + sizeof(*ip6);
	} else {
		struct iphdr *iph = (struct iphdr *)in;
		__u32 hlen;

		if (!xdpg_need_l3(in, sizeof(*iph), data_end, l3->end))
			return 0;
		if ((in[0] >> 4) != 4)
			return 0;
		hlen = (__u32)(in[0] & 0x0f) * 4;
		if (hlen < sizeof(*iph) || (bpf_ntohs(iph->frag_off) & 0x1fff))
			return 0;
		ports = in + hlen;
		if (!xdpg_need_l3(ports, 4, data_end, l3->end))
			return 0;
		q->proto = iph->protocol;
		q->saddr = (__u8 *)&iph->saddr;
		q->daddr = (__u8 *)&iph->daddr;
	}
	if (q->proto != IPPROTO_TCP && q->proto != IPPROTO_UDP)
		return 0;
	q->sport = bpf_ntohs(*(__be16 *)ports);
	q->dport = bpf_ntohs(*(__be16 *)(ports + 2));
	return 1;
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
