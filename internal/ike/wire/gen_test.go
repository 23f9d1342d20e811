package wire

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// gen makes random, valid payloads and messages for round-trip tests.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) gen { return gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

// bytes returns n random octets, nil when n is 0 (as Parse returns).
func (g gen) bytes(n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g gen) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }
func (g gen) u8() uint8              { return uint8(g.r.Uint32()) }
func (g gen) u16() uint16            { return uint16(g.r.Uint32()) }
func (g gen) coin() bool             { return g.r.IntN(2) == 0 }

func (g gen) transform() Transform {
	t := Transform{Type: TransformType(g.between(1, 12)), ID: g.u16()}
	if g.coin() {
		t.Type = TransformType(g.u8())
	}
	if g.coin() {
		t.KeyLen = uint16(g.between(1, 0xffff))
	}
	for range g.between(0, 2) {
		a := Attribute{Type: AttributeType(g.r.IntN(0x8000))}
		if a.Type == AttrKeyLength {
			a.Type++
		}
		if a.TV = g.coin(); a.TV {
			a.Value = g.bytes(2)
		} else {
			a.Value = g.bytes(g.between(0, 10))
		}
		t.Attrs = append(t.Attrs, a)
	}
	return t
}

func (g gen) proposal(num uint8) Proposal {
	p := Proposal{Num: num}
	switch g.r.IntN(4) {
	case 0:
		p.Protocol = ProtoIKE
		if g.coin() {
			p.SPI = g.bytes(8)
		}
	case 1:
		p.Protocol = ProtoAH
		p.SPI = g.bytes(4)
	case 2:
		p.Protocol = ProtoESP
		p.SPI = g.bytes(4)
	default:
		p.Protocol = ProtocolID(g.between(4, 255))
		p.SPI = g.bytes(g.between(0, 16))
	}
	for range g.between(1, 6) {
		p.Transforms = append(p.Transforms, g.transform())
	}
	return p
}

func (g gen) sa() *SA {
	sa := new(SA)
	if g.r.IntN(3) == 0 {
		sa.Proposals = []Proposal{g.proposal(uint8(g.between(1, 255)))}
		return sa
	}
	for i := range g.between(1, 4) {
		sa.Proposals = append(sa.Proposals, g.proposal(uint8(i+1)))
	}
	return sa
}

var knownGroups = []KEID{KE_MODP768, KE_MODP1024, KE_MODP1536, KE_MODP2048, KE_MODP3072, KE_MODP4096,
	KE_MODP6144, KE_MODP8192, KE_ECP256, KE_ECP384, KE_ECP521, KE_MODP1024_160, KE_MODP2048_224,
	KE_MODP2048_256, KE_ECP192, KE_ECP224, 27, 28, 29, 30, KE_CURVE25519, KE_CURVE448,
	KE_MLKEM512, KE_MLKEM768, KE_MLKEM1024}

func (g gen) ke() *KE {
	if g.r.IntN(4) == 0 {
		return &KE{Group: KEID(g.between(1000, 0xffff)), Data: g.bytes(g.between(0, 40))}
	}
	grp := knownGroups[g.r.IntN(len(knownGroups))]
	lens := keDataLen(grp)
	return &KE{Group: grp, Data: g.bytes(lens[g.r.IntN(len(lens))])}
}

func (g gen) id() *ID {
	p := &ID{Kind: PayloadIDi}
	if g.coin() {
		p.Kind = PayloadIDr
	}
	switch g.r.IntN(7) {
	case 0:
		p.IDType, p.Data = IDIPv4Addr, g.bytes(4)
	case 1:
		p.IDType, p.Data = IDIPv6Addr, g.bytes(16)
	case 2:
		p.IDType, p.Data = IDFQDN, []byte("gw-"+string(rune('a'+g.r.IntN(26)))+".example")
	case 3:
		p.IDType, p.Data = IDRFC822, []byte("alice@example.org")
	case 4:
		p.IDType, p.Data = IDDERASN1DN, g.bytes(g.between(1, 80))
	case 5:
		p.IDType, p.Data = IDKeyID, g.bytes(g.between(0, 20))
	default:
		p.IDType, p.Data = IDType(g.between(12, 255)), g.bytes(g.between(0, 20))
	}
	return p
}

