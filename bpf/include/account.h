/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Counting: adding a packet to its flow's row in the flow table, or, when
 * the table is full, to the untracked counters and sketch. Shared by every
 * hook; account_l7.h adds application protocol detection for TC and XDP.
 * Why a table slot and two untracked generations: docs/bpf.md#draining.
 */
#pragma once

#include "pktstat.h"

/*
 * Traffic that was seen but could not get a row because the flow table was
 * full, by direction, so that the totals stay exact. Two generations:
 * entry untracked_gen * FLOW_DIR_MAX + dir.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * FLOW_DIR_MAX);
	__type(key, __u32);
	__type(value, struct flow_val);
} untracked SEC(".maps");

/* The distinct flows counted in untracked, per generation; Go merges the per-CPU copies. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hll);
} untracked_hll SEC(".maps");

/* The generation the programs add to; a drain flips it. */
volatile __u32 untracked_gen;

/* Hashes the key's twelve 32-bit words; flow.KeyHash is the same function. */
static __always_inline __u64 key_hash(const struct flow_key *key)
{
	const __u32 *w = (const __u32 *)key;
	__u64 h = 0x9E3779B97F4A7C15ULL;

	for (int i = 0; i < sizeof(*key) / sizeof(__u32); i++) {
		h ^= w[i];
		h *= 0xFF51AFD7ED558CCDULL;
		h ^= h >> 33;
	}
	h ^= h >> 33;
	h *= 0xC4CEB9FE1A85EC53ULL;
	h ^= h >> 33;
	return h;
}

/* Adds a key to the sketch: the top bits pick a register, the rank of the first set bit in the rest is kept if larger. */
static __always_inline void hll_add(__u32 gen, const struct flow_key *key)
{
	struct hll *s = bpf_map_lookup_elem(&untracked_hll, &gen);
	if (!s)
		return;

	__u64 h = key_hash(key);
	__u32 idx = (h >> (64 - HLL_BITS)) & (HLL_REGISTERS - 1);
	__u64 rest = (h << HLL_BITS) | (1ULL << (HLL_BITS - 1));
	__u8 rank = 1;
	for (int i = 0; i < 64 - HLL_BITS; i++) {
		if (rest & (1ULL << 63))
			break;
		rank++;
		rest <<= 1;
	}
	if (rank > s->reg[idx])
		s->reg[idx] = rank;
}

/*
 * How the flow table keeps a flow's counters, chosen by Go at load time
 * (internal/flowtable, docs/performance.md#flow-table): 1, one value per
 * flow in a BPF_MAP_TYPE_HASH that every CPU adds to atomically, so that
 * memory and drains do not grow with the CPU count; 0, a value per CPU in
 * a BPF_MAP_TYPE_PERCPU_HASH, which no other CPU writes. The verifier
 * drops the branch the constant rules out.
 */
volatile const __u32 shared_table = 1;

/* Adds to a per-CPU counter: no other CPU writes it, so no atomics. */
static __always_inline void counter_add(struct flow_val *val, __u64 packets, __u64 bytes)
{
	val->packets += packets;
	val->bytes += bytes;
}

/* Adds to a flow's row in the flow table. */
static __always_inline void flow_add(struct flow_val *val, __u64 packets, __u64 bytes)
{
	if (shared_table) {
		__sync_fetch_and_add(&val->packets, packets);
		__sync_fetch_and_add(&val->bytes, bytes);
		return;
	}
	counter_add(val, packets, bytes);
}

/*
 * The slow path of accounting, for a flow that had no entry in flows (NULL
 * when the slot was empty): inserts it with init, adds to the entry that
 * another CPU inserted first, or counts it as untracked when the table is
 * full.
 */
static __always_inline void account_new(void *flows, const void *key, const struct flow_val *init)
{
	if (flows) {
		long err = bpf_map_update_elem(flows, key, init, BPF_NOEXIST);
		if (err == 0)
			return;
		if (err == -17 /* EEXIST: another CPU inserted it first */) {
			struct flow_val *val = bpf_map_lookup_elem(flows, key);
			if (val) {
				flow_add(val, init->packets, init->bytes);
				if (val->l7 == L7_UNCHECKED)
					val->l7 = init->l7;
				return;
			}
		}
	}

	const struct flow_key *fk = key;
	__u32 gen = untracked_gen & 1;
	__u32 idx = gen * FLOW_DIR_MAX + fk->dir;
	struct flow_val *lost = bpf_map_lookup_elem(&untracked, &idx);
	if (lost)
		counter_add(lost, init->packets, init->bytes);
	hll_add(gen, fk);
}

/*
 * Adds one observation to the flow table that slot[0] points at: one lookup
 * for a known flow. key is a struct flow_key, or a wider key that starts
 * with one (owner.h adds the socket's owner); the slot is a parameter so
 * that every key type shares this code. Inlined, slot is a constant map.
 */
static __always_inline void account_in(void *slot, const void *key, __u64 packets, __u64 bytes)
{
	__u32 zero = 0;
	void *flows = bpf_map_lookup_elem(slot, &zero);
	if (flows) {
		struct flow_val *val = bpf_map_lookup_elem(flows, key);
		if (val) {
			flow_add(val, packets, bytes);
			return;
		}
	}
	struct flow_val init = { .packets = packets, .bytes = bytes };
	account_new(flows, key, &init);
}

/*
 * Declares the flow table "flows" with key type K and the slot
 * "flow_tables" that points at it; each object declares its own, once.
 * Go sizes both from --max-entries, and drains the table by putting a
 * spare one into the slot.
 */
#define PKTSTAT_FLOW_TABLE(K)                            \
	struct flow_table {                              \
		__uint(type, BPF_MAP_TYPE_HASH);         \
		__uint(max_entries, 131072);             \
		__type(key, K);                          \
		__type(value, struct flow_val);          \
	} flows SEC(".maps");                            \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); \
		__uint(max_entries, 1);                  \
		__type(key, __u32);                      \
		__array(values, struct flow_table);      \
	} flow_tables SEC(".maps") = {                   \
		.values = { [0] = &flows },              \
	}
