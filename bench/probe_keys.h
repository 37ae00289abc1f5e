/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Keys of the benchmark's probe maps (bench/progs.bpf.c), shared with the
 * C++ side that fills them (bench/cost.cpp). */
#ifndef XDPGUARD_BENCH_PROBE_KEYS_H
#define XDPGUARD_BENCH_PROBE_KEYS_H

#include <linux/types.h>

/* An IPv4-only flow key: the tuple of xdpg_flow_key in 16 bytes, not 40. */
struct bench_flow_key16 {
	__u8 local_addr[4];
	__u8 remote_addr[4];
	__u16 local_port;
	__u16 remote_port;
	__u8 protocol;
	__u8 pad[3];
};

#endif
