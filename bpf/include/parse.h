/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The one frame parser shared by every hook: Ethernet, VLAN, ARP, IPv4,
 * IPv6 and its extension headers, and the L4 headers, into a flow key.
 * Its rules (what is read, what counts as malformed): docs/bpf.md#parser.
 */
#pragma once

#include "pktstat.h"

#define ETH_P_IPV4 0x0800
#define ETH_P_ARP_ 0x0806
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_802_3_MIN_ 0x0600

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ICMP_ 1
#define IPPROTO_IGMP_ 2
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_GRE_ 47
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_OSPF_ 89
#define IPPROTO_SCTP_ 132

#define VLAN_VID_MASK_ 0x0FFF
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8
/* No header we parse starts beyond this offset; bounds the verifier's view. */
#define MAX_HDR_OFF 2048
/* An IP header that does not declare its length: the packet runs to the frame's end. */
#define L3_END_FRAME 0xFFFFFFFFU

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

/* ARP's fixed part (RFC 826); the addresses follow, sized by hlen and plen. */
struct arp_hdr {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
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

/* ESP (RFC 4303): what precedes the encrypted payload. */
struct esp_hdr {
	__be32 spi;
	__be32 seq;
};

/* AH (RFC 4302); len counts 4-byte units minus 2, ICV included. */
struct ah_hdr {
	__u8 nexthdr;
	__u8 len;
	__be16 reserved;
	__be32 spi;
	__be32 seq;
};

/* GRE (RFC 2784, 2890); optional fields follow as the flags say. */
struct gre_hdr {
	__be16 flags;
	__be16 proto;
};

#define GRE_F_CSUM 0x8000
#define GRE_F_ROUTING 0x4000
#define GRE_F_KEY 0x2000
#define GRE_F_SEQ 0x1000
#define GRE_F_ACK 0x0080 /* version 1 (PPTP, RFC 2637) */

/* The first four bytes of OSPFv2 and OSPFv3 headers. */
struct ospf_hdr {
	__u8 version;
	__u8 type;
	__be16 len;
};

#define OSPF2_HDR_LEN 24
#define OSPF3_HDR_LEN 16

/* Every IGMP message (RFC 1112, 2236, 3376) starts with these 8 bytes. */
struct igmp_hdr {
	__u8 type;
	__u8 code;
	__be16 check;
	__be32 group;
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

/* The packet of an skb, from its first byte: Ethernet at TC, IP at cgroup_skb. */
static __always_inline struct pkt skb_pkt(struct __sk_buff *skb)
{
	struct pkt p = {
		.ctx = skb,
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.kind = PKT_SKB,
	};
	return p;
}

/* The packet of an XDP frame: its first buffer, where the headers are. */
static __always_inline struct pkt xdp_pkt(struct xdp_md *ctx)
{
	struct pkt p = {
		.ctx = ctx,
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
		.kind = PKT_XDP,
	};
	return p;
}

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

/* Result of a parse: the key, where the headers end and where the IP packet ends. */
struct parse_result {
	struct flow_key key;
	__u32 hdr_len; /* bytes from the frame start to the end of the L4 header */
	/*
	 * Where the packet ends, as its IP header declares; L3_END_FRAME when
	 * it declares nothing. Bytes after it, such as Ethernet padding, are
	 * not part of the packet: no header may extend into them, and no
	 * payload is read from them.
	 */
	__u32 pkt_end;
};

/* Declares a stack buffer for header type T and points name at the header. */
#define PKT_HDR(p, off, T, name) \
	T name##_buf;                \
	T *name = pkt_ptr(p, off, &name##_buf, sizeof(T))

/*
 * The frame's length from p->data: all of an skb (linear or not), the
 * first buffer of an XDP frame (the one place XDP reads headers from).
 */
static __always_inline __u32 pkt_len(const struct pkt *p)
{
	if (p->kind == PKT_SKB)
		return ((struct __sk_buff *)p->ctx)->len;
	return p->data_end - p->data;
}

/*
 * Whether a header of n bytes at off is all there: inside the IP packet
 * that ends at end, and inside the frame. A comparison, not a read: cheap
 * for non-linear skbs, and light on the verifier inside loops.
 */
static __always_inline int hdr_whole(const struct pkt *p, __u32 off, __u32 n, __u32 end)
{
	return off + n <= end && off + n <= pkt_len(p);
}

/* Puts a 32-bit value (an IPsec SPI) into the port fields, high half first. */
static __always_inline void key_put32(struct flow_key *k, __be32 v)
{
	__u32 h = bpf_ntohl(v);
	k->sport = h >> 16;
	k->dport = h & 0xFFFF;
}

/*
 * Parses the header after the IP header(s), at off, in a packet that ends
 * at end. Each protocol's own fields go into sport/dport:
 *   TCP, UDP, SCTP: the ports; ICMP, ICMPv6: type and code;
 *   ESP, AH: the SPI (high half in sport); GRE: protocol type and flags;
 *   OSPF: type and version; IGMP: type.
 * A header that is cut short, or that declares an impossible length,
 * leaves them zero and marks the key malformed.
 *
 * The fixed-size cases (UDP, SCTP, ICMP, ICMPv6, ESP, IGMP) look alike but
 * are written out, not generated by a macro: each reads its own struct,
 * whose size is the bound the verifier checks, and its own fields.
 */
static __always_inline void parse_l4(const struct pkt *p, __u32 off, __u32 end, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	switch (k->proto) {
	case IPPROTO_TCP_: {
		PKT_HDR(p, off, struct tcp_hdr, th);
		if (!th)
			goto malformed;
		__u32 doff = (th->doff_res >> 4) * 4;
		/* The options are part of the header: all of it must be there. */
		if (doff < sizeof(*th) || !hdr_whole(p, off, doff, end))
			goto malformed;
		k->sport = bpf_ntohs(th->sport);
		k->dport = bpf_ntohs(th->dport);
		r->hdr_len = off + doff;
		return;
	}
	case IPPROTO_UDP_: {
		PKT_HDR(p, off, struct udp_hdr, uh);
		if (!uh || off + sizeof(*uh) > end)
			goto malformed;
		/* 0 is a jumbogram's (RFC 2675); 1 to 7 cannot hold the header. */
		__u16 ulen = bpf_ntohs(uh->len);
		if (ulen && ulen < sizeof(*uh))
			goto malformed;
		k->sport = bpf_ntohs(uh->sport);
		k->dport = bpf_ntohs(uh->dport);
		r->hdr_len = off + sizeof(*uh);
		return;
	}
	case IPPROTO_SCTP_: {
		PKT_HDR(p, off, struct sctp_hdr, sh);
		if (!sh || off + sizeof(*sh) > end)
			goto malformed;
		k->sport = bpf_ntohs(sh->sport);
		k->dport = bpf_ntohs(sh->dport);
		r->hdr_len = off + sizeof(*sh);
		return;
	}
	case IPPROTO_ICMP_: {
		PKT_HDR(p, off, struct icmp4_hdr, ih);
		if (!ih || off + sizeof(*ih) > end)
			goto malformed;
		k->sport = ih->type;
		k->dport = ih->code;
		r->hdr_len = off + sizeof(*ih);
		return;
	}
	case IPPROTO_ICMPV6_: {
		PKT_HDR(p, off, struct icmp_hdr, ih);
		if (!ih || off + sizeof(*ih) > end)
			goto malformed;
		k->sport = ih->type;
		k->dport = ih->code;
		r->hdr_len = off + sizeof(*ih);
		return;
	}
	case IPPROTO_ESP_: {
		PKT_HDR(p, off, struct esp_hdr, eh);
		if (!eh || off + sizeof(*eh) > end)
			goto malformed;
		key_put32(k, eh->spi);
		r->hdr_len = off + sizeof(*eh);
		return;
	}
	case IPPROTO_AH_: {
		/* IPv4 only: in IPv6, AH is an extension header (parse_ipv6). */
		PKT_HDR(p, off, struct ah_hdr, ah);
		if (!ah)
			goto malformed;
		__u32 ahlen = ((__u32)ah->len + 2) * 4;
		if (ahlen < sizeof(*ah) || !hdr_whole(p, off, ahlen, end))
			goto malformed;
		key_put32(k, ah->spi);
		r->hdr_len = off + ahlen;
		return;
	}
	case IPPROTO_GRE_: {
		PKT_HDR(p, off, struct gre_hdr, gh);
		if (!gh)
			goto malformed;
		__u16 flags = bpf_ntohs(gh->flags);
		/* Source routing went with RFC 1701; Linux refuses it too. */
		if (flags & GRE_F_ROUTING)
			goto malformed;
		__u32 glen = sizeof(*gh) + (flags & GRE_F_CSUM ? 4 : 0) + (flags & GRE_F_KEY ? 4 : 0) +
			     (flags & GRE_F_SEQ ? 4 : 0) + (flags & GRE_F_ACK ? 4 : 0);
		if (!hdr_whole(p, off, glen, end))
			goto malformed;
		k->sport = bpf_ntohs(gh->proto);
		k->dport = flags;
		r->hdr_len = off + glen;
		return;
	}
	case IPPROTO_OSPF_: {
		PKT_HDR(p, off, struct ospf_hdr, oh);
		if (!oh)
			goto malformed;
		__u32 olen = oh->version == 2 ? OSPF2_HDR_LEN : oh->version == 3 ? OSPF3_HDR_LEN : 0;
		if (!olen || !hdr_whole(p, off, olen, end))
			goto malformed;
		k->sport = oh->type;
		k->dport = oh->version;
		r->hdr_len = off + olen;
		return;
	}
	case IPPROTO_IGMP_: {
		PKT_HDR(p, off, struct igmp_hdr, gh);
		if (!gh || off + sizeof(*gh) > end)
			goto malformed;
		k->sport = gh->type;
		r->hdr_len = off + sizeof(*gh);
		return;
	}
	default:
		/* Counted under its protocol number, without ports. */
		return;
	}
malformed:
	k->flags |= FLOW_F_MALFORMED;
}

/*
 * Parses an IPv4 header at off. Returns where its L4 header starts, or 0
 * when there is none to parse (a later fragment, a broken IP header).
 */
static __always_inline __u32 parse_ipv4(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	PKT_HDR(p, off, struct ipv4_hdr, ih);
	if (!ih)
		goto malformed;
	__u32 ihl = (ih->ver_ihl & 0x0F) * 4;
	if ((ih->ver_ihl >> 4) != 4 || ihl < sizeof(*ih))
		goto malformed;
	/* 0 is what TSO and BIG TCP packets carry: the packet is the frame. */
	__u32 tot = bpf_ntohs(ih->tot_len);
	if (tot && tot < ihl)
		goto malformed;
	if (ihl > sizeof(*ih) && !hdr_whole(p, off, ihl, L3_END_FRAME))
		goto malformed;

	*(__be32 *)k->saddr = ih->saddr;
	*(__be32 *)k->daddr = ih->daddr;
	k->proto = ih->proto;
	__u32 end = tot ? off + tot : L3_END_FRAME;
	r->pkt_end = end;
	if (ih->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)) {
		/* Its payload continues an earlier fragment: no ports to read. */
		k->flags |= FLOW_F_FRAGMENT;
		r->hdr_len = off + ihl;
		return 0;
	}
	return off + ihl;
malformed:
	k->flags |= FLOW_F_MALFORMED;
	return 0;
}

/* IPv6 extension headers the parser steps over to reach the L4 header. */
static __always_inline int ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_ ||
	       nh == IPPROTO_AH_ || nh == IPPROTO_FRAGMENT_;
}

/*
 * Parses an IPv6 header and its extension headers at off. Returns where
 * the L4 header starts, or 0 when there is none to parse.
 */
static __always_inline __u32 parse_ipv6(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	PKT_HDR(p, off, struct ipv6_hdr, ih);
	if (!ih || (ih->ver_tc_flow & bpf_htonl(0xF0000000)) != bpf_htonl(0x60000000)) {
		k->flags |= FLOW_F_MALFORMED;
		return 0;
	}
	__builtin_memcpy(k->saddr, ih->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, ih->daddr, sizeof(k->daddr));
	/* 0: a jumbogram, or a BIG TCP packet; either way the packet is the frame. */
	__u32 plen = bpf_ntohs(ih->payload_len);
	off += sizeof(*ih);
	__u32 end = plen ? off + plen : L3_END_FRAME;
	r->pkt_end = end;

	__u8 nh = ih->nexthdr;
	for (int i = 0; i < MAX_IPV6_EXT && ipv6_is_ext(nh); i++) {
		k->proto = nh;
		r->hdr_len = off;
		if (off > MAX_HDR_OFF)
			break; /* past the bytes the parser reads: see below */
		if (nh == IPPROTO_FRAGMENT_) {
			PKT_HDR(p, off, struct ipv6_frag, fh);
			if (!fh || off + sizeof(*fh) > end) {
				k->flags |= FLOW_F_MALFORMED;
				return 0;
			}
			off += sizeof(*fh);
			nh = fh->nexthdr;
			if (fh->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK)) {
				k->proto = nh;
				k->flags |= FLOW_F_FRAGMENT;
				r->hdr_len = off;
				return 0;
			}
			continue;
		}
		PKT_HDR(p, off, struct ipv6_ext, eh);
		if (!eh) {
			k->flags |= FLOW_F_MALFORMED;
			return 0;
		}
		/* AH counts 4-byte units minus 2, and holds at least its 12 fixed bytes; the others, 8-byte units minus 1. */
		__u32 elen = nh == IPPROTO_AH_ ? ((__u32)eh->len + 2) * 4 : ((__u32)eh->len + 1) * 8;
		if (elen < sizeof(struct ah_hdr) && nh == IPPROTO_AH_) {
			k->flags |= FLOW_F_MALFORMED;
			return 0;
		}
		nh = eh->nexthdr;
		if (!hdr_whole(p, off, elen, end)) {
			k->flags |= FLOW_F_MALFORMED;
			return 0;
		}
		off += elen;
	}
	k->proto = nh;
	r->hdr_len = off;
	if (ipv6_is_ext(nh) || off > MAX_HDR_OFF) {
		/*
		 * Still inside the chain after MAX_IPV6_EXT headers, or the next
		 * header starts past the MAX_HDR_OFF bytes the parser reads: the
		 * chain is too deep to follow. Count it, and say so.
		 */
		k->flags |= FLOW_F_DEEP_CHAIN;
		return 0;
	}
	return off;
}

