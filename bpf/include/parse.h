/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The one frame parser shared by every hook. Each step reads one header
 * into a stack copy, checks it, fills the flow key and returns where the next
 * header starts. Reads go through pkt_ptr, which points into the packet when
 * the bytes sit in the linear area and falls back to bpf_skb_load_bytes for
 * non-linear skbs (frames from AF_PACKET senders arrive that way).
 */
#pragma once

#include "pktstat.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_802_3_MIN_ 0x0600

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_SCTP_ 132

#define VLAN_VID_MASK_ 0x0FFF
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8
/* No header we parse starts beyond this offset; bounds the verifier's view. */
#define MAX_HDR_OFF 2048

/* Wire formats, declared with only what the parser reads. */
struct eth_hdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct ipv4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 proto;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct ipv6_hdr {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Hop-by-hop, routing, destination options and AH start with these two. */
struct ipv6_ext {
	__u8 nexthdr;
	__u8 len;
};

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

struct tcp_hdr {
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack;
	__u8 doff_res;
	__u8 flags;
	__be16 window;
	__be16 check;
	__be16 urg;
};

struct udp_hdr {
	__be16 sport;
	__be16 dport;
	__be16 len;
	__be16 check;
};

struct sctp_hdr {
	__be16 sport;
	__be16 dport;
	__be32 vtag;
	__be32 check;
};

/* ICMPv6's header; ICMPv4's adds a 4-byte rest-of-header (icmp4_hdr). */
struct icmp_hdr {
	__u8 type;
	__u8 code;
	__be16 check;
};

struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__be16 check;
	__be32 rest;
};

#define IPV4_FRAG_OFFSET_MASK 0x1FFF
#define IPV6_FRAG_OFFSET_MASK 0xFFF8

/* Where the frame's bytes come from; a constant in every caller. */
enum pkt_kind {
	PKT_SKB, /* TC and cgroup_skb: may be non-linear */
	PKT_XDP, /* XDP: headers are in the linear first buffer */
};

struct pkt {
	void *ctx;
	void *data;
	void *data_end;
	enum pkt_kind kind;
};

/*
 * Returns a pointer to n bytes at off: into the packet when they sit in the
 * linear area, else into buf, filled by bpf_skb_load_bytes. NULL if the
 * frame is too short. Callers read only the fields they need through it.
 */
static __always_inline void *pkt_ptr(const struct pkt *p, __u32 off, void *buf, __u32 n)
{
	if (off > MAX_HDR_OFF)
		return NULL;
	void *ptr = p->data + off;
	if (ptr + n <= p->data_end)
		return ptr;
	if (p->kind == PKT_SKB && bpf_skb_load_bytes(p->ctx, off, buf, n) == 0)
		return buf;
	return NULL;
}

/* Result of a parse: the key plus the header length repeated per segment. */
struct parse_result {
	struct flow_key key;
	__u32 hdr_len; /* bytes from the frame start to the end of the L4 header */
};

/* Declares a stack buffer for header type T and points name at the header. */
#define PKT_HDR(p, off, T, name) \
	T name##_buf;                \
	T *name = pkt_ptr(p, off, &name##_buf, sizeof(T))

static __always_inline void parse_l4(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	switch (k->proto) {
	case IPPROTO_TCP_: {
		PKT_HDR(p, off, struct tcp_hdr, th);
		if (!th)
			goto malformed;
		__u32 doff = (th->doff_res >> 4) * 4;
		if (doff < sizeof(*th))
			goto malformed;
		/* The options are part of the header: all of it must be there. */
		__u8 last;
		if (!pkt_ptr(p, off + doff - 1, &last, sizeof(last)))
			goto malformed;
		k->sport = bpf_ntohs(th->sport);
		k->dport = bpf_ntohs(th->dport);
		r->hdr_len = off + doff;
		return;
	}
	case IPPROTO_UDP_: {
		PKT_HDR(p, off, struct udp_hdr, uh);
		if (!uh)
			goto malformed;
		k->sport = bpf_ntohs(uh->sport);
		k->dport = bpf_ntohs(uh->dport);
		r->hdr_len = off + sizeof(*uh);
		return;
	}
	case IPPROTO_SCTP_: {
		PKT_HDR(p, off, struct sctp_hdr, sh);
		if (!sh)
			goto malformed;
		k->sport = bpf_ntohs(sh->sport);
		k->dport = bpf_ntohs(sh->dport);
		r->hdr_len = off + sizeof(*sh);
		return;
	}
	case IPPROTO_ICMP_: {
		PKT_HDR(p, off, struct icmp4_hdr, ih);
		if (!ih)
			goto malformed;
		k->sport = ih->type;
		k->dport = ih->code;
		r->hdr_len = off + sizeof(*ih);
		return;
	}
	case IPPROTO_ICMPV6_: {
		PKT_HDR(p, off, struct icmp_hdr, ih);
		if (!ih)
			goto malformed;
		k->sport = ih->type;
		k->dport = ih->code;
		r->hdr_len = off + sizeof(*ih);
		return;
	}
	default:
		/* Counted under its protocol number, without ports. */
		return;
	}
malformed:
	k->flags |= FLOW_F_MALFORMED;
}

static __always_inline void parse_ipv4(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	PKT_HDR(p, off, struct ipv4_hdr, ih);
	if (!ih)
		goto malformed;
	__u32 ihl = (ih->ver_ihl & 0x0F) * 4;
	if ((ih->ver_ihl >> 4) != 4 || ihl < sizeof(*ih))
		goto malformed;

	*(__be32 *)k->saddr = ih->saddr;
	*(__be32 *)k->daddr = ih->daddr;
	k->proto = ih->proto;
	if (ih->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)) {
		/* Its payload continues an earlier fragment: no ports to read. */
		k->flags |= FLOW_F_FRAGMENT;
		r->hdr_len = off + ihl;
		return;
	}
	parse_l4(p, off + ihl, r);
	return;
malformed:
	k->flags |= FLOW_F_MALFORMED;
}

