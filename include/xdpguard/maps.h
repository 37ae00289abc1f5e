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
 *                (one hash probe per distinct prefix length, longest first)
 *   rule       = lowest set bit of (candidates & members)   -> pass, count on rule
 *   otherwise  = lowest set bit of candidates               -> drop PEER_NOT_IN_SET
 *   no candidates                                            -> drop NO_RULE
 * Two lookups and a count-trailing-zeros: the cost does not grow with the
 * number of rules. A bit position is a rule index, in policy order, so the
 * lowest bit is the first rule of the policy that matches. With flow tracking
 * (egress_mode != off), a REMOTE-kind hit also needs a tracked flow, and the
 * TC egress program (xdpguard_egress) decides outbound packets the same way
 * on the destination; docs/datapath.md sections 5 and 8.
 *
 * Byte order: every address is in network order (as on the wire); ports,
 * ICMP types and ethertypes used as array indices are in host order.
 */
#ifndef XDPGUARD_MAPS_H
#define XDPGUARD_MAPS_H

#include <linux/types.h>

/* Bumped whenever a map below changes shape; pinned maps carry it in
 * xdpg_info so an agent never mixes generations. */
#define XDPG_LAYOUT_VERSION 7

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
	XDPG_KIND_ETHERTYPE = 6,  /* non-IP frames by (innermost) ethertype, both directions */
	/* Egress only: ICMP types the host may send, by type; the compiler derives
	 * them from the inbound types of icmp/icmpv6 rules (docs/datapath.md 9). */
	XDPG_KIND_ICMP_OUT = 7,
	XDPG_KIND_ICMPV6_OUT = 8,
	XDPG_KIND_COUNT = 9,
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
	XDPG_DROP_NO_FLOW = 7,           /* ingress: "reply" from a remote port with no tracked flow */
	XDPG_DROP_RECEIVE_ONLY = 8,      /* egress: sent from a local port whose rules are receive-only */
	XDPG_DROP_REASON_COUNT = 9,
};
/* reason_counters / rule_counters count ingress; egress_reason_counters /
 * egress_rule_counters count egress with the same layout and reasons. */

/* rodata egress_mode, read by both programs. */
enum xdpg_egress_mode {
	XDPG_EGRESS_OFF = 0,     /* no flow tracking; ingress admits REMOTE kinds statelessly */
	XDPG_EGRESS_TRACK = 1,   /* egress records flows and counts, never drops */
	XDPG_EGRESS_ENFORCE = 2, /* egress drops what no rule allows */
};

/* rodata clock_kind: the clock of flows, fragments and the event bucket
 * (docs/datapath.md 8.3). Both are CLOCK_MONOTONIC; userspace comparing with
 * a datapath time reads the matching clock_gettime clock (xdpg_info.clock). */
enum xdpg_clock {
	XDPG_CLOCK_PRECISE = 0, /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	XDPG_CLOCK_COARSE = 1,  /* bpf_ktime_get_coarse_ns() (5.11+): CLOCK_MONOTONIC_COARSE, one tick */
};

/* Peer sets (docs/datapath.md 5.4). peers_v4 / peers_v6: HASH maps keyed by
 * a prefix length and the address masked to it; the value is the __u64 mask
 * of the rules whose peer set contains that prefix, with the masks of every
 * covering (shorter) prefix folded in, so the longest prefix that matches
 * carries every set the address is in. The datapath probes the lengths
 * present, longest first (rodata peer_v4_probes / peer_v6_probes); the first
 * hit is the answer. /0 is no entry: its mask is rodata peer_v4_default /
 * peer_v6_default, the answer when no probe hits. The cost is at most one
 * hash lookup per distinct prefix length, whatever the number of prefixes. */
struct xdpg_peer_v4_key {
	__u32 prefixlen;
	__u8 addr[4]; /* network order, bits past prefixlen zero */
};

struct xdpg_peer_v6_key {
	__u32 prefixlen;
	__u8 addr[16]; /* network order, bits past prefixlen zero */
};
/* Rodata probes, one per prefix length present: the datapath builds the key
 * { prefixlen, addr & mask }. mask is the netmask in network order, read as
 * a word of the address. */
#define XDPG_PEER_V4_LENGTHS 32  /* /1 to /32 */
#define XDPG_PEER_V6_LENGTHS 128 /* /1 to /128 */
struct xdpg_peer_v4_probe {
	__u32 prefixlen;
	__u32 mask;
};

