/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The types every pktstat-bpf object shares, and that Go reads through
 * bpf2go -type: the flow key, the flow value and the untracked sketch.
 * Every field is naturally aligned and every gap is an explicit, zeroed
 * padding field: the key is hashed as raw bytes.
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
 * compare, whatever the protocol. It is 48 bytes: six 64-bit words.
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
	/*
	 * The interface the hook saw the packet on (TC: skb->ifindex, XDP:
	 * ingress_ifindex); 0 in cgroup and process mode, which have none.
	 * One run may watch several interfaces: a packet forwarded between two
	 * of them counts on each, as ip -s link counts it.
	 */
	__u32 ifindex;
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
	__u64 bytes;   /* wire bytes: docs/accounting.md */
	enum l7_proto l7;
	__u8 _pad[7];
};

/*
 * A row of cgroup and process mode (owner.h), which know the socket's
 * owner: the flow plus that owner. It embeds the flow_key that TC and XDP
 * use unchanged (its ifindex stays 0: these modes see no
 * interface). flow_key is 48 bytes, so pid sits at 48, an explicit pad
 * at 52 and cgroup_id at 56.
 */
struct owned_flow_key {
	struct flow_key flow;
	__u32 pid; /* tgid that owns the socket; 0 when unknown */
	__u32 _pad;
	__u64 cgroup_id; /* cgroup v2 id of the socket (its directory's inode) */
};

_Static_assert(sizeof(struct owned_flow_key) == 64, "owned_flow_key has no implicit padding");

/*
 * A HyperLogLog sketch of the distinct flows that had no row of their own
 * (account.h adds to it; internal/flow/hll.go mirrors that code and
 * estimates from it).
 */
#define HLL_BITS 10
#define HLL_REGISTERS (1 << HLL_BITS)

struct hll {
	__u8 reg[HLL_REGISTERS];
};
