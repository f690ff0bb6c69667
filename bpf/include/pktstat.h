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

/*
 * One row of the report. IPv4 addresses sit in the first four bytes of
 * saddr/daddr and the rest is zero; eth_proto tells the family apart.
 */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;     /* TCP/UDP/SCTP source port; ICMP type */
	__u16 dport;     /* TCP/UDP/SCTP destination port; ICMP code */
	__u16 eth_proto; /* EtherType in host order (0 for 802.3 length frames) */
	__u16 vlan;      /* outer VLAN ID, 0 when untagged */
	__u8 proto;      /* IP protocol number, 0 for non-IP frames */
	enum flow_flags flags;
	__u8 _pad[2];
};

/* Per-CPU counters of one flow. */
struct flow_val {
	__u64 packets; /* wire packets: a GSO/GRO skb counts as its segments */
	__u64 bytes;   /* wire bytes, see the README's accounting table */
};

/*
 * Traffic that was seen but could not get a row because the flow table was
 * full. Kept apart so that the totals stay exact.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_val);
} untracked SEC(".maps");

/*
 * Adds one observation to a flow table (a per-CPU hash of struct flow_val):
 * one lookup for a known flow. The table is a parameter so that a mode whose
 * key carries more than struct flow_key (cgroup mode adds the socket's
 * owner) shares this code; inlined, table is a constant map pointer.
 */
static __always_inline void account_in(void *table, const void *key, __u64 packets, __u64 bytes)
{
	struct flow_val *val = bpf_map_lookup_elem(table, key);

	if (val) {
		/* Per-CPU slot: no other CPU writes it, so no atomics. */
		val->packets += packets;
		val->bytes += bytes;
		return;
	}

	struct flow_val init = { .packets = packets, .bytes = bytes };
	long err = bpf_map_update_elem(table, key, &init, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -17 /* EEXIST: another CPU inserted it first */) {
		val = bpf_map_lookup_elem(table, key);
		if (val) {
			val->packets += packets;
			val->bytes += bytes;
			return;
		}
	}

	__u32 zero = 0;
	struct flow_val *lost = bpf_map_lookup_elem(&untracked, &zero);
	if (lost) {
		lost->packets += packets;
		lost->bytes += bytes;
	}
}

/*
 * An object whose rows need a wider key defines PKTSTAT_OWN_FLOW_TABLE
 * before including this header and declares its own map named flows (Go
 * sizes every object's "flows" from --max-entries).
 */
#ifndef PKTSTAT_OWN_FLOW_TABLE
/* The flow table. Go sets max_entries from --max-entries before loading. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

/* Adds one observation to the flow table: one lookup for a known flow. */
static __always_inline void account(const struct flow_key *key, __u64 packets, __u64 bytes)
{
	account_in(&flows, key, packets, bytes);
}
#endif
