/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * What one skb stands for on the wire, shared by the hooks that see skbs
 * (TC and cgroup_skb). A GSO/GRO skb carries many wire segments behind one
 * set of headers; each segment on the wire has its own copy of them
 * (docs/bpf.md#gso-accounting).
 */
#pragma once

#include <linux/bpf.h>

/* Wire packets and bytes of one skb. */
struct wire_count {
	__u64 packets;
	__u64 bytes;
};

/*
 * Counts skb as gso_segs segments, adding the headers back for every segment
 * but the first. hdr_len is the length of the headers that every segment
 * repeats, from where skb->len starts counting (the Ethernet header for TC,
 * the IP header for cgroup_skb) to the end of the L4 header. per_seg_extra
 * is added once per segment for bytes on the wire that the skb holds out of
 * band (TC: a VLAN tag the kernel keeps in metadata).
 */
static __always_inline struct wire_count skb_wire_count(const struct __sk_buff *skb, __u32 hdr_len, __u32 per_seg_extra)
{
	__u64 len = skb->len;
	__u64 segs = skb->gso_segs;

	if (segs == 0 && skb->gso_size && len > hdr_len) {
		/* Some GSO producers leave gso_segs for the stack to fill in. */
		segs = (len - hdr_len + skb->gso_size - 1) / skb->gso_size;
	}
	if (segs == 0)
		segs = 1;

	struct wire_count c = {
		.packets = segs,
		.bytes = len + (segs - 1) * hdr_len + segs * per_seg_extra,
	};
	return c;
}
