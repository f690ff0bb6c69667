// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * process mode (-k): TCP, UDP, ICMP and ICMPv6 traffic per process, on
 * every network namespace and cgroup of the host, each row keyed by the
 * socket's flow, in the direction the bytes went, and by its owner.
 *
 *   - owners: cgroup/sock_create, tp_btf/inet_sock_set_state (listen) and
 *     iter/task_file (start-up) give sockets their owner (sockets.h);
 *   - UDP and ICMP: cgroup_skb ingress and egress on the cgroup v2 root,
 *     one count per datagram, through the shared parser;
 *   - TCP: one count per send or receive call, the application's bytes,
 *     by one of three backends, the first the kernel accepts: tracepoint
 *     (Linux 6.3+), fentry (fexit), kprobe (kprobe + kretprobe).
 *
 * Why it counts this way, and how owners are found: docs/bpf.md#process-mode.
 */
/* The flow table's key (account.h). */
#define PKTSTAT_ROW_KEY struct owned_flow_key

#include "filter.h"
#include "owner.h"
#include "parse.h"
#include "skb.h"
#include "sockets.h"

/* ---- owners ---- */

/* Runs in the creating process's context for every inet socket of the host. */
SEC("cgroup/sock_create")
int pktstat_proc_sock(struct bpf_sock *sk)
{
	own_at_create(&proc_owners, sk);
	return 1; /* allow: an observer never refuses a socket */
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
	__u64 bytes = len > hdr ? len - hdr : 0;
	if (filter_drop(&key.flow, c.packets, bytes))
		return;
	account_in(&flow_tables, &key, c.packets, bytes);
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
			if (!filter_drop(&k.flow, 1, ret))
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
	 * The call is the calling process's (its PID, name and cgroup),
	 * whoever created the socket: docs/bpf.md#process-mode-owners. While
	 * the caller stays the same, this is one comparison.
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
	if (filter_drop(&key.flow, 1, ret))
		return;
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

/*
 * The calls the kprobe backend could not count, per CPU, by why:
 * KP_LOST_RETURN, a call whose kretprobe never ran (the kernel ran out of
 * return instances, maxactive): the thread's next call finds its entry
 * still there; KP_LOST_CALL, a return whose call has no entry (its kprobe
 * was missed, or the table was full and the entry evicted). Go adds them
 * up and reports them.
 */
enum kp_lost_reason {
	KP_LOST_RETURN = 0,
	KP_LOST_CALL = 1,
	KP_LOST_MAX = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_LOST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kp_lost SEC(".maps");

static __always_inline void kp_lose(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&kp_lost, &reason);
	if (n)
		(*n)++;
}

static __always_inline void kp_enter(struct socket *sock, __u32 flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kp_call c = { .sk = (__u64)(long)BPF_CORE_READ(sock, sk), .flags = flags };
	/* A thread makes one call at a time: an entry left is a lost return. */
	if (bpf_map_update_elem(&kp_calls, &tid, &c, BPF_NOEXIST) == 0)
		return;
	kp_lose(KP_LOST_RETURN);
	bpf_map_update_elem(&kp_calls, &tid, &c, BPF_ANY);
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

/*
 * The end of a call in the kprobe backend: like tcp_call, but without
 * socket storage, which kprobe programs cannot use. The owner is the
 * calling task, which holds the socket.
 */
static __always_inline void kp_exit(enum flow_dir dir, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kp_call *c = bpf_map_lookup_elem(&kp_calls, &tid);
	if (!c) {
		kp_lose(KP_LOST_CALL);
		return;
	}
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
	if (filter_drop(&key.flow, 1, ret))
		return;
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