func (g gen) notify() *Notify {
	p := &Notify{NotifyType: NotifyType(g.u16()), Data: g.bytes(g.between(0, 40))}
	switch g.r.IntN(4) {
	case 0:
	case 1:
		p.Protocol, p.SPI = ProtoIKE, g.bytes(8)
	case 2:
		p.Protocol, p.SPI = ProtocolID(g.between(2, 3)), g.bytes(4)
	default:
		p.Protocol, p.SPI = ProtocolID(g.between(4, 255)), g.bytes(g.between(1, 12))
	}
	return p
}

func (g gen) delete() *Delete {
	if g.coin() {
		return &Delete{Protocol: ProtoIKE}
	}
	p := &Delete{Protocol: ProtocolID(g.between(2, 3))}
	for range g.between(0, 5) {
		p.SPIs = append(p.SPIs, g.bytes(4))
	}
	return p
}

func (g gen) addr(v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte(g.bytes(16)))
	}
	return netip.AddrFrom4([4]byte(g.bytes(4)))
}

func (g gen) ts() *TS {
	p := &TS{Kind: PayloadTSi}
	if g.coin() {
		p.Kind = PayloadTSr
	}
	for range g.between(1, 4) {
		var s TrafficSelector
		switch g.r.IntN(5) {
		case 0:
			s = TrafficSelector{Type: TSType(g.between(9, 255)), IPProtocol: g.u8(), Data: g.bytes(g.between(0, 20))}
		default:
			v6 := g.coin()
			s = TrafficSelector{Type: TSIPv4AddrRange, IPProtocol: g.u8(), StartPort: g.u16(), EndPort: g.u16(),
				Start: g.addr(v6), End: g.addr(v6)}
			if v6 {
				s.Type = TSIPv6AddrRange
			}
		}
		p.Selectors = append(p.Selectors, s)
	}
	return p
}

func (g gen) config() *Config {
	p := &Config{CfgType: ConfigType(g.u8())}
	for range g.between(0, 5) {
		var a ConfigAttr
		switch g.r.IntN(6) {
		case 0:
			a = ConfigAttr{Type: INTERNAL_IP4_ADDRESS, Value: g.bytes(4 * g.r.IntN(2))}
		case 1:
			a = ConfigAttr{Type: INTERNAL_IP6_ADDRESS, Value: g.bytes(17 * g.r.IntN(2))}
		case 2:
			a = ConfigAttr{Type: INTERNAL_IP4_SUBNET, Value: g.bytes(8 * g.r.IntN(2))}
		case 3:
			a = ConfigAttr{Type: SUPPORTED_ATTRIBUTES, Value: g.bytes(2 * g.r.IntN(4))}
		case 4:
			a = ConfigAttr{Type: INTERNAL_DNS_DOMAIN, Value: []byte("corp.example")}
		default:
			a = ConfigAttr{Type: ConfigAttrType(g.between(27, 0x7fff)), Value: g.bytes(g.between(0, 12))}
		}
		p.Attrs = append(p.Attrs, a)
	}
	return p
}

func (g gen) eap() *EAP {
	code := uint8(g.between(1, 6))
	body := g.bytes(g.between(0, 30))
	if (code == eapRequest || code == eapResponse) && len(body) == 0 {
		body = []byte{1} // Identity
	}
	msg := []byte{code, g.u8(), 0, 0}
	msg = append(msg, body...)
	msg[2], msg[3] = byte(len(msg)>>8), byte(len(msg))
	return &EAP{Data: msg}
}

func (g gen) unknown() *Unknown {
	var t PayloadType
	for t == PayloadNone || understood(t) {
		t = PayloadType(g.u8())
	}
	return &Unknown{PType: t, Data: g.bytes(g.between(0, 30))}
}

