package wire

import (
	"fmt"
	mrand "math/rand"
	"reflect"
	"testing"
	"testing/quick"
)

// TestRoundTripPayloads marshals and parses random payloads of every type,
// alone in a message and as an SK plaintext chain.
func TestRoundTripPayloads(t *testing.T) {
	for i, kind := range payloadKinds {
		t.Run(kind.name, func(t *testing.T) {
			g := newGen(uint64(i) + 1)
			for range 300 {
				p := kind.gen(g)
				roundTrip(t, &Message{Header: g.header(), Payloads: []Payload{p}})

				first, body, err := MarshalPayloads([]Payload{p, p})
				if err != nil {
					t.Fatalf("MarshalPayloads: %v", err)
				}
				if first != p.Type() {
					t.Fatalf("first = %v, want %v", first, p.Type())
				}
				got, err := ParsePayloads(first, body)
				if err != nil {
					t.Fatalf("ParsePayloads: %v\n%x", err, body)
				}
				if !reflect.DeepEqual(got, []Payload{p, p}) {
					t.Fatalf("ParsePayloads:\n got %#v\nwant %#v", got, p)
				}
			}
		})
	}
}

func TestRoundTripEncrypted(t *testing.T) {
	g := newGen(99)
	for range 300 {
		m := &Message{Header: g.header(), Payloads: []Payload{g.encrypted()}}
		if g.coin() {
			m.Payloads = append([]Payload{g.payload()}, m.Payloads...)
		}
		roundTrip(t, m)
	}
}

// quickMessage lets testing/quick generate random valid messages.
type quickMessage struct{ *Message }

func (quickMessage) Generate(r *mrand.Rand, _ int) reflect.Value {
	return reflect.ValueOf(quickMessage{newGen(uint64(r.Int63())).message()})
}

