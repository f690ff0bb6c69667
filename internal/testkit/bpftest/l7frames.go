package bpftest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/http2"

	"github.com/pktstat-bpf/pktstat-bpf/internal/flow"
)

// Application payloads for the L7 cases. Where Go has an implementation of
// the protocol (HTTP/1.1, HTTP/2 framing, TLS, DNS), the bytes come from it;
// the others are laid out as their specifications say, field by field.
// None of them runs on its usual port: detection must not look at ports.

// L7Payload is one application message and the protocol it belongs to.
type L7Payload struct {
	Name  string
	L7    flow.L7 // L7Unknown for look-alikes that must not be recognised
	UDP   bool    // sent over UDP, else TCP
	Bytes []byte
}

// HTTPRequest is what net/http writes for a GET.
func HTTPRequest(tb testing.TB) []byte {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://198.19.0.2:5201/index.html", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("User-Agent", "pktstat-bpf-test")
	return wire(tb, req.Write)
}

func httpPost(tb testing.TB) []byte {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://198.19.0.2:5201/api", strings.NewReader(`{"k":1}`))
	if err != nil {
		tb.Fatal(err)
	}
	return wire(tb, req.Write)
}

func httpResponse(tb testing.TB) []byte {
	tb.Helper()
	resp := &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/plain"}}, ContentLength: 2, Body: io.NopCloser(strings.NewReader("ok"))}
	return wire(tb, resp.Write)
}

// http2Client is the client connection preface: the magic, then SETTINGS,
// as golang.org/x/net/http2 frames them.
func http2Client(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	if err := http2.NewFramer(&b, nil).WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// http2Server is a server's first frame: SETTINGS.
func http2Server(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 14}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// tlsFirstRecords runs a crypto/tls handshake over in-memory pipes and
// returns the first record each side sent: the ClientHello and the
// ServerHello. curves limits the client's key shares (nil: Go's defaults,
// whose post-quantum share makes a ClientHello larger than one segment).
func tlsFirstRecords(tb testing.TB, curves []tls.CurveID) (client, server []byte) {
	tb.Helper()
	cert := SelfSignedCert(tb)

	// client <-> (cr | rc, recording) <-> server
	cEnd, rc := net.Pipe()
	rs, sEnd := net.Pipe()
	defer func() {
		for _, c := range []net.Conn{cEnd, rc, rs, sEnd} {
			c.Close()
		}
	}()
	go tls.Client(cEnd, &tls.Config{ServerName: "example.test", InsecureSkipVerify: true, CurvePreferences: curves}).Handshake()
	go tls.Server(sEnd, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range []net.Conn{rc, rs} {
		if err := c.SetDeadline(deadline); err != nil {
			tb.Fatal(err)
		}
	}
	client = readRecord(tb, rc)
	if _, err := rs.Write(client); err != nil {
		tb.Fatalf("pass the ClientHello on: %v", err)
	}
	server = readRecord(tb, rs)
	return client, server
}

// readRecord reads one TLS record: its 5-byte header, then its body.
func readRecord(tb testing.TB, r io.Reader) []byte {
	tb.Helper()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		tb.Fatalf("read a TLS record header: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(r, body); err != nil {
		tb.Fatalf("read a TLS record body: %v", err)
	}
	return append(hdr, body...)
}

// checkTLSHandshake has gopacket decode rec as TLS: one handshake record.
func checkTLSHandshake(tb testing.TB, rec []byte) {
	tb.Helper()
	var t layers.TLS
	if err := t.DecodeFromBytes(rec, gopacket.NilDecodeFeedback); err != nil || len(t.Handshake) != 1 {
		tb.Fatalf("gopacket does not decode the record as one TLS handshake record (%d): %v", len(t.Handshake), err)
	}
}

// DNSQuery is a DNS query for example.test A, as x/net's dnsmessage builds
// it, with an EDNS record.
func DNSQuery(tb testing.TB) []byte {
	tb.Helper()
	return dnsMessage(tb, false)
}

func dnsMessage(tb testing.TB, response bool) []byte {
	tb.Helper()
	name := dnsmessage.MustNewName("example.test.")
	bld := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x4d2, Response: response, RecursionDesired: true, RecursionAvailable: response})
	bld.EnableCompression()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(bld.StartQuestions())
	must(bld.Question(dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}))
	if response {
		must(bld.StartAnswers())
		must(bld.AResource(dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{198, 19, 0, 2}}))
	}
	must(bld.StartAdditionals())
	var opt dnsmessage.ResourceHeader
	must(opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false))
	must(bld.OPTResource(opt, dnsmessage.OPTResource{}))
	msg, err := bld.Finish()
	must(err)
	var d layers.DNS
	if err := d.DecodeFromBytes(msg, gopacket.NilDecodeFeedback); err != nil || len(d.Questions) != 1 {
		tb.Fatalf("gopacket does not decode the DNS message: %v", err)
	}
	return msg
}