// payloadKinds lists a generator per payload type (all but SK and SKF).
var payloadKinds = []struct {
	name string
	gen  func(gen) Payload
}{
	{"SA", func(g gen) Payload { return g.sa() }},
	{"KE", func(g gen) Payload { return g.ke() }},
	{"ID", func(g gen) Payload { return g.id() }},
	{"CERT", func(g gen) Payload { return &Cert{Encoding: CertEncoding(g.u8()), Data: g.bytes(g.between(0, 300))} }},
	{"CERTREQ", func(g gen) Payload {
		return &CertReq{Encoding: CertEncoding(g.u8()), Data: g.bytes(20 * g.between(0, 3))}
	}},
	{"AUTH", func(g gen) Payload { return &Auth{Method: AuthMethod(g.u8()), Data: g.bytes(g.between(0, 64))} }},
	{"Nonce", func(g gen) Payload { return &Nonce{Data: g.bytes(g.between(MinNonceLen, MaxNonceLen))} }},
	{"N", func(g gen) Payload { return g.notify() }},
	{"D", func(g gen) Payload { return g.delete() }},
	{"V", func(g gen) Payload { return &VendorID{Data: g.bytes(g.between(0, 30))} }},
	{"TS", func(g gen) Payload { return g.ts() }},
	{"CP", func(g gen) Payload { return g.config() }},
	{"EAP", func(g gen) Payload { return g.eap() }},
	{"Unknown", func(g gen) Payload { return g.unknown() }},
}

func (g gen) payload() Payload { return payloadKinds[g.r.IntN(len(payloadKinds))].gen(g) }

func (g gen) encrypted() Payload {
	if g.coin() {
		return &Encrypted{NextPayload: PayloadType(g.u8()), Data: g.bytes(g.between(0, 100))}
	}
	total := uint16(g.between(1, 20))
	f := &EncryptedFragment{Number: uint16(g.between(1, int(total))), Total: total, Data: g.bytes(g.between(0, 100))}
	if f.Number == 1 {
		f.NextPayload = PayloadType(g.u8())
	}
	return f
}

func (g gen) header() Header {
	return Header{
		SPIi: g.r.Uint64(), SPIr: g.r.Uint64(),
		Exchange:  ExchangeType(g.between(34, 44)),
		MessageID: g.r.Uint32(),
	}
}

func (g gen) message() *Message {
	m := &Message{Header: g.header()}
	if g.coin() {
		m.Flags = FlagInitiator
	}
	if g.coin() {
		m.Flags |= FlagResponse
	}
	for range g.between(0, 6) {
		m.Payloads = append(m.Payloads, g.payload())
	}
	if g.r.IntN(3) == 0 {
		m.Payloads = append(m.Payloads, g.encrypted())
	}
	return m
}

// roundTrip marshals m, parses the result and requires an equal message.
func roundTrip(t *testing.T, m *Message) {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if int(m.Length) != len(b) {
		t.Fatalf("Length %d, marshalled %d octets", m.Length, len(b))
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal(m)): %v\n%x", err, b)
	}
	requireEqualMessages(t, got, m)
	if !reflect.DeepEqual(got.Raw, b) {
		t.Fatalf("Raw differs from the datagram")
	}
}

func requireEqualMessages(t *testing.T, got, want *Message) {
	t.Helper()
	if got.Header != want.Header {
		t.Fatalf("header:\n got %+v\nwant %+v", got.Header, want.Header)
	}
	if len(got.Payloads) != len(want.Payloads) {
		t.Fatalf("%d payloads, want %d", len(got.Payloads), len(want.Payloads))
	}
	for i := range got.Payloads {
		if !reflect.DeepEqual(got.Payloads[i], want.Payloads[i]) {
			t.Fatalf("payload %d (%v):\n got %#v\nwant %#v", i+1, want.Payloads[i].Type(), got.Payloads[i], want.Payloads[i])
		}
	}
}
