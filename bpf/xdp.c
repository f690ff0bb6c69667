// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * XDP entry point: the earliest hook on a device's receive path, so it sees
 * ingress only. It counts every frame with the shared parser and accounting
 * and always lets the frame go on.
 */
/* The flow table's key (account.h). */
#define PKTSTAT_ROW_KEY struct flow_key

#include "account_l7.h"
#include "filter.h"
#include "parse.h"

PKTSTAT_FLOW_TABLE(struct flow_key);

/*
 * True when the frame may span several buffers (multi-buffer XDP, Linux
 * 5.18+). Go sets it before loading, from a probe for bpf_xdp_get_buff_len;
 * with false the verifier drops the helper call: docs/bpf.md#load-time-switches.
 */
volatile const _Bool frags_aware = 0;

/* Whether ARP is broken down by opcode and addresses; Go clears it for --no-arp. */
volatile const _Bool arp_detail = 1;

/* Whether the parser tries its fast path first; tests clear it (tc.c). */
volatile const _Bool parse_fast_on = 1;

SEC("xdp")
int pktstat_xdp(struct xdp_md *ctx)
{
	struct pkt p = xdp_pkt(ctx);
	struct parse_result r = { .key.dir = FLOW_DIR_IN, .key.ifindex = ctx->ingress_ifindex };

	/* Headers sit in the first buffer, which is all the parser reads. */
	parse_eth(&p, &r, arp_detail, parse_fast_on);

	__u64 len = p.data_end - p.data;
	if (frags_aware)
		len = bpf_xdp_get_buff_len(ctx);
	if (filter_drop(&r.key, 1, len))
		return XDP_PASS;
	/* No GRO before XDP: one call is one frame on the wire. */
	account_l7(&flow_tables, &p, &r, 1, len);
	return XDP_PASS;
}

char __license[] SEC("license") = "Dual MIT/GPL";