/* Parses an IP packet that starts at off, as cgroup_skb programs see it. */
static __always_inline void parse_l3(const struct pkt *p, __u32 off, __u16 eth_proto, struct parse_result *r)
{
	__u32 l4 = 0;

	r->key.eth_proto = eth_proto;
	r->hdr_len = off;
	if (eth_proto == ETH_P_IPV4)
		l4 = parse_ipv4(p, off, r);
	else if (eth_proto == ETH_P_IPV6_)
		l4 = parse_ipv6(p, off, r);
	/* One copy of the L4 parser for both families: half the verifier's work. */
	if (l4)
		parse_l4(p, l4, r->pkt_end, r);
}

/*
 * Parses an ARP packet at off: the opcode goes into sport and, for IPv4
 * ARP, the sender and target protocol addresses into saddr and daddr.
 * Other hardware types (hlen) are fine; other protocols keep no addresses.
 */
static __always_inline void parse_arp(const struct pkt *p, __u32 off, struct parse_result *r)
{
	struct flow_key *k = &r->key;

	r->hdr_len = off;
	PKT_HDR(p, off, struct arp_hdr, ah);
	if (!ah)
		goto malformed;
	__u32 hlen = ah->hlen;
	__u32 alen = sizeof(*ah) + 2 * hlen + 2 * (__u32)ah->plen;
	if (!hdr_whole(p, off, alen, L3_END_FRAME))
		goto malformed;
	k->sport = bpf_ntohs(ah->op);
	if (ah->ptype == bpf_htons(ETH_P_IPV4) && ah->plen == 4) {
		/* sha[hlen] spa[4] tha[hlen] tpa[4] */
		__be32 spa, tpa;
		__be32 *sp = pkt_ptr(p, off + sizeof(*ah) + hlen, &spa, sizeof(spa));
		__be32 *tp = pkt_ptr(p, off + sizeof(*ah) + 2 * hlen + 4, &tpa, sizeof(tpa));
		if (!sp || !tp)
			goto malformed;
		*(__be32 *)k->saddr = *sp;
		*(__be32 *)k->daddr = *tp;
	}
	r->hdr_len = off + alen;
	return;
malformed:
	k->sport = 0;
	k->flags |= FLOW_F_MALFORMED;
}

