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
volatile const __u32 array_slots = 0; /* index slots: a power of 2 */
volatile const __u32 array_base = 0;  /* the index's first element; the ones before hold reservations */
volatile const __u32 array_rows = 0;  /* the most rows the table gives out: --max-entries */

/*
 * The table has three parts, in elements of one size (a state word, a
 * key and a struct flow_val): the reservations (element 0 counts the rows
 * given out, element 1 + n holds CPU n's batch of them); the index, eight
 * 64-bit slots to an element; and the rows, handed out in order, so that
 * the flows in use sit together however many slots the index has.
 *
 * An index slot is 0 while free, else a key's tag (32 bits of its
 * table_hash, never 0), its row's number from bit 32, and FLOW_SLOT_READY
 * once the row holds the key. A CPU claims a free slot by swapping in the
 * tag and a row it took, writes the row, and then sets FLOW_SLOT_READY. A
 * row's state word is its tag, from bit 32 its index slot, and
 * FLOW_ROW_CROWDED when its CPU passed a slot of its tag not yet ready on
 * the way: Go finds them there when it reads the rows. A key's slot is
 * the first ready one with its tag, whose row has its key, on its probe
 * path: its home slot, then 1, 2, 3, ... slots further each time (which
 * visits every slot of a power-of-2 index), at most FLOW_PROBES slots.
 * Two CPUs that bring one new flow at the same moment may each claim a
 * slot for it, since a slot not yet ready cannot be compared: Go adds
 * such duplicates into one row, and looks for them only among crowded
 * rows, since the later copy of a flow passed the earlier one's slot
 * before it was ready. Nothing is removed while the table is in use, so a
 * ready slot's row never changes its key; a drain reads the retired table
 * and frees its slots and rows after the grace period.
 */
#define FLOW_PROBES 32
#define FLOW_SLOT_READY (1ULL << 63)
#define FLOW_ROW_CROWDED (1ULL << 63)
#define FLOW_SLOT_ROW(s) (((s) >> 32) & 0x7FFFFFFF) /* an index slot's row */
#define FLOW_INDEX_SLOTS 8 /* index slots to an element */

/*
 * The array table's hash of a key, from its first 48 bytes (a struct
 * flow_key): each 64-bit word times an odd constant of its own, summed,
 * then mixed. key_hash's twelve rounds depend each on the last; these
 * multiplies do not, and take a third of the time on a packet that
 * reaches the table. Keys that differ in one word differ before the
 * mixing, which loses nothing. flowtable.tableHash is the same function.
 */
static __always_inline __u64 table_hash(const void *key)
{
	const __u64 *w = key;
	__u64 h = w[0] * 0x9E3779B97F4A7C15ULL + w[1] * 0xC2B2AE3D27D4EB4FULL + w[2] * 0x165667B19E3779F9ULL +
		  w[3] * 0xD6E8FEB86659FD93ULL + w[4] * 0xFF51AFD7ED558CCDULL + w[5] * 0xC4CEB9FE1A85EC53ULL;

	h ^= h >> 32;
	h *= 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	return h;
}
_Static_assert(sizeof(struct flow_key) == 48, "table_hash reads 48 bytes");

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

/* A CPU's batch of rows: the row after its last in the high half, how many are left in the low. */
#define ROWS_LEFT(b) ((b) & 0xFFFFFFFF)
#define ROWS_NEXT(b) (((b) >> 32) - ROWS_LEFT(b))

/*
 * Takes one of the table's array_rows rows for a new flow, and returns
 * its number, or -1 when none is left. Element 0's state word counts the
 * rows given out; each CPU takes them in small batches of consecutive
 * rows, kept in its own element (1 + its number), so that CPUs bringing
 * new flows at once rarely write one word. A batch is at most 64 rows and
 * at most a share of what is left, so that the last rows go one at a time
 * and the table gives out exactly array_rows.
 *
 * A CPU's own batch is changed with atomics too: a program may be
 * preempted by another on the same CPU (programs that run in a task's
 * context, cgroup and tracing ones, have migration disabled, not
 * preemption, on preemptible kernels; and an interrupt's program may nest
 * in a task's), and a plain write could then give one row twice. When the
 * nested program took a batch of its own meanwhile, the rest of the outer
 * one's stays unused until the drain.
 */
