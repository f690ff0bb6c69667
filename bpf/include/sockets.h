/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Process mode's view of a kernel socket: whether it is one that the mode
 * counts, the state kept on it in socket-local storage (its owner, and a
 * TCP socket's flow key), its cgroup, and the flow key of a TCP call.
 * How a socket gets its owner: docs/bpf.md#process-mode-owners.
 */
#pragma once

#include "kernel.h"
#include "owner.h"
#include "parse.h"

/* proc_sock.kind: what the TCP hooks found the socket to be. */
enum proc_kind : __u8 {
	PROC_KIND_UNSEEN = 0, /* no TCP hook has looked at it yet */
	PROC_KIND_TCP = 1,    /* a TCP socket: out holds its key */
	PROC_KIND_OTHER = 2,  /* not TCP: the TCP hooks leave it alone */
};

/*
 * What process mode keeps per socket. The owner comes first, as owner.h
 * lays it out. A TCP socket's key is read from the socket once, at its
 * first call that moves data (it is connected by then, and its ends no
 * longer change); later calls copy it instead of reading the socket.
 */
struct proc_sock {
	struct sock_owner owner;
	struct flow_key out; /* the key of a send; a receive's is its mirror */
	enum proc_kind kind;
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	/* BPF_F_CLONE: an accepted socket inherits its listener's owner. */
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct proc_sock);
} proc_owners SEC(".maps");

/* The cgroup v2 id of a socket: the cgroup of the task that created it. */
static __always_inline __u64 sock_cgroup_id(const struct sock *sk)
{
	if (!bpf_core_field_exists(struct sock_cgroup_data, cgroup))
		return 0;
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg)
		return 0;
	return BPF_CORE_READ(cg, kn, id);
}

/*
 * Whether sk is an inet socket that this mode counts, and which protocol:
 * TCP (MPTCP counts as TCP), UDP, or ICMP and ICMPv6 on ping and raw
 * sockets; 0 for every other. Request and timewait sockets are not full
 * sockets and carry none of the fields read here.
 */
static __always_inline __u8 counted_proto(const struct sock *sk)
{
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return 0;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 type = BPF_CORE_READ(sk, sk_type);
	switch (proto) {
	case IPPROTO_TCP_:
	case PKTSTAT_IPPROTO_MPTCP:
		return type == SOCK_STREAM ? IPPROTO_TCP_ : 0;
	case IPPROTO_UDP_:
		return type == SOCK_DGRAM ? IPPROTO_UDP_ : 0;
	case IPPROTO_ICMP_:
		return family == AF_INET && (type == SOCK_DGRAM || type == SOCK_RAW) ? IPPROTO_ICMP_ : 0;
	case IPPROTO_ICMPV6_:
		return family == AF_INET6 && (type == SOCK_DGRAM || type == SOCK_RAW) ? IPPROTO_ICMPV6_ : 0;
	}
	return 0;
}

static __always_inline int is_v4mapped(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/*
 * The flow key of a call on a TCP socket, from the socket: a send goes
 * out, with the local end as the source; a receive comes in, with the
 * remote end as the source. A dual-stack socket talking IPv4 gets IPv4
 * rows, as its packets are.
 */
static __always_inline void tcp_key(const struct sock *sk, enum flow_dir dir, struct flow_key *key)
{
	__u8 local[16] = {}, remote[16] = {};
	__u16 eth_proto = ETH_P_IPV4;

	if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET6) {
		BPF_CORE_READ_INTO(&local, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&remote, sk, __sk_common.skc_v6_daddr);
		if (is_v4mapped(local) || is_v4mapped(remote)) {
			__builtin_memset(local, 0, sizeof(local));
			__builtin_memset(remote, 0, sizeof(remote));
		} else {
			eth_proto = ETH_P_IPV6_;
		}
	}
	if (eth_proto == ETH_P_IPV4) {
		BPF_CORE_READ_INTO((__be32 *)local, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__be32 *)remote, sk, __sk_common.skc_daddr);
	}
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));

	key->eth_proto = eth_proto;
	key->proto = IPPROTO_TCP_;
	key->dir = dir;
	if (dir == FLOW_DIR_OUT) {
		__builtin_memcpy(key->saddr, local, 16);
		__builtin_memcpy(key->daddr, remote, 16);
		key->sport = lport;
		key->dport = rport;
	} else {
		__builtin_memcpy(key->saddr, remote, 16);
		__builtin_memcpy(key->daddr, local, 16);
		key->sport = rport;
		key->dport = lport;
	}
}

/* The key of a receive: the mirror of the socket's send key. */
static __always_inline void mirror(const struct flow_key *out, struct flow_key *in)
{
	__builtin_memcpy(in->saddr, out->daddr, 16);
	__builtin_memcpy(in->daddr, out->saddr, 16);
	in->sport = out->dport;
	in->dport = out->sport;
	in->eth_proto = out->eth_proto;
	in->proto = out->proto;
	in->dir = FLOW_DIR_IN;
}
