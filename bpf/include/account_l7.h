/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Counting with application protocol detection, for the hooks that see
 * whole frames (TC and XDP): account.h's accounting, with l7.h's verdict
 * stored in the flow's row, behind a small per-CPU flow cache that spares
 * a known flow the flow table's hash lookup. Why and how the cache drains
 * exactly: docs/bpf.md#the-flow-cache.
 */
#pragma once

#include "account.h"
#include "l7.h"

/*
 * Whether account_l7 goes through the flow cache: always in the tool; the
 * tests and benchmarks turn it off to reach the flow table directly.
 */
volatile const _Bool flow_cache_on = 1;

/*
 * The flow cache holds 1 << flow_cache_bits entries per CPU and per
 * generation, from 1 << 8 to 1 << 12. Go sets it before loading, from the
 * CPU count (flowtable.CacheBits: the most that keeps every CPU's cache
 * within a budget), and sizes flow_cache to match.
 */
volatile const __u32 flow_cache_bits = 8;

/*
 * A flow's counts since it took its cache slot, not yet in the flow
 * table. packets == 0 marks a free slot: every packet adds at least one.
 * misses counts the other flows' packets that found the slot taken since
 * this flow's last one.
 */
struct flow_cache_entry {
	struct flow_key key;
	enum l7_proto l7;
	__u8 misses;
	__u8 _pad[6];
	__u64 packets;
	__u64 bytes;
};

/*
 * How many other flows' packets a cached flow lets by, to the flow table,
 * before one of them takes its slot. Flows that share a slot and take
 * turns would otherwise evict each other at every packet, and none would
 * ever be found in the cache: this way the one in the slot keeps it while
 * up to this many others come between two of its packets. A constant that
 * the tests read, and the benchmarks may change.
 */
volatile const __u8 flow_cache_patience = 15;

/*
 * Two generations, like the untracked counters: the programs use the one
 * untracked_gen names, and Go reads and clears the other after a drain's
 * grace period. Only the CPU a copy belongs to writes it. Generation g's
 * slot s is entry g << flow_cache_bits | s of one map: with a map per
 * generation, the compiler made the two lookups one call whose map
 * depended on the branch, and the verifier inlines a lookup only where the
 * map is always the same, so every packet called the lookup through the
 * map's operations (13 ns of the 42 that a known flow cost over the empty
 * program at TC; docs/performance.md).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 << 8); /* Go sets 2 << flow_cache_bits */
	__type(key, __u32);
	__type(value, struct flow_cache_entry);
} flow_cache SEC(".maps");

/*
 * The cache slot of a key: the key's six 64-bit words summed and spread by a
 * Fibonacci multiply, top flow_cache_bits bits. A cheap hash: a collision
 * costs an eviction, never a wrong count, because a hit compares the whole
 * key. flowtable.CacheSlot is the same function.
 */
static __always_inline __u32 flow_cache_slot(const struct flow_key *key)
{
	const __u64 *w = (const __u64 *)key;
	__u64 h = w[0] + w[1] + w[2] + w[3] + w[4] + w[5];

	return (h * 0x9E3779B97F4A7C15ULL) >> (64 - flow_cache_bits);
}
_Static_assert(sizeof(struct flow_key) == 48, "flow_cache_slot and flow_key_eq read 48 bytes");
_Static_assert(sizeof(struct flow_cache_entry) == 72, "flow_cache_entry has no implicit padding");

static __always_inline int flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] && x[5] == y[5];
}

/*
 * Adds counts to a flow's row in the table that slot[0] points at,
 * inserting the row if it has none: the flow table's side of account_l7,
 * and where an evicted cache entry goes. verdict is the flow's protocol as
 * far as these counts saw it; a row that has none yet takes it.
 */
static __always_inline void account_row(void *slot, const struct flow_key *key, __u64 packets, __u64 bytes,
					enum l7_proto verdict)
{
	if (array_slots) {
		if (!pktstat_table_add(key, packets, bytes, verdict))
			account_untracked(key, packets, bytes);
		return;
	}
	__u32 zero = 0;
	void *flows = bpf_map_lookup_elem(slot, &zero);
	if (flows) {
		struct flow_val *val = bpf_map_lookup_elem(flows, key);
		if (val) {
			flow_add(val, packets, bytes);
			if (val->l7 == L7_UNCHECKED || (val->l7 == L7_NONE && verdict > L7_NONE))
				val->l7 = verdict;
			return;
		}
	}
	struct flow_val init = { .packets = packets, .bytes = bytes, .l7 = verdict };
	account_new(flows, key, &init);
}

/*
 * account_in for hooks that detect application protocols. A flow in this
 * CPU's cache costs a key comparison and two additions. Any other flow
 * goes to the flow table, or, once the flow in the slot has let
 * flow_cache_patience others by, takes the slot and sends the one it
 * evicts to the flow table. A flow's protocol is detected on the first
 * packets it brings into the cache or the table.
 */
static __always_inline void account_l7(void *slot, const struct pkt *p, const struct parse_result *r, __u64 packets,
				       __u64 bytes)
{
	__u32 idx = flow_cache_slot(&r->key) | (untracked_gen & 1) << flow_cache_bits;

	if (!flow_cache_on) {
		account_row(slot, &r->key, packets, bytes, l7_verdict(p, r, packets));
		return;
	}
	struct flow_cache_entry *e = bpf_map_lookup_elem(&flow_cache, &idx);
	if (!e) {
		account_row(slot, &r->key, packets, bytes, l7_verdict(p, r, packets));
		return;
	}
	if (e->packets && flow_key_eq(&e->key, &r->key)) {
		e->packets += packets;
		e->bytes += bytes;
		if (e->misses)
			e->misses = 0;
		if (e->l7 == L7_UNCHECKED)
			e->l7 = l7_verdict(p, r, e->packets);
		return;
	}
	if (e->packets) {
		if (e->misses < flow_cache_patience) {
			e->misses++;
			account_row(slot, &r->key, packets, bytes, l7_verdict(p, r, packets));
			return;
		}
		account_row(slot, &e->key, e->packets, e->bytes, e->l7);
	}
	e->misses = 0;
	e->key = r->key;
	e->packets = packets;
	e->bytes = bytes;
	e->l7 = l7_verdict(p, r, packets);
}
