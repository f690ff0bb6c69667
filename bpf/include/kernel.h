/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The kernel's own types and constants that process mode reads, declared by
 * hand with only the fields it uses (no vmlinux.h), and the registers its
 * kprobes see. Built per architecture: docs/bpf.md#kernel-types.
 */
#pragma once

#include <linux/bpf.h>

/*
 * The registers a kprobe sees, as the architecture's UAPI lays them out
 * (the kernel's own struct has the same layout); bpf_tracing.h reads the
 * arguments from them.
 */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#else
#error "process.c is built per architecture: amd64 or arm64"
#endif

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define TCP_TIME_WAIT 6
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12
#define PKTSTAT_IPPROTO_MPTCP 262
#define MSG_PEEK 0x2
#define MSG_ERRQUEUE 0x2000

/*
 * The kernel types the programs read, reduced to the fields they use.
 * CO-RE relocates every access against the running kernel's BTF, so their
 * layout here does not matter.
 */
struct in6_addr {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct sock_cgroup_data {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
	struct sock_cgroup_data sk_cgrp_data;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

/* task_struct.flags: a kernel thread, such as a worker of an in-kernel socket user (NFS, iSCSI). */
#define PF_KTHREAD_ 0x00200000

struct file;
struct msghdr;
struct bpf_iter_meta;

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));
