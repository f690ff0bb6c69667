// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* TC entry points, attached through TCX (or clsact + cls_bpf) on ingress and egress. */
/* The flow table's key (account.h). */
#define PKTSTAT_ROW_KEY struct flow_key

#include "account_l7.h"
#include "filter.h"
#include "parse.h"
#include "skb.h"

#include <linux/pkt_cls.h>

PKTSTAT_FLOW_TABLE(struct flow_key);

/*
 * Whether ARP frames are broken down by opcode and addresses. Go clears it
 * before loading for --no-arp; the verifier then drops the ARP parser.
 */
volatile const _Bool arp_detail = 1;

/*
 * Whether the parser tries its fast path for the common frame first
 * (parse_fast): always in the tool; tests clear it to hold the full parser
 * to the same frames.
 */
volatile const _Bool parse_fast_on = 1;

/*
 * Counts one skb. A GSO/GRO skb stands for gso_segs wire frames, each
 * carrying its own copy of the headers (skb.h).
 */
static __always_inline void count_skb(struct __sk_buff *skb, enum flow_dir dir)
{
	struct pkt p = skb_pkt(skb);
	struct parse_result r = { .key.dir = dir, .key.ifindex = skb->ifindex };
	__u32 vlan_tag_len = 0;

	if (skb->vlan_present) {
		/* The kernel holds the outer tag out of band; it is on the wire. */
		r.key.vlan = skb->vlan_tci & VLAN_VID_MASK_;
		vlan_tag_len = sizeof(struct vlan_tag);
	}
	parse_eth(&p, &r, arp_detail, parse_fast_on);

	struct wire_count c = skb_wire_count(skb, r.hdr_len, vlan_tag_len);
	if (filter_drop(&r.key, c.packets, c.bytes))
		return;
	account_l7(&flow_tables, &p, &r, c.packets, c.bytes);
}

/* TC_ACT_UNSPEC equals TCX_NEXT: the packet goes on unchanged, and later programs run. */
SEC("tc")
int pktstat_ingress(struct __sk_buff *skb)
{
	count_skb(skb, FLOW_DIR_IN);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int pktstat_egress(struct __sk_buff *skb)
{
	count_skb(skb, FLOW_DIR_OUT);
	return TC_ACT_UNSPEC;
}

char __license[] SEC("license") = "Dual MIT/GPL";