struct xdpg_peer_v6_probe {
	__u32 prefixlen;
	__u32 mask[4];
};

/* rule_counters: PERCPU_ARRAY[XDPG_MAX_RULES], indexed by slot (xdpg_info.rule_slot). */
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
	__u8 direction; /* 0 ingress, 1 egress: each program sees its own datagrams */
	__u8 pad;
	__u32 id;        /* IPv4: 16-bit id zero-extended; IPv6: fragment header id (network order) */
	__u8 saddr[16];  /* IPv4 uses the first 4 bytes, the rest zero */
	__u8 daddr[16];
};

struct xdpg_frag_value {
	__u64 seen_ns;   /* datapath clock (enum xdpg_clock) when the first fragment passed */
	__u32 rule;      /* XDPG_NO_RULE when not attributed */
	__u8 verdict;    /* XDP_PASS or XDP_DROP */
	__u8 reason;     /* enum xdpg_drop_reason */
	__u16 pad;
};
#define XDPG_FRAG_ENTRIES 8192

/* flows (IPv6) and flows_v4 (IPv4): LRU_HASH maps shared by both programs
 * (not per-CPU: a flow's egress and ingress packets may run on different
 * CPUs), each of flow_table_size entries. Keyed as the host sees the flow,
 * whichever way the packet goes: egress keys it by (saddr, daddr, sport,
 * dport), ingress by (daddr, saddr, dport, sport). Only flows the host opens
 * under a rule whose initiator is local or both are recorded. IPv4 has its
 * own 16-byte key: hashing and comparing the 40-byte one cost a tracked
 * reply ~15 ns more (bench/RESULTS.md). The agent shows both as
 * xdpg_flow_key (family 4: the first 4 address bytes). */
struct xdpg_flow_v4_key {
	__u8 local_addr[4];  /* network order */
	__u8 remote_addr[4];
	__u16 local_port;    /* host order */
	__u16 remote_port;
	__u8 protocol;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];         /* zero */
};

struct xdpg_flow_key {
	__u8 family;        /* 4 or 6 */
	__u8 protocol;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u16 local_port;   /* host order */
	__u16 remote_port;  /* host order */
	__u16 pad;          /* zero */
	__u8 local_addr[16];  /* network order; IPv4 uses the first 4 bytes, the rest zero */
	__u8 remote_addr[16];
};

/* tcp_state bits: any of them puts the flow on the closing timeout. */
#define XDPG_FLOW_FIN_LOCAL 0x01  /* the host sent a FIN */
#define XDPG_FLOW_FIN_REMOTE 0x02 /* the peer sent a FIN */
#define XDPG_FLOW_RST 0x04        /* either side sent a RST */
/* flags */
#define XDPG_FLOW_REPLIED 0x01    /* at least one reply was admitted */

struct xdpg_flow_value {
	__u64 last_seen_ns; /* datapath clock (enum xdpg_clock) of the last packet either way */
	__u64 created_ns;   /* when egress recorded it */
	__u32 rule;         /* rule index the flow was opened under */
	__u8 tcp_state;     /* XDPG_FLOW_FIN_* / XDPG_FLOW_RST; 0 for UDP */
	__u8 flags;         /* XDPG_FLOW_REPLIED */
	__u16 pad;
};
#define XDPG_FLOW_ENTRIES 65536

/* flow_counters: PERCPU_ARRAY[1]. LRU eviction has no hook on 5.14, so the
 * agent derives it: evictions = inserts - entries in flows and flows_v4 -
 * entries the agent itself deleted. */
struct xdpg_flow_counters {
	__u64 inserts; /* new keys added to flows or flows_v4 by egress */
};

/* rule_flags: ARRAY[XDPG_RULE_FLAG_COUNT] of __u64, written by the agent.
 * Entry f is the mask of rules having property f: the datapath tests a
 * candidate mask against it in one AND instead of walking rules. */
enum xdpg_rule_flag {
	XDPG_RULE_RECEIVE_ONLY = 0, /* flow receive-only: the host sends nothing from its local ports */
	XDPG_RULE_SEND_ONLY = 1,    /* flow send-only (informational: initiator local already says it) */
	XDPG_RULE_LOCAL_INIT = 2,   /* initiator local or both: its remote ports open flows */
	XDPG_RULE_REMOTE_INIT = 3,  /* initiator remote or both: peers open flows to its local ports */
	XDPG_RULE_FLAG_COUNT = 4,
};