func TestRoundTripQuick(t *testing.T) {
	f := func(q quickMessage) bool {
		b, err := q.Marshal()
		if err != nil {
			t.Logf("Marshal: %v", err)
			return false
		}
		got, err := Parse(b)
		if err != nil {
			t.Logf("Parse: %v", err)
			return false
		}
		got.Raw = nil
		return reflect.DeepEqual(got, q.Message)
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// TestMarshalRejects checks that Marshal refuses what Parse would reject,
// rather than producing a message that does not parse back.
func TestMarshalRejects(t *testing.T) {
	esp := func(num uint8) Proposal {
		return Proposal{Num: num, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4},
			Transforms: []Transform{{Type: TransformENCR, ID: uint16(ENCR_AES_GCM_16), KeyLen: 256}}}
	}
	tests := []struct {
		name string
		ps   []Payload
	}{
		{"nil payload", []Payload{nil}},
		{"SA without proposals", []Payload{&SA{}}},
		{"proposal numbers 1,3", []Payload{&SA{Proposals: []Proposal{esp(1), esp(3)}}}},
		{"proposal numbers 2,3", []Payload{&SA{Proposals: []Proposal{esp(2), esp(3)}}}},
		{"proposal number 0", []Payload{&SA{Proposals: []Proposal{esp(0)}}}},
		{"ESP SPI of 8", []Payload{&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: make([]byte, 8), Transforms: esp(1).Transforms}}}}},
		{"no transforms", []Payload{&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: make([]byte, 4)}}}}},
		{"Key Length in Attrs", []Payload{&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{{Attrs: []Attribute{{Type: AttrKeyLength, TV: true, Value: []byte{0, 128}}}}}}}}}},
		{"TV attribute of 3 octets", []Payload{&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{{Attrs: []Attribute{{Type: 1, TV: true, Value: []byte{0, 1, 2}}}}}}}}}},
		{"KE wrong length", []Payload{&KE{Group: KE_CURVE25519, Data: make([]byte, 31)}}},
		{"short nonce", []Payload{&Nonce{Data: make([]byte, 15)}}},
		{"long nonce", []Payload{&Nonce{Data: make([]byte, 257)}}},
		{"ID kind", []Payload{&ID{Kind: PayloadAUTH, IDType: IDKeyID}}},
		{"ID IPv4 of 5", []Payload{&ID{Kind: PayloadIDi, IDType: IDIPv4Addr, Data: make([]byte, 5)}}},
		{"notify ESP SPI of 8", []Payload{&Notify{Protocol: ProtoESP, SPI: make([]byte, 8), NotifyType: REKEY_SA}}},
		{"delete IKE with SPIs", []Payload{&Delete{Protocol: ProtoIKE, SPIs: [][]byte{{1, 2, 3, 4}}}}},
		{"delete ESP SPI of 8", []Payload{&Delete{Protocol: ProtoESP, SPIs: [][]byte{make([]byte, 8)}}}},
		{"delete protocol 0", []Payload{&Delete{}}},
		{"TS kind", []Payload{&TS{Kind: PayloadSA, Selectors: []TrafficSelector{{Type: 99}}}}},
		{"TS empty", []Payload{&TS{Kind: PayloadTSi}}},
		{"TS IPv4 with IPv6 address", []Payload{&TS{Kind: PayloadTSi, Selectors: []TrafficSelector{{Type: TSIPv4AddrRange, Start: newGen(1).addr(true), End: newGen(1).addr(true)}}}}},
		{"TS IPv6 without addresses", []Payload{&TS{Kind: PayloadTSi, Selectors: []TrafficSelector{{Type: TSIPv6AddrRange}}}}},
		{"CP attribute length", []Payload{&Config{Attrs: []ConfigAttr{{Type: INTERNAL_IP4_DNS, Value: make([]byte, 3)}}}}},
		{"CP attribute type", []Payload{&Config{Attrs: []ConfigAttr{{Type: 0x8001}}}}},
		{"EAP length", []Payload{&EAP{Data: []byte{3, 1, 0, 5}}}},
		{"EAP request without type", []Payload{&EAP{Data: []byte{1, 1, 0, 4}}}},
		{"unknown of a known type", []Payload{&Unknown{PType: PayloadNotify}}},
		{"SK not last", []Payload{&Encrypted{}, &VendorID{}}},
		{"SKF fragment 0", []Payload{&EncryptedFragment{Number: 0, Total: 1}}},
		{"SKF fragment 3 of 2", []Payload{&EncryptedFragment{Number: 3, Total: 2}}},
		{"SKF next payload in fragment 2", []Payload{&EncryptedFragment{NextPayload: PayloadIDi, Number: 2, Total: 2}}},
		{"payload too long", []Payload{&VendorID{Data: make([]byte, 0xfffc)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Payloads: tt.ps}
			if b, err := m.Marshal(); err == nil {
				t.Fatalf("Marshal succeeded: %x", b)
			}
		})
	}
	// SK inside SK.
	if _, _, err := MarshalPayloads([]Payload{&Encrypted{}}); err == nil {
		t.Error("MarshalPayloads accepted an SK payload")
	}
	if _, err := (&Message{Header: Header{MajorVersion: 3}}).Marshal(); err == nil {
		t.Error("Marshal accepted major version 3")
	}
}

// TestMarshalNormalizes checks the fields Marshal fills in and the reserved
// bits it clears.
func TestMarshalNormalizes(t *testing.T) {
	m := &Message{
		Header:   Header{Exchange: INFORMATIONAL, Flags: 0xff},
		Payloads: []Payload{&VendorID{Data: []byte("x")}},
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if m.MajorVersion != 2 || m.NextPayload != PayloadVendorID || m.Length != HeaderLen+5 {
		t.Errorf("header after Marshal: %+v", m.Header)
	}
	if b[17] != 0x20 {
		t.Errorf("version octet %#x, want 0x20", b[17])
	}
	if b[19] != uint8(FlagInitiator|FlagResponse) {
		t.Errorf("flags octet %#x, want I|R only", b[19])
	}
	if b[HeaderLen+1] != 0 {
		t.Errorf("critical/reserved octet %#x, want 0", b[HeaderLen+1])
	}
	// An empty message is a header alone.
	empty := &Message{Header: Header{Exchange: INFORMATIONAL}}
	if b, err := empty.Marshal(); err != nil || len(b) != HeaderLen || b[16] != 0 {
		t.Errorf("empty message: %x, %v", b, err)
	}
}

func ExampleMessage_Marshal() {
	m := &Message{
		Header: Header{SPIi: 0x0102030405060708, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Payloads: []Payload{
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
		},
	}
	b, _ := m.Marshal()
	fmt.Printf("%x\n", b)
	// Output:
	// 01020304050607080000000000000000292022080000000000000024000000080000402e
}
