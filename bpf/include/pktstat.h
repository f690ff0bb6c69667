/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Types and maps shared by every pktstat-bpf hook. Go reads these structs
 * through bpf2go -type, so every field is naturally aligned and every gap is
 * an explicit, zeroed padding field: the key is hashed as raw bytes.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * flow_key.flags: facts about a frame that change what its row means. The
 * fixed underlying type puts the enum into the key's BTF, so bpf2go emits
 * these constants for Go and nothing is kept in sync by hand.
 */
enum flow_flags : __u8 {
	/* A non-first IP fragment: it carries no L4 header, so no ports. */
	FLOW_F_FRAGMENT = 1 << 0,
	/* A header was cut short or declared an impossible length. */
	FLOW_F_MALFORMED = 1 << 1,
	/* The IPv6 extension-header chain was deeper than the parser follows. */
	FLOW_F_DEEP_CHAIN = 1 << 2,
};

/* Which way a packet went through the hook. */
enum flow_dir : __u8 {
	FLOW_DIR_IN = 0,  /* ingress: received by the watched interface or cgroup */
	FLOW_DIR_OUT = 1, /* egress: sent by it */
	FLOW_DIR_MAX = 2,
};

/*
 * One row of the report. IPv4 addresses sit in the first four bytes of
 * saddr/daddr and the rest is zero; eth_proto tells the family apart. ARP
 * rows hold the sender and target protocol addresses there, as IPv4.
 *
 * sport and dport hold each protocol's own fields (parse_l4, parse_arp):
 * TCP, UDP, SCTP ports; ICMP type and code; the ESP or AH SPI, high half
 * first; GRE's protocol type and flags; OSPF's type and version; IGMP's
 * type; ARP's opcode. The key keeps its size that way: one hash, one
 * compare, whatever the protocol.
 */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;     /* source port, or the protocol's first field */
	__u16 dport;     /* destination port, or the protocol's second field */
	__u16 eth_proto; /* EtherType in host order (0 for 802.3 length frames) */
	__u16 vlan;      /* outer VLAN ID, 0 when untagged */
	__u8 proto;      /* IP protocol number, 0 for non-IP frames */
	enum flow_flags flags;
	enum flow_dir dir;
	__u8 _pad;
};

/*
 * The application protocol of a flow, found in its payload (bpf/include/l7.h)
 * rather than guessed from its ports. The fixed underlying type puts the
 * enum into flow_val's BTF, so bpf2go emits these constants for Go.
 */
enum l7_proto : __u8 {
	L7_UNCHECKED = 0,  /* no payload seen yet on this CPU: detection pending */
	L7_NONE = 1,       /* checked, nothing recognised (or nothing to check) */
	L7_HTTP = 2,       /* HTTP/1.x request or response */
	L7_HTTP2 = 3,      /* HTTP/2 cleartext: client preface, or the server's SETTINGS */
	L7_TLS = 4,        /* TLS handshake record: ClientHello or ServerHello */
	L7_DTLS = 5,       /* DTLS handshake record */
	L7_QUIC = 6,       /* QUIC v1 or v2 long header */
	L7_SSH = 7,        /* SSH identification string */
	L7_RDP = 8,        /* RDP: TPKT + X.224 connection request or confirm */
	L7_POSTGRES = 9,   /* PostgreSQL startup, SSL or GSS encryption request */
	L7_MQTT = 10,      /* MQTT CONNECT or CONNACK */
	L7_WIREGUARD = 11, /* WireGuard handshake or transport message */
	L7_MEMCACHED = 12, /* memcached binary protocol request or response */
	L7_DNS = 13,       /* DNS over UDP, or over TCP with its length prefix */
	L7_MAX,
};

/*
 * Per-CPU counters of one flow, and what its payload said. Each CPU's slot
 * runs detection once, on the first packet with payload that this CPU
 * counts; Go merges the slots by taking a recognised protocol.
 */
struct flow_val {
	__u64 packets; /* wire packets: a GSO/GRO skb counts as its segments */
	__u64 bytes;   /* wire bytes, see the README's accounting table */
	enum l7_proto l7;
	__u8 _pad[7];
};

/*
 * Traffic that was seen but could not get a row because the flow table was
 * full, by direction, so that the totals stay exact. Like the sketch below,
 * it comes in two generations: entry untracked_gen * FLOW_DIR_MAX + dir.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * FLOW_DIR_MAX);
	__type(key, __u32);
	__type(value, struct flow_val);
} untracked SEC(".maps");

/*
 * A HyperLogLog sketch of the distinct flows counted in untracked, so that a
 * report can say how many flows had no row of their own. Go merges the
 * per-CPU copies and estimates (internal/flow/hll.go mirrors this code).
 *
 * The untracked counters and sketches come in two generations: the
 * programs add to the one untracked_gen names, and a drain flips it before
 * it swaps the flow tables. The swap returns after an RCU grace period,
 * when no program can still be adding to the other generation, which Go
 * then reads and clears. So each drain's untracked packets and its estimate
 * of their flows cover the same packets, and every packet and every flow is
 * in exactly one drain.
 */
#define HLL_BITS 10
#define HLL_REGISTERS (1 << HLL_BITS)

struct hll {
	__u8 reg[HLL_REGISTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hll);
} untracked_hll SEC(".maps");

volatile __u32 untracked_gen;

/* Hashes the key's eleven 32-bit words; flow.KeyHash is the same function. */
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

/* Adds to a flow's per-CPU slot; no other CPU writes it, so no atomics. */
static __always_inline void flow_add(struct flow_val *val, __u64 packets, __u64 bytes)
{
	val->packets += packets;
	val->bytes += bytes;
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
		flow_add(lost, init->packets, init->bytes);
	hll_add(gen, fk);
}

/*
 * Adds one observation to the flow table that slot[0] points at: one lookup
 * for a known flow. key is a struct flow_key, or a wider key that starts
 * with one (cgroup mode adds the socket's owner); the slot is a parameter so
 * that such a mode shares this code. Inlined, slot is a constant map.
 *
 * Why a slot: Go drains the table by putting a spare table into the slot.
 * That update returns only after every program that could still hold the
 * old table has finished (the kernel waits for an RCU grace period on
 * map-in-map updates), so the retired table can be read and emptied without
 * losing a single count.
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
 * "flow_tables" that points at it. Go sizes both from --max-entries.
 */
#define PKTSTAT_FLOW_TABLE(K)                            \
	struct flow_table {                              \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);  \
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

/*
 * An object whose rows need a wider key defines PKTSTAT_OWN_FLOW_TABLE
 * before including this header and declares its table with
 * PKTSTAT_FLOW_TABLE(its key type).
 */
#ifndef PKTSTAT_OWN_FLOW_TABLE
PKTSTAT_FLOW_TABLE(struct flow_key);

/* Adds one observation to the flow table: one lookup for a known flow. */
static __always_inline void account(const struct flow_key *key, __u64 packets, __u64 bytes)
{
	account_in(&flow_tables, key, packets, bytes);
}
#endif
