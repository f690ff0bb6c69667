/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Application protocol detection from a flow's payload, not from its port:
 * the detectors, the global functions that run them (pktstat_l7_skb,
 * pktstat_l7_xdp) and a packet's verdict (l7_verdict), which account_l7.h
 * stores in the flow's row. When and how it runs: docs/bpf.md#l7-detection.
 */
#pragma once

#include "parse.h"

/* Payload bytes the detectors look at: the longest fixed prefix (HTTP/2's preface). */
#define L7_PEEK 24
/* A flow without payload on this CPU for this many packets stops looking. */
#define L7_MAX_EMPTY 16

static __always_inline __u16 be16_at(const __u8 *b)
{
	return ((__u16)b[0] << 8) | b[1];
}

static __always_inline __u32 be32_at(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

/* Whether b starts with the n bytes of s, a string literal. */
#define L7_PREFIX(b, s) l7_prefix(b, s, sizeof(s) - 1)

static __always_inline int l7_prefix(const __u8 *b, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (b[i] != (__u8)s[i])
			return 0;
	return 1;
}

/* HTTP/1.x: a request line's method and space, or a status line. */
static __always_inline int l7_http1(const __u8 *b, __u32 n)
{
	if (n < 8)
		return 0;
	switch (b[0]) {
	case 'G':
		return L7_PREFIX(b, "GET ");
	case 'P':
		return L7_PREFIX(b, "POST ") || L7_PREFIX(b, "PUT ") || L7_PREFIX(b, "PATCH ");
	case 'H':
		return L7_PREFIX(b, "HEAD ") || L7_PREFIX(b, "HTTP/1.");
	case 'D':
		return L7_PREFIX(b, "DELETE ");
	case 'O':
		return L7_PREFIX(b, "OPTIONS ");
	case 'C':
		return L7_PREFIX(b, "CONNECT ");
	case 'T':
		return L7_PREFIX(b, "TRACE ");
	}
	return 0;
}

/*
 * HTTP/2 cleartext: the client's connection preface (RFC 9113 3.4), or the
 * server's first frame, which must be SETTINGS on stream 0 (a multiple of
 * 6 bytes long, flags 0: not an ACK).
 */
static __always_inline int l7_http2(const __u8 *b, __u32 n)
{
	if (n >= 24 && L7_PREFIX(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		return 1;
	if (n < 9)
		return 0;
	__u32 len = ((__u32)b[0] << 16) | ((__u32)b[1] << 8) | b[2];
	return b[3] == 0x04 && b[4] == 0 && be32_at(b + 5) == 0 && len % 6 == 0 && len <= 16384;
}

/* TLS: a handshake record (type 22, version 3.x) holding a ClientHello or ServerHello. */
static __always_inline int l7_tls(const __u8 *b, __u32 n)
{
	if (n < 6)
		return 0;
	__u16 rlen = be16_at(b + 3);
	return b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04 && rlen >= 4 && rlen <= 16384 + 2048 &&
	       (b[5] == 0x01 || b[5] == 0x02);
}

/*
 * DTLS 1.0, 1.2 or 1.3 (RFC 6347, 9147): a handshake record (type 22,
 * version 0xfeff, 0xfefd or 0xfefc, epoch 0) with a ClientHello,
 * ServerHello or HelloVerifyRequest that fits in the datagram.
 */
static __always_inline int l7_dtls(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 14)
		return 0;
	__u32 rlen = be16_at(b + 11);
	return b[0] == 0x16 && b[1] == 0xFE && (b[2] == 0xFF || b[2] == 0xFD || b[2] == 0xFC) &&
	       be16_at(b + 3) == 0 && rlen >= 12 && rlen + 13 <= plen && b[13] >= 1 && b[13] <= 3;
}

/*
 * QUIC (RFC 9000 17.2, RFC 9369): a long-header packet (header form and
 * fixed bit set) of version 1 or 2, with a connection ID of at most 20
 * bytes. Both sides start with Initial packets.
 */
static __always_inline int l7_quic(const __u8 *b, __u32 n)
{
	if (n < 7)
		return 0;
	__u32 ver = be32_at(b + 1);
	return (b[0] & 0xC0) == 0xC0 && (ver == 0x00000001 || ver == 0x6b3343cf) && b[5] <= 20;
}

/* SSH: the identification string both sides send first (RFC 4253 4.2). */
static __always_inline int l7_ssh(const __u8 *b, __u32 n)
{
	return n >= 8 && L7_PREFIX(b, "SSH-") && (b[4] == '1' || b[4] == '2') && b[5] == '.';
}

/*
 * RDP: a TPKT (version 3) holding an X.224 Connection Request (0xE0) or
 * Connection Confirm (0xD0) whose length indicator covers the rest of it.
 */
static __always_inline int l7_rdp(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 6)
		return 0;
	__u32 tlen = be16_at(b + 2);
	return b[0] == 0x03 && b[1] == 0x00 && tlen >= 11 && tlen <= plen && b[4] == tlen - 5 &&
	       (b[5] == 0xE0 || b[5] == 0xD0);
}

/*
 * PostgreSQL: a client's first message, which has no type byte: its length
 * (the whole payload), then protocol 3.x, or the SSL, GSS encryption or
 * cancel request codes.
 */
static __always_inline int l7_postgres(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 8)
		return 0;
	__u32 len = be32_at(b), code = be32_at(b + 4);
	if (len != plen)
		return 0;
	if (len == 8)
		return code == 80877103 || code == 80877104; /* SSLRequest, GSSENCRequest */
	if (len == 16)
		return code == 80877102 || code >> 16 == 3; /* CancelRequest, or a short startup */
	return len > 8 && len <= 10000 && code >> 16 == 3 && (code & 0xFFFF) <= 2;
}