/* rule_meta: ARRAY[XDPG_MAX_RULES] indexed by slot (info.rule_slot maps a
 * rule index to its slot), written by the agent only, so that
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
	/* The rodata the programs were loaded with, so that `stats` and `flows`
	 * judge flows with the datapath's own timeouts. */
	__u8 egress_mode;     /* enum xdpg_egress_mode */
	__u8 audit_mode;      /* 1: drops are counted (would-drop) but passed */
	__u8 clock;           /* enum xdpg_clock (0, precise, in pins older than the field) */
	__u8 learn;           /* rodata learn_enabled */
	__u32 flow_table_size; /* max_entries of flows and of flows_v4, each */
	__u64 tcp_established_timeout_ns;
	__u64 tcp_closing_timeout_ns;
	__u64 udp_timeout_ns;
	__u64 frag_timeout_ns;
	/* rule_slot rodata of the programs: rule index (policy order) -> slot
	 * of rule_counters / rule_meta. Stable slots let counters of unchanged
	 * rules survive a reload that reorders rules (agent/kernel/reload.cpp). */
	__u8 rule_slot[XDPG_MAX_RULES];
	__u32 learn_table_size; /* max_entries of learn_peers and of learn_confirmed */
	__u8 xdp_frags;         /* rodata xdp_frags (0, no, in pins older than the field) */
	__u8 pad2[3];
};

/* ---- drop telemetry (agent/telemetry/) ----------------------------------- */

/* events: RINGBUF of struct xdpg_event, one per sampled drop (and would-drop
 * in audit mode or egress track mode), never for a passed packet. */
#define XDPG_EVENTS_BYTES (256 * 1024)
#define XDPG_EVENT_PASSED 0x01 /* would-drop: audit or egress track, the packet went on */

struct xdpg_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;
	__u32 rule;         /* slot (xdpg_info.rule_slot) the drop counts on, XDPG_NO_RULE if none */
	__u32 packet_len;
	__u32 suppressed;   /* drops of this direction+reason not reported on this CPU since its previous event */
	__u16 sport;        /* host order; TCP/UDP, else 0 */
	__u16 dport;
	__u16 ethertype;    /* innermost, host order */
	__u8 direction;     /* 0 ingress, 1 egress */
	__u8 family;        /* 4 or 6; 0 not IP (or unparseable) */
	__u8 protocol;      /* upper-layer protocol after IPv6 extension headers */
	__u8 reason;        /* enum xdpg_drop_reason */
	__u8 tcp_flags;
	__u8 flags;         /* XDPG_EVENT_* */
	__u8 icmp_type;
	__u8 pad[3];
	__u8 saddr[16];     /* network order; IPv4 in the first 4 bytes */
	__u8 daddr[16];
};

/* event_limits: PERCPU_ARRAY[XDPG_EVENT_LIMIT_ENTRIES] indexed by
 * direction * XDPG_DROP_REASON_COUNT + reason. A GCRA token bucket per CPU
 * (lock-free): the rate and burst hold per CPU, so a host emits at most
 * CPUs x (burst + rate x seconds) events per direction and reason. */
#define XDPG_EVENT_LIMIT_ENTRIES (2 * XDPG_DROP_REASON_COUNT)
struct xdpg_event_limit {
	__u64 tat_ns;     /* theoretical arrival time of the next event */
	__u64 emitted;    /* events submitted to the ring buffer */
	__u64 suppressed; /* drops not reported: over the rate, or the ring buffer full */
	__u64 pending;    /* suppressed since the last event on this CPU (goes into it) */
	/* The datapath clock (enum xdpg_clock) costs a helper call, tens of ns
	 * for the precise one on some clocksources: the bucket reads it once
	 * per jiffy and otherwise uses the cached value, which lags by at most
	 * a tick and so only ever makes the limit stricter. */
	__u64 jiffies;
	__u64 now_ns;
	/* Drops of this CPU and reason in the current jiffy: the top lists
	 * count the first XDPG_TOP_EXACT_PER_TICK exactly, then a random one in
	 * XDPG_TOP_SAMPLE with that weight (docs/telemetry.md). */
	__u64 tick_drops;
};
/* Below about 16,000-64,000 drops/s per CPU and reason (HZ 250-1000) the top
 * lists are exact; above, a flood costs each drop a random number, not two
 * map updates (the top_peers hash costs ~20 ns even when it hits). */
