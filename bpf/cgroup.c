// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * cgroup mode: cgroup_skb programs on a cgroup v2 directory count the
 * traffic of the sockets that belong to it and to its descendants, in both
 * directions, and key every row by the socket's owner as well as its flow.
 * The owner is kept in socket-local storage and read from the skb's socket,
 * never from the current task: docs/bpf.md#cgroup-mode.
 */
/* The flow table's key (account.h). */
#define PKTSTAT_ROW_KEY struct owned_flow_key

#include "filter.h"
#include "owner.h"
#include "parse.h"
#include "skb.h"

/* owned_flow_key, sock_owner and the comms map: see owner.h. */

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	/* BPF_F_CLONE: an accepted socket inherits its listener's owner. */
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/*
 * True when the kernel offers bpf_skc_to_mptcp_sock (Linux 5.19+, with
 * CAP_PERFMON). Go sets it before loading, from a probe; with false the
 * verifier drops the branch that calls the helper, so the object still
 * loads where the helper is missing.
 */
volatile const _Bool mptcp_aware = 0;

/*
 * Runs in the creating process's context for every inet socket created in
 * the cgroup or below it. Kernel sockets (MPTCP subflows among them) do not
 * pass here: see owner_of.
 */
SEC("cgroup/sock_create")
int pktstat_cg_sock(struct bpf_sock *sk)
{
	own_at_create(&sock_owners, sk);
	return 1; /* allow: an observer never refuses a socket */
}

/*
 * Returns the owner record of the skb's socket, creating it the first time
 * the socket is seen without one. That happens to sockets that existed
 * before start-up and whose holder could not be read (they stay ownerless),
 * and to MPTCP subflows: the process holds the MPTCP socket, which has the
 * owner, while the packets pass through TCP subflow sockets that the kernel
 * creates for it. A subflow takes its MPTCP socket's owner, and an MPTCP
 * listener's subflow passes it on to the sockets it accepts (BPF_F_CLONE).
 */
static __always_inline struct sock_owner *owner_of(struct bpf_sock *sk)
{
	struct sock_owner *o = bpf_sk_storage_get(&sock_owners, sk, 0, 0);
	if (o)
		return o;

	struct sock_owner init = {};
	if (mptcp_aware) {
		struct mptcp_sock *msk = bpf_skc_to_mptcp_sock(sk);
		if (msk) {
			struct sock_owner *parent = bpf_sk_storage_get(&sock_owners, msk, 0, 0);
			if (parent)
				init.pid = parent->pid;
		}
	}
	return bpf_sk_storage_get(&sock_owners, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
}

/*
 * Counts one skb. skb->data points at the IP header here, so the bytes are
 * L3 bytes: the IP packet, without any link-layer header.
 */
static __always_inline void count_cgroup_skb(struct __sk_buff *skb, enum flow_dir dir)
{
	struct pkt p = skb_pkt(skb);
	struct parse_result r = { .key.dir = dir };

	parse_l3(&p, 0, bpf_ntohs(skb->protocol), &r);
	struct wire_count c = skb_wire_count(skb, r.hdr_len, 0);
	if (filter_drop(&r.key, c.packets, c.bytes))
		return;

	struct owned_flow_key key = { .flow = r.key };
	struct bpf_sock *sk = skb->sk;
	if (sk) {
		/* The hook runs only for full sockets, which can hold storage. */
		struct sock_owner *o = owner_of(sk);
		if (o) {
			if (!o->cgroup_id)
				o->cgroup_id = bpf_skb_cgroup_id(skb);
			key.pid = o->pid;
			key.cgroup_id = o->cgroup_id;
		} else {
			key.cgroup_id = bpf_skb_cgroup_id(skb);
		}
	}

	account_in(&flow_tables, &key, c.packets, c.bytes);
}

/*
 * cgroup_skb programs return 1 to let the packet pass: they only observe.
 * process.c has the same two hooks around its own counting: each object
 * defines the programs it loads.
 */
SEC("cgroup_skb/ingress")
int pktstat_cg_in(struct __sk_buff *skb)
{
	count_cgroup_skb(skb, FLOW_DIR_IN);
	return 1;
}

SEC("cgroup_skb/egress")
int pktstat_cg_out(struct __sk_buff *skb)
{
	count_cgroup_skb(skb, FLOW_DIR_OUT);
	return 1;
}

char __license[] SEC("license") = "Dual MIT/GPL";