/*
 * The common frame in one pass: Ethernet, then IPv4 without options or
 * IPv6 without extension headers, then TCP or UDP, every fixed header in
 * the linear area. Fills r as the full parser would and returns 1.
 * Anything else (a VLAN tag in the frame, IP options, a later fragment,
 * another protocol, a header that is cut short or declares an impossible
 * length, headers beyond the linear area) returns 0 with r untouched, and
 * the full parser reads the frame from the start. Why it pays, and how
 * the tests hold the two to the same answers: docs/bpf.md#the-fast-path.
 */
static __always_inline int parse_fast(const struct pkt *p, struct parse_result *r)
{
	void *data = p->data, *data_end = p->data_end;
	struct eth_hdr *eh = data;
	struct ipv4_hdr *ip4 = data + sizeof(*eh);
	struct ipv6_hdr *ip6 = data + sizeof(*eh);
	__u32 off, end, len;
	__u8 proto;

	if ((void *)(eh + 1) > data_end)
		return 0;
	if (eh->proto == bpf_htons(ETH_P_IPV4)) {
		if ((void *)(ip4 + 1) > data_end || ip4->ver_ihl != 0x45 ||
		    (ip4->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)))
			return 0;
		len = bpf_ntohs(ip4->tot_len);
		if (len && len < sizeof(*ip4))
			return 0;
		off = sizeof(*eh) + sizeof(*ip4);
		end = len ? sizeof(*eh) + len : L3_END_FRAME;
		proto = ip4->proto;
	} else if (eh->proto == bpf_htons(ETH_P_IPV6_)) {
		if ((void *)(ip6 + 1) > data_end ||
		    (ip6->ver_tc_flow & bpf_htonl(0xF0000000)) != bpf_htonl(0x60000000))
			return 0;
		len = bpf_ntohs(ip6->payload_len);
		off = sizeof(*eh) + sizeof(*ip6);
		end = len ? off + len : L3_END_FRAME;
		proto = ip6->nexthdr;
	} else {
		return 0;
	}

	__u16 sport, dport;
	__u32 hdr_len;
	if (proto == IPPROTO_TCP_) {
		struct tcp_hdr *th = data + off;
		if ((void *)(th + 1) > data_end)
			return 0;
		__u32 doff = (th->doff_res >> 4) * 4;
		if (doff < sizeof(*th) || !hdr_whole(p, off, doff, end))
			return 0;
		sport = th->sport;
		dport = th->dport;
		hdr_len = off + doff;
	} else if (proto == IPPROTO_UDP_) {
		struct udp_hdr *uh = data + off;
		if ((void *)(uh + 1) > data_end || off + sizeof(*uh) > end)
			return 0;
		__u16 ulen = bpf_ntohs(uh->len);
		if (ulen && ulen < sizeof(*uh))
			return 0;
		sport = uh->sport;
		dport = uh->dport;
		hdr_len = off + sizeof(*uh);
	} else {
		return 0;
	}

	struct flow_key *k = &r->key;
	if (eh->proto == bpf_htons(ETH_P_IPV4)) {
		k->eth_proto = ETH_P_IPV4;
		*(__be32 *)k->saddr = ip4->saddr;
		*(__be32 *)k->daddr = ip4->daddr;
	} else {
		k->eth_proto = ETH_P_IPV6_;
		__builtin_memcpy(k->saddr, ip6->saddr, sizeof(k->saddr));
		__builtin_memcpy(k->daddr, ip6->daddr, sizeof(k->daddr));
	}
	k->proto = proto;
	k->sport = bpf_ntohs(sport);
	k->dport = bpf_ntohs(dport);
	r->hdr_len = hdr_len;
	r->pkt_end = end;
	return 1;
}