// withLen16 prefixes b with its length, as DNS over TCP does (RFC 1035 4.2.2).
func withLen16(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// dtlsHello is a DTLS 1.2 record (RFC 6347 4.1) holding a ClientHello
// (typ 1) or HelloVerifyRequest (typ 3), unfragmented.
func dtlsHello(typ byte) []byte {
	var body []byte
	switch typ {
	case 1:
		body = append([]byte{0xFE, 0xFD}, make([]byte, 32)...)  // client_version, random
		body = append(body, 0, 0)                               // session_id, cookie: empty
		body = append(body, 0, 2, 0xC0, 0x2B, 1, 0)             // one cipher suite; null compression
		body = append(body, 0, 8, 0, 0x0A, 0, 4, 0, 2, 0, 0x17) // extensions: supported_groups [secp256r1]
	case 3:
		body = append([]byte{0xFE, 0xFF, 8}, 1, 2, 3, 4, 5, 6, 7, 8) // server_version, 8-byte cookie
	}
	// msg_type, length(3), message_seq(2), fragment_offset(3), fragment_length(3)
	hs := []byte{typ, 0, 0, byte(len(body)), 0, 0, 0, 0, 0, 0, 0, byte(len(body))}
	hs = append(hs, body...)
	rec := []byte{0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(hs)))
	return append(rec, hs...)
}

// quicInitial is a client's first datagram (RFC 9000 17.2.2, 14.1): a long
// header Initial of the given version, padded to 1200 bytes. Version 2
// (RFC 9369 3.2) numbers the Initial packet type 1 instead of 0.
func quicInitial(version uint32) []byte {
	first := byte(0xC3) // long header, fixed bit, Initial (v1), 4-byte packet number
	if version == 0x6b3343cf {
		first = 0xD3
	}
	b := []byte{first}
	b = binary.BigEndian.AppendUint32(b, version)
	b = append(b, 8, 1, 2, 3, 4, 5, 6, 7, 8) // destination connection ID
	b = append(b, 8, 9, 9, 9, 9, 9, 9, 9, 9) // source connection ID
	b = append(b, 0)                         // token length
	rest := 1200 - len(b) - 2
	b = append(b, 0x40|byte(rest>>8), byte(rest)) // length, a 2-byte varint
	for len(b) < 1200 {
		b = append(b, byte(len(b)))
	}
	return b
}

// rdpConnection is an X.224 Connection Request with a routing cookie and
// an RDP negotiation request (MS-RDPBCGR 2.2.1.1), or the server's
// Connection Confirm with a negotiation response (2.2.1.2), in a TPKT.
func rdpConnection(confirm bool) []byte {
	var x224 []byte
	if confirm {
		x224 = []byte{0xD0, 0, 0, 0x12, 0x34, 0}
		x224 = append(x224, 2, 0, 8, 0, 2, 0, 0, 0) // RDP_NEG_RSP: TLS
	} else {
		x224 = []byte{0xE0, 0, 0, 0, 0, 0}
		x224 = append(x224, "Cookie: mstshash=tester\r\n"...)
		x224 = append(x224, 1, 0, 8, 0, 3, 0, 0, 0) // RDP_NEG_REQ: TLS, CredSSP
	}
	tpkt := []byte{3, 0}
	tpkt = binary.BigEndian.AppendUint16(tpkt, uint16(4+1+len(x224)))
	return append(append(tpkt, byte(len(x224))), x224...)
}

// pgStartup is a PostgreSQL StartupMessage, protocol 3.0 (protocol docs,
// 55.7).
func pgStartup() []byte {
	params := "user\x00postgres\x00database\x00app\x00application_name\x00psql\x00\x00"
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	b = binary.BigEndian.AppendUint32(b, 3<<16)
	return append(b, params...)
}

// mqttConnect is an MQTT CONNECT (3.1.1: 3.1; 5.0: 3.1) with client ID
// "sensor-1" and keep-alive 60.
func mqttConnect(level byte) []byte {
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', level, 0x02, 0, 60}
	if level == 5 {
		vh = append(vh, 0) // no properties
	}
	vh = append(vh, 0, 8)
	vh = append(vh, "sensor-1"...)
	return append([]byte{0x10, byte(len(vh))}, vh...)
}