/* IPv6 extension headers the parser steps over to reach the L4 header. */
static __always_inline int ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_ ||
	       nh == IPPROTO_AH_ || nh == IPPROTO_FRAGMENT_;
}

static __always_inline void parse_ipv6(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	PKT_HDR(p, off, struct ipv6_hdr, ih);
	if (!ih || (ih->ver_tc_flow & bpf_htonl(0xF0000000)) != bpf_htonl(0x60000000)) {
		k->flags |= FLOW_F_MALFORMED;
		return;
	}
	__builtin_memcpy(k->saddr, ih->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, ih->daddr, sizeof(k->daddr));
	off += sizeof(*ih);

	__u8 nh = ih->nexthdr;
	for (int i = 0; i < MAX_IPV6_EXT && ipv6_is_ext(nh); i++) {
		k->proto = nh;
		r->hdr_len = off;
		if (nh == IPPROTO_FRAGMENT_) {
			PKT_HDR(p, off, struct ipv6_frag, fh);
			if (!fh) {
				k->flags |= FLOW_F_MALFORMED;
				return;
			}
			off += sizeof(*fh);
			nh = fh->nexthdr;
			if (fh->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK)) {
				k->proto = nh;
				k->flags |= FLOW_F_FRAGMENT;
				r->hdr_len = off;
				return;
			}
			continue;
		}
		PKT_HDR(p, off, struct ipv6_ext, eh);
		if (!eh) {
			k->flags |= FLOW_F_MALFORMED;
			return;
		}
		nh = eh->nexthdr;
		/* AH counts 4-byte units minus 2; the others, 8-byte units minus 1. */
		off += k->proto == IPPROTO_AH_ ? ((__u32)eh->len + 2) * 4 : ((__u32)eh->len + 1) * 8;
	}
	k->proto = nh;
	r->hdr_len = off;
	if (ipv6_is_ext(nh)) {
		/* Still inside the chain after MAX_IPV6_EXT headers: count it, and say so. */
		k->flags |= FLOW_F_DEEP_CHAIN;
		return;
	}
	parse_l4(p, off, r);
}

/* Parses an IP packet that starts at off, as cgroup_skb programs see it. */
static __always_inline void parse_l3(const struct pkt *p, __u32 off, __u16 eth_proto, struct parse_result *r)
{
	r->key.eth_proto = eth_proto;
	r->hdr_len = off;
	if (eth_proto == ETH_P_IPV4)
		parse_ipv4(p, off, r);
	else if (eth_proto == ETH_P_IPV6_)
		parse_ipv6(p, off, r);
}

/*
 * Parses an Ethernet frame. A VLAN tag that the kernel already moved into
 * metadata arrives in r->key.vlan; tags still in the frame are skipped, and
 * the first one names the VLAN when the metadata had none.
 */
static __always_inline void parse_eth(const struct pkt *p, struct parse_result *r)
{
	PKT_HDR(p, 0, struct eth_hdr, eh);
	if (!eh) {
		r->key.flags |= FLOW_F_MALFORMED;
		r->hdr_len = 0;
		return;
	}
	__u16 proto = bpf_ntohs(eh->proto);
	__u32 off = sizeof(*eh);

	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
			break;
		PKT_HDR(p, off, struct vlan_tag, tag);
		if (!tag) {
			r->key.eth_proto = proto;
			r->key.flags |= FLOW_F_MALFORMED;
			r->hdr_len = off;
			return;
		}
		if (!r->key.vlan)
			r->key.vlan = bpf_ntohs(tag->tci) & VLAN_VID_MASK_;
		proto = bpf_ntohs(tag->proto);
		off += sizeof(*tag);
	}
	if (proto < ETH_P_802_3_MIN_)
		proto = 0; /* 802.3 length field, not an EtherType */
	parse_l3(p, off, proto, r);
}