#define XDPG_TOP_EXACT_PER_TICK 64
#define XDPG_TOP_SAMPLE 16

/* top_ports: ARRAY[XDPG_TOP_PORT_ENTRIES] of __u64 dropped packets, one
 * per (direction, class, port), atomic adds, BPF_F_MMAPABLE (the agent reads
 * it as memory). Index (direction * XDPG_TOP_CLASS_COUNT + class) << 16 |
 * port; port is the destination port, or the ICMP type. An array, not a
 * hash: every drop counts at the cost of one array access, and the list is
 * exact. IPv4 and IPv6 share a slot. */
enum xdpg_top_class {
	XDPG_TOP_TCP = 0,
	XDPG_TOP_UDP = 1,
	XDPG_TOP_ICMP = 2,
	XDPG_TOP_ICMPV6 = 3,
	XDPG_TOP_CLASS_COUNT = 4,
};
#define XDPG_TOP_PORT_ENTRIES ((2 * XDPG_TOP_CLASS_COUNT) << 16)

/* top_peers: LRU_HASH xdpg_top_peer_key -> __u64 dropped packets (atomic
 * adds), every drop counted; the peer is the remote address (ingress
 * source, egress destination). Bounded: under a flood of new addresses the
 * least recently dropped ones are forgotten. */
struct xdpg_top_peer_key {
	__u8 direction;
	__u8 family;
	__u8 pad[2];
	__u8 addr[16]; /* network order */
};
#define XDPG_TOP_PEER_ENTRIES 16384

/* ---- learning the peer sets (docs/learn.md) ------------------------------ */

/* learn_peers: HASH (BPF_F_NO_PREALLOC: memory grows with what is seen, up
 * to max_entries = settings.learn.entries) of the peers seen per rule while
 * learning (rodata learn_enabled): the source of an admitted inbound packet
 * or the destination of an admitted outbound one, for the rules whose peer
 * set is open (rodata learn_slots), and in audit mode also for the would-drops
 * of peer_not_in_set. When the map is full a new peer is not recorded and
 * learn_overflow[slot] counts it: nothing is lost silently. */
struct xdpg_learn_key {
	__u8 slot;     /* rule slot (xdpg_info.rule_slot), as the counters */
	__u8 family;   /* 4 or 6 */
	__u8 pad[2];   /* zero */
	__u8 addr[16]; /* network order; IPv4 in the first 4 bytes, the rest zero */
};

struct xdpg_learn_value {
	__u64 packets;  /* atomic adds */
	__u64 first_ns; /* datapath clock (enum xdpg_clock) */
	/* Rewritten at most once per XDPG_LEARN_LAST_SEEN_STEP_NS: a write per
	 * packet to a line all CPUs share costs more than the second it saves. */
	__u64 last_ns;
};
#define XDPG_LEARN_LAST_SEEN_STEP_NS 1000000000ULL

/* learn_confirmed: HASH (BPF_F_NO_PREALLOC) of the addresses that proved
 * they receive the host's packets, whichever rule they used; max_entries =
 * settings.learn.entries. Written by the egress program only: what the host
 * itself sends cannot be forged from outside. */
struct xdpg_learn_confirm_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* How the address proved it (bits of xdpg_learn_confirm_value.how). */
#define XDPG_CONFIRM_TCP_ESTABLISHED 0x01 /* the host sent it a TCP segment with ACK and
					   * without SYN or RST: the kernel holds a
					   * connection whose handshake it completed */
#define XDPG_CONFIRM_HOST_OPENED 0x02     /* the host opened a flow to it: passed on a
					   * rule's remote port (TCP or UDP) */

struct xdpg_learn_confirm_value {
	__u64 confirmed_ns; /* datapath clock, first proof */
	__u32 how;          /* XDPG_CONFIRM_* seen so far */
	__u32 pad;
};

/* learn_overflow: PERCPU_ARRAY[XDPG_LEARN_OVERFLOW_ENTRIES] of __u64: index
 * slot = peers of that rule not recorded (learn_peers full); index
 * XDPG_MAX_RULES = confirmations not recorded (learn_confirmed full). */
#define XDPG_LEARN_OVERFLOW_ENTRIES (XDPG_MAX_RULES + 1)
#define XDPG_LEARN_ENTRIES 65536 /* default max_entries of both maps */

#endif /* XDPGUARD_MAPS_H */
