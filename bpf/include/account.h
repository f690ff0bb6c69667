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
 * Each object names its flow table's key type before including this
 * header: struct flow_key (TC, XDP) or struct owned_flow_key (cgroup,
 * process).
 */
#ifndef PKTSTAT_ROW_KEY
#error "define PKTSTAT_ROW_KEY, the flow table's key type, before including account.h"
#endif

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
 * The flow table as an open-addressing array (BPF_MAP_TYPE_ARRAY with
 * BPF_F_MMAPABLE), which Go reads through a memory mapping, without a
 * system call per row. Go sets these at load time; array_slots 0 keeps the
 * hash table above, for kernels without BPF atomics (before 5.12). Why
 * and how: docs/bpf.md#the-array-flow-table.
 */
volatile const __u32 array_slots = 0; /* slots flows can take: a power of 2 */
volatile const __u32 array_base = 0;  /* the first of them; the ones before hold reservations */
volatile const __u32 array_rows = 0;  /* the most rows the table gives out: --max-entries */

/*
 * A slot is a state word, the key, and a struct flow_val. The state is 0
 * while the slot is free; a CPU claims it by swapping in the key's tag (32
 * bits of its hash, never 0), writes the key and counters, and then sets
 * FLOW_SLOT_READY. A key's slot is the first ready one with its tag and
 * key on its probe path: its home slot, then 1, 2, 3, ... slots further
 * each time (which visits every slot of a power-of-2 table), at most
 * FLOW_PROBES slots. Two CPUs that bring one new flow at the same moment
 * may each claim a slot for it, since a slot not yet ready cannot be
 * compared: Go adds such duplicates into one row. Nothing is removed while
 * the table is in use, so a ready slot's key never changes; a drain reads
 * the retired table and frees its slots after the grace period.
 */
#define FLOW_PROBES 32
#define FLOW_SLOT_READY (1ULL << 63)

/* A slot's key, at 8 bytes from its start. */
static __always_inline void *slot_key(__u64 *slot) { return slot + 1; }

/* A slot's counters, after its key of ksize bytes. */
static __always_inline struct flow_val *slot_val(__u64 *slot, __u32 ksize)
{
	return (void *)(slot + 1) + ksize;
}

