/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The user's filter expression (pktstat-bpf -i eth0 'udp and dst port 53'),
 * tested on the parsed flow key before anything is counted. Go compiles the
 * expression (internal/filter) and puts the instructions in place of each
 * call of pktstat_filter before loading: docs/bpf.md#filters. A packet that
 * does not match touches no flow table or cache; it is counted in filtered,
 * which drains like the untracked counters.
 */
#pragma once

#include "account.h"

/*
 * Set by Go when a filter is in use. Without one, the verifier drops the
 * call and the stub with it: no filter costs nothing.
 */
volatile const _Bool filter_on = 0;

/*
 * What the filter dropped, per CPU, in two generations like the untracked
 * counters: entry untracked_gen & 1. Go reads and clears the generation a
 * drain switched away from, after the drain's grace period.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct flow_val);
} filtered SEC(".maps");

/*
 * The stub whose calls Go replaces with the filter: 1 keeps the packet, 0
 * drops it. A function clang never inlines, so that each call is one
 * instruction with a fixed convention (key in R1, verdict in R0, R1-R5
 * clobbered) that Go can find and splice the filter into; the empty asm
 * takes the key's address, so clang neither folds the result nor passes
 * the key's fields by value.
 */
static __noinline int pktstat_filter(const struct flow_key *key)
{
	asm volatile("" : : "r"(key) : "memory");
	return key->flags != 0xff;
}

/*
 * Whether the filter drops a packet of packets wire packets and bytes
 * bytes with this key; a dropped packet is counted in filtered.
 */
static __always_inline _Bool filter_drop(const struct flow_key *key, __u64 packets, __u64 bytes)
{
	if (!filter_on || pktstat_filter(key))
		return 0;
	__u32 gen = untracked_gen & 1;
	struct flow_val *f = bpf_map_lookup_elem(&filtered, &gen);
	if (f)
		counter_add(f, packets, bytes);
	return 1;
}