/* MQTT's protocol name: "MQTT" (3.1.1 and 5) or "MQIsdp" (3.1), with its length. */
static __always_inline int l7_mqtt_name(const __u8 *v)
{
	return v[0] == 0 && ((v[1] == 4 && v[2] == 'M' && v[3] == 'Q' && v[4] == 'T' && v[5] == 'T') ||
			     (v[1] == 6 && v[2] == 'M' && v[3] == 'Q' && v[4] == 'I' && v[5] == 's'));
}

/*
 * MQTT: a CONNECT (type 1, remaining length as a variable-length integer,
 * then the protocol name "MQTT" of 3.1.1 and 5, or "MQIsdp" of 3.1), or a
 * CONNACK (type 2) that is the whole payload.
 */
static __always_inline int l7_mqtt(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 4)
		return 0;
	if (b[0] == 0x20)
		return b[1] >= 2 && (__u32)b[1] + 2 == plen && (b[2] & 0xFE) == 0 && (b[3] < 6 || b[3] >= 0x80);
	if (b[0] != 0x10 || n < 12)
		return 0;
	/* The protocol name follows 1 to 4 remaining-length bytes. */
	if (!(b[1] & 0x80))
		return l7_mqtt_name(b + 2);
	if (!(b[2] & 0x80))
		return l7_mqtt_name(b + 3);
	if (!(b[3] & 0x80))
		return l7_mqtt_name(b + 4);
	if (!(b[4] & 0x80))
		return l7_mqtt_name(b + 5);
	return 0;
}

/*
 * WireGuard: a message type (1 to 4) and three zero bytes; the handshake
 * messages have fixed sizes, transport data is padded to 16 bytes.
 */
static __always_inline int l7_wireguard(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 4 || b[1] || b[2] || b[3])
		return 0;
	switch (b[0]) {
	case 1:
		return plen == 148;
	case 2:
		return plen == 92;
	case 3:
		return plen == 64;
	case 4:
		return plen >= 32 && plen % 16 == 0;
	}
	return 0;
}