/*
 * The same packet read again from its context, behind a compiler barrier:
 * packet pointers that carry none of the bounds a failed parse_fast
 * proved. Each way out of parse_fast proves others, and with them the
 * verifier checked the full parser once per way out: three times the
 * instructions, past its limit at TC.
 */
static __always_inline struct pkt pkt_reread(const struct pkt *p)
{
	asm volatile("" ::: "memory");
	return p->kind == PKT_XDP ? xdp_pkt(p->ctx) : skb_pkt(p->ctx);
}

/*
 * Parses an Ethernet frame. A VLAN tag that the kernel already moved into
 * metadata arrives in r->key.vlan; tags still in the frame are skipped, and
 * the first one names the VLAN when the metadata had none. arp_detail says
 * whether ARP is broken down by opcode and addresses (--no-arp clears it):
 * without it, every ARP frame of a VLAN and direction shares one row.
 * fast says whether parse_fast reads the common frame first.
 */
static __always_inline void parse_eth(const struct pkt *p, struct parse_result *r, _Bool arp_detail, _Bool fast)
{
	if (fast && parse_fast(p, r))
		return;
	struct pkt full = pkt_reread(p);
	p = &full;

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
	if (proto == ETH_P_ARP_) {
		r->key.eth_proto = proto;
		r->hdr_len = off;
		if (arp_detail)
			parse_arp(p, off, r);
		return;
	}
	parse_l3(p, off, proto, r);
}
