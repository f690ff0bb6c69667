/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Counting with application protocol detection, for the hooks that see
 * whole frames (TC and XDP): account.h's accounting, with l7.h's verdict
 * stored in the flow's row.
 */
#pragma once

#include "account.h"
#include "l7.h"

/*
 * account_in for hooks that detect application protocols: one lookup and
 * one comparison for a known flow whose protocol is settled. A new flow is
 * inserted with its first packet's verdict already in it.
 */
static __always_inline void account_l7(void *slot, const struct pkt *p, const struct parse_result *r, __u64 packets,
				       __u64 bytes)
{
	__u32 zero = 0;
	void *flows = bpf_map_lookup_elem(slot, &zero);
	if (flows) {
		struct flow_val *val = bpf_map_lookup_elem(flows, &r->key);
		if (val) {
			flow_add(val, packets, bytes);
			if (val->l7 == L7_UNCHECKED)
				val->l7 = l7_verdict(p, r, val->packets);
			return;
		}
	}
	struct flow_val init = { .packets = packets, .bytes = bytes, .l7 = l7_verdict(p, r, packets) };
	account_new(flows, &r->key, &init);
}