/*
 * memcached's binary protocol: a 24-byte header with the request (0x80) or
 * response (0x81) magic, a known opcode, raw data type, and a body that
 * holds at least its extras and key.
 */
static __always_inline int l7_memcached(const __u8 *b, __u32 n)
{
	if (n < 24 || (b[0] != 0x80 && b[0] != 0x81) || b[5] != 0 || b[1] > 0x48)
		return 0;
	__u32 body = be32_at(b + 8);
	return (__u32)b[4] + be16_at(b + 2) <= body && body <= (1 << 20);
}

/*
 * DNS: a message header with one question, a standard opcode (query,
 * status, notify, update), Z clear; a query carries no answers; the
 * question's first label is at most 63 bytes.
 */
static __always_inline int l7_dns_hdr(const __u8 *b, __u32 n, __u32 plen)
{
	if (n < 13 || plen < 17)
		return 0;
	__u16 flags = be16_at(b + 2);
	__u32 opcode = (flags >> 11) & 0xF;
	if (be16_at(b + 4) != 1 || (flags & 0x0040) || b[12] > 63)
		return 0;
	if (opcode != 0 && opcode != 2 && opcode != 4 && opcode != 5)
		return 0;
	__u16 an = be16_at(b + 6), ns = be16_at(b + 8), ar = be16_at(b + 10);
	if (!(flags & 0x8000))
		return opcode != 0 || (an == 0 && ns == 0 && ar <= 2);
	return (flags & 0xF) <= 10 && an <= 512 && ns <= 512 && ar <= 512;
}

/* DNS over TCP: a 2-byte length that covers the rest of the payload. */
static __always_inline int l7_dns_tcp(const __u8 *b, __u32 n, __u32 plen)
{
	return n >= 15 && plen >= 2 && be16_at(b) == plen - 2 && l7_dns_hdr(b + 2, n - 2, plen - 2);
}

struct l7_words {
	__u64 w[L7_PEEK / 8];
};

/*
 * Copies up to L7_PEEK bytes of payload at off into buf and returns how
 * many it copied (plen, capped), or 0 when they cannot be read.
 */
static __always_inline __u32 l7_peek(const struct pkt *p, __u64 off, __u32 plen, __u8 *buf)
{
	__u32 n = plen < L7_PEEK ? plen : L7_PEEK;
	if (off > MAX_HDR_OFF || n == 0)
		return 0;
	__u8 *ptr = p->data + off;
	if ((void *)(ptr + L7_PEEK) <= p->data_end) {
		/*
		 * Three 8-byte loads, not 24 byte loads: payload sits at any
		 * alignment, which the verifier accepts wherever unaligned
		 * access is cheap (x86-64, arm64: the targets we build for).
		 */
		*(struct l7_words *)buf = *(const struct l7_words *)ptr;
		return n;
	}
	if (p->kind == PKT_SKB) {
		/*
		 * The verifier must see the bounds on the very register passed,
		 * and older ones learn no lower bound from len != 0 (which is
		 * what clang makes of len < 1): 6.1 refuses the call as a
		 * possible zero-sized read. A mask and an add give [1, 32]
		 * whatever the verifier knows of n; the test then caps it.
		 */
		__u64 len = n;
		asm volatile("" : "+r"(len));
		len = ((len - 1) & 31) + 1;
		if (len > L7_PEEK)
			return 0;
		return bpf_skb_load_bytes(p->ctx, off, buf, len) == 0 ? n : 0;
	}
	/* XDP: a short payload at the end of the linear area, byte by byte. */
	for (int i = 0; i < L7_PEEK; i++) {
		if (i >= n)
			break;
		if ((void *)(ptr + i + 1) > p->data_end)
			return 0;
		buf[i] = ptr[i];
	}
	return n;
}