// mqttConnectLong is a CONNECT whose remaining length takes two bytes.
func mqttConnectLong() []byte {
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 200}
	vh = append(vh, bytes.Repeat([]byte{'x'}, 200)...)
	n := len(vh)
	return append([]byte{0x10, byte(n&0x7F) | 0x80, byte(n >> 7)}, vh...)
}

// wireguard is a WireGuard message (whitepaper 5.4) of the given type,
// sized as the protocol fixes it; type 4 carries 32 bytes of data.
func wireguard(typ byte) []byte {
	size := map[byte]int{1: 148, 2: 92, 3: 64, 4: 16 + 32}[typ]
	b := make([]byte, size)
	b[0] = typ
	for i := 4; i < size; i++ {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// memcachedGet is a binary-protocol GET of "foo" (magic 0x80), or its
// response (0x81) with 4 bytes of flags and the value "bar".
func memcachedGet(response bool) []byte {
	h := make([]byte, 24)
	if response {
		h[0], h[4] = 0x81, 4
		binary.BigEndian.PutUint32(h[8:], 4+3)
		return append(append(h, 0, 0, 0, 0), "bar"...)
	}
	h[0] = 0x80
	binary.BigEndian.PutUint16(h[2:], 3)
	binary.BigEndian.PutUint32(h[8:], 3)
	return append(h, "foo"...)
}

// L7Payloads returns one message of every protocol detection knows, from
// both sides where the protocol lets the responder be recognised, and
// look-alikes that must not be.
func L7Payloads(tb testing.TB) []L7Payload {
	tb.Helper()
	chello, shello := tlsFirstRecords(tb, []tls.CurveID{tls.X25519})
	checkTLSHandshake(tb, chello)
	checkTLSHandshake(tb, shello)
	bigHello, _ := tlsFirstRecords(tb, nil)
	checkTLSHandshake(tb, bigHello)
	if len(bigHello) > 1400 {
		bigHello = bigHello[:1400] // the first segment of a ClientHello that needs two
	}
	dnsResp := dnsMessage(tb, true)
	return []L7Payload{
		{"http-get", flow.L7HTTP, false, HTTPRequest(tb)},
		{"http-post", flow.L7HTTP, false, httpPost(tb)},
		{"http-response", flow.L7HTTP, false, httpResponse(tb)},
		{"http2-preface", flow.L7HTTP2, false, http2Client(tb)},
		{"http2-server-settings", flow.L7HTTP2, false, http2Server(tb)},
		{"tls-client-hello", flow.L7TLS, false, chello},
		{"tls-server-hello", flow.L7TLS, false, shello},
		{"tls-client-hello-first-segment", flow.L7TLS, false, bigHello},
		{"dtls-client-hello", flow.L7DTLS, true, dtlsHello(1)},
		{"dtls-hello-verify", flow.L7DTLS, true, dtlsHello(3)},
		{"quic-v1-initial", flow.L7QUIC, true, quicInitial(1)},
		{"quic-v2-initial", flow.L7QUIC, true, quicInitial(0x6b3343cf)},
		{"ssh-client", flow.L7SSH, false, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")},
		{"ssh-server-1.99", flow.L7SSH, false, []byte("SSH-1.99-Cisco-1.25\r\n")},
		{"rdp-connection-request", flow.L7RDP, false, rdpConnection(false)},
		{"rdp-connection-confirm", flow.L7RDP, false, rdpConnection(true)},
		{"postgres-ssl-request", flow.L7Postgres, false, []byte{0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F}},
		{"postgres-startup", flow.L7Postgres, false, pgStartup()},
		{"mqtt-connect-3.1.1", flow.L7MQTT, false, mqttConnect(4)},
		{"mqtt-connect-5", flow.L7MQTT, false, mqttConnect(5)},
		{"mqtt-connect-long", flow.L7MQTT, false, mqttConnectLong()},
		{"mqtt-connack", flow.L7MQTT, false, []byte{0x20, 2, 0, 0}},
		{"wireguard-initiation", flow.L7WireGuard, true, wireguard(1)},
		{"wireguard-response", flow.L7WireGuard, true, wireguard(2)},
		{"wireguard-transport", flow.L7WireGuard, true, wireguard(4)},
		{"memcached-get", flow.L7Memcached, false, memcachedGet(false)},
		{"memcached-response", flow.L7Memcached, false, memcachedGet(true)},
		{"dns-query", flow.L7DNS, true, DNSQuery(tb)},
		{"dns-response", flow.L7DNS, true, dnsResp},
		{"dns-tcp-query", flow.L7DNS, false, withLen16(DNSQuery(tb))},

		// Look-alikes.
		{"not-http-method", flow.L7Unknown, false, []byte("GETX /index.html HTTP/1.1\r\n\r\n")},
		{"http-over-udp", flow.L7Unknown, true, HTTPRequest(tb)},
		{"tls-bad-version", flow.L7Unknown, false, append([]byte{0x16, 0x03, 0x09}, chello[3:]...)},
		{"tls-alert", flow.L7Unknown, false, []byte{0x15, 0x03, 0x03, 0, 2, 2, 40}},
		{"wireguard-wrong-size", flow.L7Unknown, true, wireguard(1)[:100]},
		{"quic-short-header", flow.L7Unknown, true, append([]byte{0x43}, quicInitial(1)[1:]...)},
		{"quic-unknown-version", flow.L7Unknown, true, append([]byte{0xC3, 0xff, 0, 0, 0x1d}, quicInitial(1)[5:]...)},
		{"postgres-wrong-length", flow.L7Unknown, false, []byte{0, 0, 0, 9, 0x04, 0xD2, 0x16, 0x2F}},
		{"counting-bytes-tcp", flow.L7Unknown, false, Payload(100)},
		{"counting-bytes-udp", flow.L7Unknown, true, Payload(100)},
	}
}

// L7Frame puts payload into a frame of the test flow with source port
// sport: IPv4 or IPv6, TCP (PSH, ACK) or UDP.
func L7Frame(tb testing.TB, payload []byte, udp, v6 bool, sport uint16) []byte {
	tb.Helper()
	ls := []gopacket.SerializableLayer{Eth(layers.EthernetTypeIPv4)}
	if v6 {
		ls[0] = Eth(layers.EthernetTypeIPv6)
	}
	proto := layers.IPProtocolTCP
	if udp {
		proto = layers.IPProtocolUDP
	}
	if v6 {
		ls = append(ls, IPv6(proto))
	} else {
		ls = append(ls, IPv4(proto))
	}
	if udp {
		u := UDP()
		u.SrcPort = layers.UDPPort(sport)
		ls = append(ls, u)
	} else {
		t := TCP()
		t.SrcPort = layers.TCPPort(sport)
		ls = append(ls, t)
	}
	return Frame(tb, append(ls, gopacket.Payload(payload))...)
}

// L7Cases are the L7 payloads in frames, over IPv4 and IPv6, each flow
// with a source port of its own, and a few in VLAN and extension-header
// wrappings.
func L7Cases(tb testing.TB) []Case {
	tb.Helper()
	var cases []Case
	port := uint16(41000)
	for _, p := range L7Payloads(tb) {
		for _, v6 := range []bool{false, true} {
			fam := "4"
			if v6 {
				fam = "6"
			}
			cases = append(cases, Case{Name: fmt.Sprintf("l7-%s-ipv%s", p.Name, fam), Ports: true, L7: p.L7,
				Frame: L7Frame(tb, p.Bytes, p.UDP, v6, port)})
			port++
		}
	}
	get := HTTPRequest(tb)
	u := TCP()
	u.SrcPort = layers.TCPPort(port)
	cases = append(cases,
		Case{Name: "l7-http-qinq", VLAN: 300, Ports: true, L7: flow.L7HTTP, Frame: Frame(tb, Eth(layers.EthernetTypeQinQ),
			&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, IPv4(layers.IPProtocolTCP), u, gopacket.Payload(get))},
		Case{Name: "l7-dns-ipv6-ext-chain", Ports: true, L7: flow.L7DNS, Frame: Frame(tb, Eth(layers.EthernetTypeIPv6),
			IPv6(layers.IPProtocolIPv6HopByHop), ExtHeader(layers.IPProtocolIPv6Destination, 0, false, 0),
			ExtHeader(layers.IPProtocolUDP, 1, false, 0), &layers.UDP{SrcPort: layers.UDPPort(port + 1), DstPort: dport}, gopacket.Payload(DNSQuery(tb)))},
		// A SYN: no payload, the verdict waits for the next packet.
		Case{Name: "l7-tcp-syn-pending", Ports: true, Frame: Frame(tb, Eth(layers.EthernetTypeIPv4), IPv4(layers.IPProtocolTCP),
			&layers.TCP{SrcPort: layers.TCPPort(port + 2), DstPort: dport, SYN: true, Window: 64240})},
	)
	return cases
}

// SelfSignedCert is a self-signed TLS certificate for example.test.
func SelfSignedCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// wire is what write writes: a message in its wire format.
func wire(tb testing.TB, write func(io.Writer) error) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}
