/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map layouts shared by the XDP program (bpf/xdpguard.bpf.c) and the agent
 * (agent/). This is the only definition of these structures: the C++ side
 * static_asserts their sizes (agent/kernel/layout_check.cpp), so a change here
 * that forgets the other side does not compile.
 *
 * How a packet is decided (docs/datapath.md has the full procedure):
 *   candidates = port_table[LOCAL kind][dst port] | port_table[REMOTE kind][src port]
 *   members    = peers_v4/peers_v6 longest-prefix match on the source address
 *   rule       = lowest set bit of (candidates & members)   -> pass, count on rule
 *   otherwise  = lowest set bit of candidates               -> drop PEER_NOT_IN_SET
 *   no candidates                                            -> drop NO_RULE
 * Two lookups and a count-trailing-zeros: the cost does not grow with the
 * number of rules. A bit position is a rule index, in policy order, so the
 * lowest bit is the first rule of the policy that matches.
 *
 * Byte order: every address is in network order (as on the wire); ports,
 * ICMP types and ethertypes used as array indices are in host order.
 */
#ifndef XDPGUARD_MAPS_H
#define XDPGUARD_MAPS_H

#include <linux/types.h>

/* Bumped whenever a map below changes shape; pinned maps carry it in
 * xdpg_info so an agent never mixes generations. */
#define XDPG_LAYOUT_VERSION 1

/* A rule is one bit of a __u64 mask. */
#define XDPG_MAX_RULES 64
#define XDPG_NO_RULE 0xffffffffu

/* IPv6 extension headers walked before giving up (drop EXT_HDR_LIMIT). */
#define XDPG_MAX_EXT_HDRS 6
/* VLAN tags (802.1Q / 802.1ad) accepted in front of the payload. */
#define XDPG_MAX_VLAN_TAGS 2

/* port_table index = kind << 16 | value (host order). */
enum xdpg_port_kind {
	XDPG_KIND_TCP_LOCAL = 0,  /* inbound TCP by destination port: peers initiate */
	XDPG_KIND_UDP_LOCAL = 1,  /* inbound UDP by destination port */
	XDPG_KIND_TCP_REMOTE = 2, /* inbound TCP by source port: replies to flows the host opens */
	XDPG_KIND_UDP_REMOTE = 3, /* inbound UDP by source port */
	XDPG_KIND_ICMP = 4,       /* ICMPv4 by type */
	XDPG_KIND_ICMPV6 = 5,     /* ICMPv6 by type */
	XDPG_KIND_ETHERTYPE = 6,  /* non-IP frames by (innermost) ethertype */
	XDPG_KIND_COUNT = 7,
};
#define XDPG_PORT_TABLE_ENTRIES (XDPG_KIND_COUNT << 16)

/* Why a packet was dropped. Index of reason_counters; names in
 * agent/classify/decision.cpp (xdpguard::drop_reason_name). */
enum xdpg_drop_reason {
	XDPG_REASON_NONE = 0,            /* passed */
	XDPG_DROP_NO_RULE = 1,           /* no rule covers this protocol/port/ethertype */
	XDPG_DROP_PEER_NOT_IN_SET = 2,   /* a rule covers the port, the source is not in its peer set */
	XDPG_DROP_MALFORMED = 3,         /* truncated or inconsistent header */
	XDPG_DROP_FRAGMENT_ORPHAN = 4,   /* non-first fragment whose first fragment was not seen */
	XDPG_DROP_BAD_TCP_FLAGS = 5,     /* SYN+FIN, SYN+RST, no flags, FIN+PSH+URG */
	XDPG_DROP_EXT_HDR_LIMIT = 6,     /* IPv6 extension header chain longer than XDPG_MAX_EXT_HDRS */
	XDPG_DROP_REASON_COUNT = 7,
};

/* LPM trie keys: prefixlen first, as the kernel requires. */
struct xdpg_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4]; /* network order */
};

struct xdpg_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16]; /* network order */
};
/* LPM value: __u64 mask of rules whose peer set contains the prefix. The
 * compiler folds the masks of covering (shorter) prefixes into every longer
 * one, so the single longest match carries every set the address is in. */

/* rule_counters: PERCPU_ARRAY[XDPG_MAX_RULES]. */
struct xdpg_rule_counters {
	__u64 pass_packets;
	__u64 pass_bytes;
	__u64 drop_packets; /* dropped and attributed to this rule */
	__u64 drop_bytes;
};

/* reason_counters: PERCPU_ARRAY[XDPG_DROP_REASON_COUNT]; index 0 unused. */
struct xdpg_reason_counters {
	__u64 packets;
	__u64 bytes;
};

/* frags: LRU_HASH. Non-first fragments carry no ports; they take the
 * decision recorded for the first fragment of the same datagram. */
struct xdpg_frag_key {
	__u8 family; /* 4 or 6 */
	__u8 protocol;
	__u16 pad;
	__u32 id;        /* IPv4: 16-bit id zero-extended; IPv6: fragment header id (network order) */
	__u8 saddr[16];  /* IPv4 uses the first 4 bytes, the rest zero */
	__u8 daddr[16];
};

struct xdpg_frag_value {
	__u64 seen_ns;   /* bpf_ktime_get_ns() when the first fragment passed */
	__u32 rule;      /* XDPG_NO_RULE when not attributed */
	__u8 verdict;    /* XDP_PASS or XDP_DROP */
	__u8 reason;     /* enum xdpg_drop_reason */
	__u16 pad;
};
#define XDPG_FRAG_ENTRIES 8192

/* rule_meta: ARRAY[XDPG_MAX_RULES], written by the agent only, so that
 * `xdpguard stats` can name rules from the pins alone. */
#define XDPG_RULE_ID_LEN 48
#define XDPG_RULE_ROW_LEN 208
struct xdpg_rule_meta {
	char id[XDPG_RULE_ID_LEN];   /* NUL-terminated */
	char row[XDPG_RULE_ROW_LEN]; /* vendor table row, NUL-terminated, may be truncated */
};

/* info: ARRAY[1], written by the agent. */
struct xdpg_info {
	__u32 layout_version; /* XDPG_LAYOUT_VERSION of the agent that filled the maps */
	__u32 rule_count;
	__u64 policy_hash;    /* FNV-1a of the policy text, to tell what is loaded */
	char policy_name[64];
	char profile[32];
};

#endif /* XDPGUARD_MAPS_H */