/*
 * Returns what the payload between off and end says: a protocol, L7_NONE,
 * or L7_UNCHECKED when the packet has no payload and the flow (seen
 * packets on this CPU so far) may still show some.
 */
static __always_inline enum l7_proto l7_detect(const struct pkt *p, __u64 off, __u64 end, __u8 proto, __u64 seen)
{
	__u64 flen = pkt_len(p);
	if (flen < end)
		end = flen;
	if (off > MAX_HDR_OFF || off < sizeof(struct udp_hdr))
		return L7_NONE;
	if (proto == IPPROTO_UDP_) {
		/* The UDP length bounds the payload too (0: a jumbogram's, no bound). */
		PKT_HDR(p, off - sizeof(struct udp_hdr), struct udp_hdr, uh);
		__u64 ulen = uh ? bpf_ntohs(uh->len) : 0;
		if (ulen && off - sizeof(struct udp_hdr) + ulen < end)
			end = off - sizeof(struct udp_hdr) + ulen;
	}
	if (end <= off)
		return seen >= L7_MAX_EMPTY ? L7_NONE : L7_UNCHECKED;
	__u32 plen = end - off;

	struct l7_words words = {};
	__u8 *b = (__u8 *)&words;
	__u32 n = l7_peek(p, off, plen, b);
	if (!n)
		return L7_NONE;

	if (proto == IPPROTO_UDP_) {
		if (l7_dns_hdr(b, n, plen))
			return L7_DNS;
		if (l7_quic(b, n))
			return L7_QUIC;
		if (l7_dtls(b, n, plen))
			return L7_DTLS;
		if (l7_wireguard(b, n, plen))
			return L7_WIREGUARD;
		return L7_NONE;
	}
	if (l7_http1(b, n))
		return L7_HTTP;
	if (l7_tls(b, n))
		return L7_TLS;
	if (l7_http2(b, n))
		return L7_HTTP2;
	if (l7_ssh(b, n))
		return L7_SSH;
	if (l7_rdp(b, n, plen))
		return L7_RDP;
	if (l7_postgres(b, n, plen))
		return L7_POSTGRES;
	if (l7_mqtt(b, n, plen))
		return L7_MQTT;
	if (l7_memcached(b, n))
		return L7_MEMCACHED;
	if (l7_dns_tcp(b, n, plen))
		return L7_DNS;
	return L7_NONE;
}

/*
 * The detectors as global functions, one per context type: the verifier
 * checks a global function once, on its own, instead of once for every
 * path through the parser that reaches it, and the per-packet code stays
 * small. Only the one a program calls is loaded with it.
 */
__noinline int pktstat_l7_skb(struct __sk_buff *skb, __u64 off, __u64 end, __u32 proto, __u64 seen)
{
	struct pkt p = skb_pkt(skb);
	return l7_detect(&p, off, end, proto, seen);
}

__noinline int pktstat_l7_xdp(struct xdp_md *ctx, __u64 off, __u64 end, __u32 proto, __u64 seen)
{
	struct pkt p = xdp_pkt(ctx);
	return l7_detect(&p, off, end, proto, seen);
}

/*
 * The verdict on a packet of a flow whose protocol is not settled yet:
 * headers with no payload behind them (fragments, malformed or too deep)
 * and protocols other than TCP and UDP settle it at once, as L7_NONE.
 */
static __always_inline enum l7_proto l7_verdict(const struct pkt *p, const struct parse_result *r, __u64 seen)
{
	const struct flow_key *k = &r->key;

	if (k->flags || (k->proto != IPPROTO_TCP_ && k->proto != IPPROTO_UDP_))
		return L7_NONE;
	if (p->kind == PKT_SKB)
		return pktstat_l7_skb(p->ctx, r->hdr_len, r->pkt_end, k->proto, seen);
	return pktstat_l7_xdp(p->ctx, r->hdr_len, r->pkt_end, k->proto, seen);
}
