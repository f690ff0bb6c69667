// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * process mode (-k): TCP, UDP, ICMP and ICMPv6 traffic per process, on
 * every network namespace and cgroup of the host, each row keyed by the
 * socket's flow, in the direction the bytes went, and by its owner.
 *
 * TCP is counted where the application hands data to its socket and takes
 * it from it: one count is one send or receive call, its bytes the
 * application's payload, whatever segments, retransmissions and
 * acknowledgements TCP turns them into. The socket names both ends. Three
 * backends hook those calls; Go loads the first the kernel accepts:
 *   - tracepoint: tp_btf/sock_send_length and sock_recv_length (Linux
 *     6.3+), which fire inside sock_sendmsg and sock_recvmsg with the byte
 *     count;
 *   - fentry: fexit on inet_sendmsg, inet6_sendmsg, inet_recvmsg and
 *     inet6_recvmsg;
 *   - kprobe: kprobe + kretprobe on the same four functions.
 *
 * UDP and ICMP are counted per datagram, as the socket sends it and as the
 * kernel queues it to the socket: cgroup_skb egress and ingress programs
 * on the root of the cgroup v2 hierarchy, which see every socket of the
 * host, read the datagram's own headers through the shared parser. A
 * socket does not know its datagrams' addresses: an unconnected one has a
 * peer per datagram, a wildcard-bound one a local address per datagram,
 * and an ICMP socket a message type per datagram. No tracepoint in the
 * receive path hands over the datagram (Linux 6.18's UDP frees it with
 * skb_attempt_defer_free, without a consume_skb event in the reader's
 * context, and copies linear ones without skb_copy_datagram_iovec).
 *
 * The owner of a socket is kept in socket-local storage and never taken
 * from whichever task happens to run when a datagram arrives:
 *   - a socket created while the programs run: cgroup/sock_create on the
 *     cgroup v2 root, in the creating process's context;
 *   - an accepted socket: its listener's owner (BPF_F_CLONE storage). A
 *     listener gets its owner when it starts to listen, inside listen()
 *     (tp_btf/inet_sock_set_state): that also reaches the TCP subflow
 *     listener of an MPTCP socket (Go listens with MPTCP by default), which
 *     the kernel creates without sock_create and which does the accepting;
 *   - a socket that existed before start-up: an iter/task_file program
 *     walks every open file of every process at start-up and gives each
 *     inet socket the first process that holds it (the lowest PID);
 *   - a TCP socket that none of these reached (kernel sockets, sockets
 *     passed on after the walk): the task in whose send or receive call it
 *     is first seen. Those hooks run inside the call of a task that holds
 *     the socket, never in softirq context: sock_sendmsg and sock_recvmsg
 *     take the socket lock, which sleeps.
 * Kprobe programs cannot use socket storage; that backend takes a TCP
 * call's owner from the calling task.
 */
#include "owner.h"
#include "parse.h"
#include "skb.h"

#include <bpf/bpf_core_read.h>

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
 * The kernel types the TCP hooks read, reduced to the fields they use.
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

/* ---- owners ---- */

/* Runs in the creating process's context for every inet socket of the host. */
SEC("cgroup/sock_create")
int pktstat_proc_sock(struct bpf_sock *sk)
{
	own_at_create(&proc_owners, sk);
	return 1; /* allow: an observer never refuses a socket */
}

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

/*
 * A TCP socket starts to listen, inside listen(): it gets the caller as its
 * owner, unless it has one, so that the sockets it accepts inherit it.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pktstat_listen, const struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_LISTEN)
		return 0;
	struct proc_sock *st = bpf_sk_storage_get(&proc_owners, (void *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st && !st->owner.pid) {
		__u32 pid = bpf_get_current_pid_tgid() >> 32;
		st->owner.pid = pid;
		remember_comm(pid);
	}
	return 0;
}

/*
 * Run once at start-up: every open file of every process, in PID order.
 * Each counted socket without an owner gets the first process that holds
 * it.
 */
SEC("iter/task_file")
int pktstat_seed(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file)
		return 0;
	struct socket *sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	struct sock *sk = sock->sk;
	if (!counted_proto(sk))
		return 0;
	struct proc_sock *st = bpf_sk_storage_get(&proc_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st || st->owner.pid)
		return 0;
	__u32 pid = BPF_CORE_READ(task, tgid);
	st->owner.pid = pid;
	st->owner.cgroup_id = sock_cgroup_id(sk);
	struct owner_comm c = {};
	bpf_probe_read_kernel(c.comm, sizeof(c.comm), &task->comm);
	bpf_map_update_elem(&comms, &pid, &c, BPF_NOEXIST);
	return 0;
}

/* ---- UDP and ICMP: one count per datagram ---- */

/*
 * Counts one datagram of a UDP, ping or raw ICMP socket. skb->data points
 * at the IP header here. The bytes are the UDP payload, or the ICMP
 * message with its header; a GSO/GRO skb counts as its segments.
 */