/* Compares ksize bytes, a multiple of 8, in 64-bit words, with one branch. */
static __always_inline int words_eq(const void *a, const void *b, __u32 ksize)
{
	const __u64 *x = a, *y = b;
	__u64 diff = 0;

	for (int i = 0; i < ksize / 8; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/*
 * Takes one row of the table's array_rows for a new flow. Slot 0's state
 * word counts the rows given out; each CPU takes them in small batches,
 * kept in its own slot (1 + its number), so that CPUs bringing new flows
 * at once rarely write one word. A batch is at most 64 rows and at most a
 * share of what is left, so that the last rows go one at a time and the
 * table gives out exactly array_rows. Returns 0 when none is left.
 *
 * A CPU's own count is changed with atomics too: a program may be
 * preempted by another on the same CPU (programs that run in a task's
 * context, cgroup and tracing ones, have migration disabled, not
 * preemption, on preemptible kernels; and an interrupt's program may
 * nest in a task's), and a plain decrement could then give one row twice.
 */
static __always_inline int take_row(void *table)
{
	__u32 cpus = array_base - 1;
	__u32 at = 1 + bpf_get_smp_processor_id();
	if (at >= array_base)
		return 0;
	__u64 *left = bpf_map_lookup_elem(table, &at);
	if (!left)
		return 0;
	__u64 n = *(volatile __u64 *)left;
	/* A failed exchange means another program took one meanwhile: take a batch. */
	if (n && __sync_val_compare_and_swap(left, n, n - 1) == n)
		return 1;
	__u32 zero = 0;
	__u64 *given = bpf_map_lookup_elem(table, &zero);
	if (!given)
		return 0;
	__u64 seen = *(volatile __u64 *)given;
	if (seen >= array_rows)
		return 0;
	__u64 batch = (array_rows - seen) / (2 * cpus);
	if (batch > 64)
		batch = 64;
	if (batch < 1)
		batch = 1;
	__u64 old = __sync_fetch_and_add(given, batch);
	if (old >= array_rows)
		return 0;
	if (old + batch > array_rows)
		batch = array_rows - old;
	if (batch > 1)
		__sync_fetch_and_add(left, batch - 1);
	return 1;
}

/* Gives back a row that take_row gave this CPU and a claim did not use. */
static __always_inline void put_row(void *table)
{
	__u32 at = 1 + bpf_get_smp_processor_id();
	__u64 *left = bpf_map_lookup_elem(table, &at);
	if (left)
		__sync_fetch_and_add(left, 1);
}

/*
 * Adds counts to key's slot in the array table, claiming a free slot for
 * a new key; verdict is the application protocol these counts saw.
 * Returns 0 when the key had no slot and could not claim one: the table
 * gave out all its rows, or no slot on the key's probe path was free.
 */
static __always_inline int array_add(void *table, const void *key, __u32 ksize, __u64 packets, __u64 bytes,
				     enum l7_proto verdict)
{
	__u32 tag = (__u32)(key_hash(key) >> 32) | 1;
	/* The home slot: the tag scaled to the table, a multiply, not a modulo. */
	__u32 pos = ((__u64)tag * array_slots) >> 32;
	int have_row = 0;

	for (int i = 0; i < FLOW_PROBES; i++) {
		pos = (pos + i) & (array_slots - 1);
		__u32 idx = array_base + pos;
		__u64 *slot = bpf_map_lookup_elem(table, &idx);
		if (!slot)
			break;
		__u64 state = *(volatile __u64 *)slot;
		if (state == 0) {
			if (!have_row && !take_row(table))
				return 0;
			have_row = 1;
			state = __sync_val_compare_and_swap(slot, 0, tag);
			if (state == 0) {
				__u64 *dst = slot_key(slot);
				const __u64 *src = key;
				for (int w = 0; w < ksize / 8; w++)
					dst[w] = src[w];
				struct flow_val *val = slot_val(slot, ksize);
				val->packets = packets;
				val->bytes = bytes;
				val->l7 = verdict;
				/* Publishes the key: an atomic with a full barrier. */
				__sync_val_compare_and_swap(slot, tag, tag | FLOW_SLOT_READY);
				return 1;
			}
		}
		if (state == (tag | FLOW_SLOT_READY) && words_eq(slot_key(slot), key, ksize)) {
			struct flow_val *val = slot_val(slot, ksize);
			flow_add(val, packets, bytes);
			if (val->l7 == L7_UNCHECKED || (val->l7 == L7_NONE && verdict > L7_NONE))
				val->l7 = verdict;
			if (have_row)
				put_row(table);
			return 1;
		}
	}
	if (have_row)
		put_row(table);
	return 0;
}

/*
 * array_add on the flow table in the slot flow_tables, as a global
 * function: the verifier checks its probing loop once, not once for every
 * path of the parser that reaches it (inlined, the loop took TC's
 * programs past the verifier's million instructions). Go takes the
 * function and its calls out of the programs for a hash table, so that
 * kernels without BPF atomics or pointer arguments to global functions
 * (before 5.12) never see it. PKTSTAT_FLOW_TABLE defines it.
 */
int pktstat_table_add(const PKTSTAT_ROW_KEY *key, __u64 packets, __u64 bytes, __u32 verdict);

/* Counts traffic that found no row as untracked, in the current generation. */
static __always_inline void account_untracked(const struct flow_key *fk, __u64 packets, __u64 bytes)
{
	__u32 gen = untracked_gen & 1;
	__u32 idx = gen * FLOW_DIR_MAX + fk->dir;
	struct flow_val *lost = bpf_map_lookup_elem(&untracked, &idx);
	if (lost)
		counter_add(lost, packets, bytes);
	hll_add(gen, fk);
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
	account_untracked(key, init->packets, init->bytes);
}

/*
 * Adds one observation to the flow table that slot[0] points at: one lookup
 * for a known flow. key is a struct flow_key, or a wider key that starts
 * with one (owner.h adds the socket's owner), of ksize bytes; the slot is a
 * parameter so that every key type shares this code. Inlined, slot is a
 * constant map.
 */
static __always_inline void account_key(void *slot, const void *key, __u32 ksize, __u64 packets, __u64 bytes)
{
	if (array_slots) {
		if (!pktstat_table_add(key, packets, bytes, L7_UNCHECKED))
			account_untracked(key, packets, bytes);
		return;
	}
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

/* account_key for a key of any type: its size comes from the pointer. */
#define account_in(slot, key, packets, bytes) account_key(slot, key, sizeof(*(key)), packets, bytes)

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
	};                                               \
	_Static_assert(__builtin_types_compatible_p(K, PKTSTAT_ROW_KEY), "the table's key is PKTSTAT_ROW_KEY"); \
	__noinline int pktstat_table_add(const K *key, __u64 packets, __u64 bytes, __u32 verdict) \
	{                                                \
		__u32 zero = 0;                          \
		void *table = bpf_map_lookup_elem(&flow_tables, &zero); \
		if (!key || !table)                      \
			return 0;                        \
		return array_add(table, key, sizeof(*key), packets, bytes, verdict); \
	}
