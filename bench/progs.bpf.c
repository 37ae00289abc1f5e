/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Baselines for the benchmark (bench/), not part of xdpguard:
 *   bench_drop  the floor of the XDP hook: drop without looking at the packet;
 *   bench_pass  lets a veth receiver hand frames to the stack (nftables,
 *               iptables), since veth only accepts XDP frames when its peer
 *               runs an XDP program;
 *   bench_tx    the live-frames generator: run with BPF_F_TEST_XDP_LIVE_FRAMES,
 *               XDP_TX sends the test frame out of the generator's interface.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdpguard/maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

/*
 * Probes for the cost note: what a tracked reply adds to an allowed packet,
 * each part alone. bench_ktime / bench_ktime_coarse read one clock once;
 * bench_flow_lookup looks up a fixed key in an LRU hash shaped like
 * xdpguard's flow table and sets REPLIED as a reply does (a write only when
 * the bit is missing, as the datapath does); bench_flow_lookup16 does the
 * same in one shaped like flows_v4 (16-byte key), to price the key size.
 * The agent fills the keys' entries first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FLOW_ENTRIES);
	__type(key, struct xdpg_flow_key);
	__type(value, struct xdpg_flow_value);
} probe_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XDPG_FLOW_ENTRIES);
	__type(key, struct xdpg_flow_v4_key);
	__type(value, struct xdpg_flow_value);
} probe_flows16 SEC(".maps");

SEC("xdp")
int bench_ktime(struct xdp_md *ctx)
{
	return bpf_ktime_get_ns() ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int bench_ktime_coarse(struct xdp_md *ctx)
{
	return bpf_ktime_get_coarse_ns() ? XDP_DROP : XDP_PASS;
}

static __always_inline int bench_replied(struct xdpg_flow_value *v)
{
	if (!v)
		return XDP_PASS;
	if (!(v->flags & XDPG_FLOW_REPLIED))
		v->flags |= XDPG_FLOW_REPLIED;
	return XDP_DROP;
}

SEC("xdp")
int bench_flow_lookup(struct xdp_md *ctx)
{
	struct xdpg_flow_key k = {.family = 4, .protocol = 6, .local_port = 40001, .remote_port = 443};

	k.local_addr[0] = 198;
	k.remote_addr[0] = 203;
	return bench_replied(bpf_map_lookup_elem(&probe_flows, &k));
}

SEC("xdp")
int bench_flow_lookup16(struct xdp_md *ctx)
{
	struct xdpg_flow_v4_key k = {.local_port = 40001, .remote_port = 443, .protocol = 6};

	k.local_addr[0] = 198;
	k.remote_addr[0] = 203;
	return bench_replied(bpf_map_lookup_elem(&probe_flows16, &k));
}