static __always_inline void count_datagram(struct __sk_buff *skb, enum flow_dir dir)
{
	/* The common case first: TCP, counted per call, leaves at once. */
	__u8 *ip = (void *)(long)skb->data;
	if ((void *)(ip + 10) <= (void *)(long)skb->data_end) {
		if ((ip[0] >> 4 == 4 && ip[9] == IPPROTO_TCP_) || (ip[0] >> 4 == 6 && ip[6] == IPPROTO_TCP_))
			return;
	}
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return;
	sk = bpf_sk_fullsock(sk); /* type and protocol are fields of a full socket */
	if (!sk)
		return;
	__u32 proto = sk->protocol;
	__u32 type = sk->type;
	if (proto == IPPROTO_UDP_) {
		if (type != SOCK_DGRAM)
			return;
	} else if (proto == IPPROTO_ICMP_ || proto == IPPROTO_ICMPV6_) {
		if (type != SOCK_DGRAM && type != SOCK_RAW)
			return;
	} else {
		return; /* TCP is counted per call; other protocols not at all */
	}

	struct pkt p = skb_pkt(skb);
	struct parse_result r = { .key.dir = dir };
	parse_l3(&p, 0, bpf_ntohs(skb->protocol), &r);
	/* A raw socket of one ICMP protocol sees only its own; anything
	 * else here (a tunnel's outer header) is not the socket's datagram. */
	if (r.key.proto != proto)
		return;

	struct owned_flow_key key = { .flow = r.key };
	struct proc_sock *st = bpf_sk_storage_get(&proc_owners, sk, 0, 0);
	if (st) {
		key.pid = st->owner.pid;
		key.cgroup_id = st->owner.cgroup_id;
	}
	if (!key.cgroup_id)
		key.cgroup_id = bpf_skb_cgroup_id(skb);

	__u32 hdr = r.hdr_len;
	if (!(r.key.flags & FLOW_F_MALFORMED)) {
		/* The ICMP message includes its header. */
		if (proto == IPPROTO_ICMP_)
			hdr -= sizeof(struct icmp4_hdr);
		else if (proto == IPPROTO_ICMPV6_)
			hdr -= sizeof(struct icmp_hdr);
	}
	struct wire_count c = skb_wire_count(skb, r.hdr_len, 0);
	__u64 len = skb->len;
	account_in(&flow_tables, &key, c.packets, len > hdr ? len - hdr : 0);
}

/* cgroup_skb programs return 1 to let the packet pass: they only observe. */
SEC("cgroup_skb/ingress")
int pktstat_proc_in(struct __sk_buff *skb)
{
	count_datagram(skb, FLOW_DIR_IN);
	return 1;
}

SEC("cgroup_skb/egress")
int pktstat_proc_out(struct __sk_buff *skb)
{
	count_datagram(skb, FLOW_DIR_OUT);
	return 1;
}

/* ---- TCP: one count per send or receive call ---- */

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

/*
 * Whether a call that returned ret with flags moved data: not an error,
 * not the end of the stream, not a peek (the read after it counts the
 * data) and not a read of the error queue (the socket's own errors and
 * timestamps).
 */