static __always_inline long take_row(void *table)
{
	__u32 cpus = array_base - 1;
	__u32 at = 1 + bpf_get_smp_processor_id();
	if (at >= array_base)
		return -1;
	__u64 *mine = bpf_map_lookup_elem(table, &at);
	if (!mine)
		return -1;
	__u64 b = *(volatile __u64 *)mine;
	/* A failed exchange means another program took one meanwhile: take a batch. */
	if (ROWS_LEFT(b) && __sync_val_compare_and_swap(mine, b, b - 1) == b)
		return ROWS_NEXT(b);
	__u32 zero = 0;
	__u64 *given = bpf_map_lookup_elem(table, &zero);
	if (!given)
		return -1;
	__u64 seen = *(volatile __u64 *)given;
	if (seen >= array_rows)
		return -1;
	__u64 batch = (array_rows - seen) / (2 * cpus);
	if (batch > 64)
		batch = 64;
	if (batch < 1)
		batch = 1;
	__u64 old = __sync_fetch_and_add(given, batch);
	if (old >= array_rows)
		return -1;
	if (old + batch > array_rows)
		batch = array_rows - old;
	/* Rows old + 1 to old + batch - 1 become this CPU's batch, if it has none left. */
	b = *(volatile __u64 *)mine;
	if (batch > 1 && ROWS_LEFT(b) == 0)
		__sync_val_compare_and_swap(mine, b, (old + batch) << 32 | (batch - 1));
	return old;
}

/*
 * Gives back row, which take_row gave this CPU and a claim did not use,
 * if it is still the one before the batch's next.
 */
static __always_inline void put_row(void *table, __u64 row)
{
	__u32 at = 1 + bpf_get_smp_processor_id();
	__u64 *mine = bpf_map_lookup_elem(table, &at);
	if (!mine)
		return;
	__u64 b = *(volatile __u64 *)mine;
	if (ROWS_NEXT(b) == row + 1)
		__sync_val_compare_and_swap(mine, b, b + 1);
}

/*
 * Adds counts to key's row in the array table, claiming an index slot and
 * a row for a new key; verdict is the application protocol these counts
 * saw. Returns 0 when the key had no row and could not claim one: the
 * table gave out all its rows, or no slot on the key's probe path was
 * free.
 */
static __always_inline int array_add(void *table, const void *key, __u32 ksize, __u64 packets, __u64 bytes,
				     enum l7_proto verdict)
{
	__u32 tag = (__u32)(table_hash(key) >> 32) | 1;
	/* The home slot: the tag scaled to the index, a multiply, not a modulo. */
	__u32 pos = ((__u64)tag * array_slots) >> 32;
	__u32 rows_at = array_base + (array_slots + FLOW_INDEX_SLOTS - 1) / FLOW_INDEX_SLOTS;
	long row = -1;
	__u64 crowded = 0;

	for (int i = 0; i < FLOW_PROBES; i++) {
		pos = (pos + i) & (array_slots - 1);
		__u32 idx = array_base + pos / FLOW_INDEX_SLOTS;
		__u64 *slots = bpf_map_lookup_elem(table, &idx);
		if (!slots)
			break;
		__u64 *slot = slots + (pos & (FLOW_INDEX_SLOTS - 1));
		__u64 state = *(volatile __u64 *)slot;
		if (state == 0) {
			if (row < 0 && (row = take_row(table)) < 0)
				return 0;
			__u64 claim = (__u64)row << 32 | tag;
			state = __sync_val_compare_and_swap(slot, 0, claim);
			if (state == 0) {
				idx = rows_at + row;
				__u64 *r = bpf_map_lookup_elem(table, &idx);
				if (!r)
					return 0; /* unreachable: take_row gives rows below array_rows */
				__u64 *dst = slot_key(r);
				const __u64 *src = key;
				for (int w = 0; w < ksize / 8; w++)
					dst[w] = src[w];
				struct flow_val *val = slot_val(r, ksize);
				val->packets = packets;
				val->bytes = bytes;
				val->l7 = verdict;
				r[0] = crowded | (__u64)pos << 32 | tag;
				/* Publishes the row: an atomic with a full barrier. */
				__sync_val_compare_and_swap(slot, claim, claim | FLOW_SLOT_READY);
				return 1;
			}
		}
		if ((__u32)state != tag)
			continue;
		if (!(state & FLOW_SLOT_READY)) {
			crowded = FLOW_ROW_CROWDED;
			continue;
		}
		idx = rows_at + FLOW_SLOT_ROW(state);
		__u64 *r = bpf_map_lookup_elem(table, &idx);
		if (r && words_eq(slot_key(r), key, ksize)) {
			struct flow_val *val = slot_val(r, ksize);
			flow_add(val, packets, bytes);
			if (val->l7 == L7_UNCHECKED || (val->l7 == L7_NONE && verdict > L7_NONE))
				val->l7 = verdict;
			if (row >= 0)
				put_row(table, row);
			return 1;
		}
	}
	if (row >= 0)
		put_row(table, row);
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
