package transport

import (
	"bytes"
	"testing"
)

// ikeHeader returns a plausible IKE message of n octets (n >= 28): the
// header's SPIi, which is never zero (RFC 7296 3.1), then filler.
func ikeHeader(n int) []byte {
	b := make([]byte, n)
	copy(b, []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0})
	b[17] = 0x20 // version 2.0
	b[18] = 34   // IKE_SA_INIT
	for i := 28; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

func withMarker(b []byte) []byte { return append(make([]byte, MarkerLen), b...) }

func espPacket(spi uint32, n int) []byte {
	b := make([]byte, n)
	b[0], b[1], b[2], b[3] = byte(spi>>24), byte(spi>>16), byte(spi>>8), byte(spi)
	for i := 4; i < n; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func TestClassify(t *testing.T) {
	ike := ikeHeader(40)
	tests := []struct {
		name    string
		in      []byte
		nat     bool
		kind    Kind
		payload []byte
	}{
		{"IKE port: IKE", ike, false, KindIKE, ike},
		{"IKE port: header only", ike[:28], false, KindIKE, ike[:28]},
		{"IKE port: 27 octets", ike[:27], false, KindJunk, nil},
		{"IKE port: empty", nil, false, KindJunk, nil},
		{"IKE port: 0xFF is no keepalive", []byte{0xFF}, false, KindJunk, nil},
		{"NAT port: IKE behind marker", withMarker(ike), true, KindIKE, ike},
		{"NAT port: marker and header only", withMarker(ike[:28]), true, KindIKE, ike[:28]},
		{"NAT port: marker and 27 octets", withMarker(ike[:27]), true, KindJunk, nil},
		{"NAT port: marker alone", []byte{0, 0, 0, 0}, true, KindJunk, nil},
		{"NAT port: keepalive", []byte{0xFF}, true, KindKeepalive, nil},
		{"NAT port: 0xFF 0xFF", []byte{0xFF, 0xFF}, true, KindJunk, nil},
		{"NAT port: one other octet", []byte{0x01}, true, KindJunk, nil},
		{"NAT port: zero octet", []byte{0x00}, true, KindJunk, nil},
		{"NAT port: three octets", []byte{0, 0, 0}, true, KindJunk, nil},
		{"NAT port: empty", []byte{}, true, KindJunk, nil},
		{"NAT port: ESP header only", espPacket(0x1000, 8), true, KindJunk, nil},
		{"NAT port: ESP 9 octets", espPacket(0x1000, 9), true, KindESP, espPacket(0x1000, 9)},
		{"NAT port: ESP", espPacket(0xc0ffee01, 100), true, KindESP, espPacket(0xc0ffee01, 100)},
		{"NAT port: ESP, SPI 1", espPacket(1, 60), true, KindESP, espPacket(1, 60)},
		{"NAT port: IKE without marker is ESP", ike, true, KindESP, ike},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, payload := Classify(tt.in, tt.nat)
			if kind != tt.kind || !bytes.Equal(payload, tt.payload) {
				t.Errorf("Classify(%x, %v) = %v, %x; want %v, %x", tt.in, tt.nat, kind, payload, tt.kind, tt.payload)
			}
		})
	}
}

func TestKindAndDropReasonStrings(t *testing.T) {
	for k, want := range map[Kind]string{KindJunk: "junk", KindIKE: "IKE", KindESP: "ESP", KindKeepalive: "keepalive", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind %d: %q, want %q", k, got, want)
		}
	}
	for r, want := range map[DropReason]string{DropKeepalive: "keepalive", DropShort: "short", DropTruncated: "truncated", 9: "DropReason(9)"} {
		if got := r.String(); got != want {
			t.Errorf("DropReason %d: %q, want %q", r, got, want)
		}
	}
}

// FuzzClassify checks the NAT-T demultiplexer's invariants on any datagram:
// no panic; the payload is the datagram or the datagram after the marker;
// and the framing round-trips.
func FuzzClassify(f *testing.F) {
	ike := ikeHeader(64)
	for _, seed := range [][]byte{
		ike, withMarker(ike), withMarker(ike[:28]), {0xFF}, {}, {0}, {0, 0, 0, 0},
		{1, 2, 3}, espPacket(0x01020304, 9), espPacket(0xdeadbeef, 120),
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, nat bool) {
		kind, payload := Classify(b, nat)
		switch kind {
		case KindIKE:
			if len(payload) < ikeHeaderLen {
				t.Fatalf("IKE payload of %d octets", len(payload))
			}
			framed := payload
			if nat {
				framed = withMarker(payload)
			}
			if !bytes.Equal(framed, b) {
				t.Fatalf("IKE payload %x does not frame back to %x", payload, b)
			}
		case KindESP:
			if !nat || !bytes.Equal(payload, b) || len(b) < espMinLen || (b[0]|b[1]|b[2]|b[3]) == 0 {
				t.Fatalf("ESP %x from %x (nat %v)", payload, b, nat)
			}
		case KindKeepalive:
			if !nat || len(b) != 1 || b[0] != 0xFF || payload != nil {
				t.Fatalf("keepalive from %x (nat %v)", b, nat)
			}
		case KindJunk:
			if payload != nil {
				t.Fatalf("junk with payload %x", payload)
			}
			if nat && len(b) >= espMinLen && (b[0]|b[1]|b[2]|b[3]) != 0 {
				t.Fatalf("valid-looking ESP %x classified as junk", b)
			}
			if len(b) >= ikeHeaderLen+MarkerLen || (!nat && len(b) >= ikeHeaderLen) {
				t.Fatalf("%d octets classified as junk (nat %v)", len(b), nat)
			}
		default:
			t.Fatalf("unknown kind %v", kind)
		}
	})
}