static __always_inline int tcp_counts(const struct sock *sk, enum flow_dir dir, long ret, __u32 flags)
{
	if (ret <= 0)
		return 0;
	if (dir == FLOW_DIR_IN && (flags & (MSG_PEEK | MSG_ERRQUEUE)))
		return 0;
	return counted_proto(sk) == IPPROTO_TCP_;
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

/*
 * One send (out) or receive (in) call on sk that returned ret, in the
 * tracepoint and fentry backends. sk is a BTF pointer, which can hold
 * socket storage. After a TCP socket's first call, a call costs one
 * storage lookup and one table update: the key and the owner are in the
 * storage.
 */
static __always_inline void tcp_call(struct sock *sk, enum flow_dir dir, long ret, __u32 flags)
{
	if (ret <= 0 || (dir == FLOW_DIR_IN && (flags & (MSG_PEEK | MSG_ERRQUEUE))))
		return;
	struct proc_sock *st = bpf_sk_storage_get(&proc_owners, sk, 0, 0);
	if (!st || st->kind == PROC_KIND_UNSEEN) {
		if (!st) {
			/* Most sockets without storage are not inet sockets (unix
			 * sockets, netlink): a plain load tells them apart. */
			__u16 family = sk->__sk_common.skc_family;
			if (family != AF_INET && family != AF_INET6)
				return;
		}
		if (counted_proto(sk) != IPPROTO_TCP_) {
			if (st)
				st->kind = PROC_KIND_OTHER;
			return;
		}
		if (!st)
			st = bpf_sk_storage_get(&proc_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!st) {
			/* No memory for storage: the caller holds the socket. */
			struct owned_flow_key k = {
				.pid = bpf_get_current_pid_tgid() >> 32,
				.cgroup_id = bpf_get_current_cgroup_id(),
			};
			tcp_key(sk, dir, &k.flow);
			account_in(&flow_tables, &k, 1, ret);
			return;
		}
		if (!st->owner.cgroup_id)
			st->owner.cgroup_id = sock_cgroup_id(sk);
		tcp_key(sk, FLOW_DIR_OUT, &st->out);
		st->kind = PROC_KIND_TCP;
	} else if (st->kind != PROC_KIND_TCP) {
		return;
	}
	/*
	 * A send or receive call runs in the process that makes it, which
	 * holds the socket: the call is that process's (its PID, name and
	 * cgroup), whoever created the socket. A pre-fork server's worker that
	 * accepted on its master's listener, or a process that was handed the
	 * socket, becomes its owner here; while it stays the same, this is
	 * one comparison.
	 */
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (st->owner.pid != pid && (!st->owner.pid || !(bpf_get_current_task_btf()->flags & PF_KTHREAD_))) {
		/*
		 * A kernel thread takes a socket only if it has no owner: an
		 * in-kernel socket user's calls come from whichever worker runs,
		 * and would otherwise split its connection over their PIDs.
		 */
		st->owner.pid = pid;
		st->owner.cgroup_id = bpf_get_current_cgroup_id();
		remember_comm(pid);
	}

	struct owned_flow_key key = {
		.pid = st->owner.pid,
		.cgroup_id = st->owner.cgroup_id,
	};
	if (dir == FLOW_DIR_OUT)
		key.flow = st->out;
	else
		mirror(&st->out, &key.flow);
	account_in(&flow_tables, &key, 1, ret);
}

/* -- tracepoint backend (Linux 6.3+) -- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(pktstat_tp_send, struct sock *sk, int ret, int flags)
{
	tcp_call(sk, FLOW_DIR_OUT, ret, 0);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(pktstat_tp_recv, struct sock *sk, int ret, int flags)
{
	tcp_call(sk, FLOW_DIR_IN, ret, flags);
	return 0;
}

/* -- fentry backend -- */

SEC("fexit/inet_sendmsg")
int BPF_PROG(pktstat_fx_send, struct socket *sock, struct msghdr *msg, __u64 size, int ret)
{
	tcp_call(sock->sk, FLOW_DIR_OUT, ret, 0);
	return 0;
}

SEC("fexit/inet6_sendmsg")
int BPF_PROG(pktstat_fx_send6, struct socket *sock, struct msghdr *msg, __u64 size, int ret)
{
	tcp_call(sock->sk, FLOW_DIR_OUT, ret, 0);
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(pktstat_fx_recv, struct socket *sock, struct msghdr *msg, __u64 size, int flags, int ret)
{
	tcp_call(sock->sk, FLOW_DIR_IN, ret, flags);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(pktstat_fx_recv6, struct socket *sock, struct msghdr *msg, __u64 size, int flags, int ret)
{
	tcp_call(sock->sk, FLOW_DIR_IN, ret, flags);
	return 0;
}

/* -- kprobe backend -- */

/* A call in progress, between its kprobe and its kretprobe. */
struct kp_call {
	__u64 sk;
	__u32 flags;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id */
	__type(value, struct kp_call);
} kp_calls SEC(".maps");

static __always_inline void kp_enter(struct socket *sock, __u32 flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kp_call c = { .sk = (__u64)(long)BPF_CORE_READ(sock, sk), .flags = flags };
	bpf_map_update_elem(&kp_calls, &tid, &c, BPF_ANY);
}

/*
 * The end of a call in the kprobe backend: like tcp_call, but without
 * socket storage, which kprobe programs cannot use. The owner is the
 * calling task, which holds the socket.
 */
static __always_inline void kp_exit(enum flow_dir dir, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kp_call *c = bpf_map_lookup_elem(&kp_calls, &tid);
	if (!c)
		return;
	const struct sock *sk = (const struct sock *)(long)c->sk;
	__u32 flags = c->flags;
	bpf_map_delete_elem(&kp_calls, &tid);
	if (!tcp_counts(sk, dir, ret, flags))
		return;

	/* As in tcp_call: the call is the calling process's. */
	struct owned_flow_key key = {
		.pid = bpf_get_current_pid_tgid() >> 32,
		.cgroup_id = bpf_get_current_cgroup_id(),
	};
	if (!bpf_map_lookup_elem(&comms, &key.pid))
		remember_comm(key.pid);
	tcp_key(sk, dir, &key.flow);
	account_in(&flow_tables, &key, 1, ret);
}

/* Attached to inet_sendmsg and inet6_sendmsg alike. */
SEC("kprobe/inet_sendmsg")
int BPF_KPROBE(pktstat_kp_send, struct socket *sock)
{
	kp_enter(sock, 0);
	return 0;
}

SEC("kretprobe/inet_sendmsg")
int BPF_KRETPROBE(pktstat_kp_send_ret, int ret)
{
	kp_exit(FLOW_DIR_OUT, ret);
	return 0;
}

/* Attached to inet_recvmsg and inet6_recvmsg alike. */
SEC("kprobe/inet_recvmsg")
int BPF_KPROBE(pktstat_kp_recv, struct socket *sock, struct msghdr *msg, __u64 size, int flags)
{
	kp_enter(sock, flags);
	return 0;
}

SEC("kretprobe/inet_recvmsg")
int BPF_KRETPROBE(pktstat_kp_recv_ret, int ret)
{
	kp_exit(FLOW_DIR_IN, ret);
	return 0;
}

char __license[] SEC("license") = "Dual MIT/GPL";
