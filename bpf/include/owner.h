/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Rows keyed by the owner of a socket as well as by its flow, for the modes
 * that know the owner: cgroup mode (bpf/cgroup.c) and process mode
 * (bpf/process.c). It declares their flow table, with the wider key, and
 * the process names. How each mode finds a socket's owner:
 * docs/bpf.md#socket-owners.
 */
#pragma once

#include "account.h"

PKTSTAT_FLOW_TABLE(struct owned_flow_key);

/* A socket's owner, kept in its socket-local storage. */
struct sock_owner {
	__u32 pid;
	__u32 _pad;
	/* Filled from the socket itself, the first time it is counted. */
	__u64 cgroup_id;
};

/* The name of a process, as bpf_get_current_comm gives it. */
struct owner_comm {
	char comm[16];
};

/*
 * Process names by tgid, written when a socket gets its owner. LRU: a long
 * capture on a busy host forgets the oldest names first, and Go falls back
 * to /proc for a name the map no longer holds.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct owner_comm);
} comms SEC(".maps");

/* Records the current task's name under pid, its tgid. */
static __always_inline void remember_comm(__u32 pid)
{
	struct owner_comm c = {};
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	bpf_map_update_elem(&comms, &pid, &c, BPF_ANY);
}

/*
 * Records the creating process as the owner of a new socket, in the socket
 * storage map owners (its value is a struct sock_owner). For
 * cgroup/sock_create programs, which run in the creator's context.
 */
static __always_inline void own_at_create(void *owners, struct bpf_sock *sk)
{
	struct sock_owner *o = bpf_sk_storage_get(owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	o->pid = pid;
	remember_comm(pid);
}
