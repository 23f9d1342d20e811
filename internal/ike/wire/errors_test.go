package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// rawPayload is a hand-made payload for malformed-input tests.
type rawPayload struct {
	typ    PayloadType
	flags  uint8
	body   []byte
	length int // if non-zero, written instead of the true length
	next   int // if non-zero, written instead of the next payload's type (-1: 0)
}

// rawMessage builds an IKE_SA_INIT request around ps, chaining Next Payload
// and computing lengths unless a payload overrides them.
func rawMessage(ps ...rawPayload) []byte {
	b := make([]byte, HeaderLen)
	b[16] = 0
	if len(ps) > 0 {
		b[16] = byte(ps[0].typ)
	}
	b[17], b[18], b[19] = 0x20, byte(IKE_SA_INIT), byte(FlagInitiator)
	copy(b, "SPIiSPIi")
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].typ
		}
		switch {
		case p.next > 0:
			next = PayloadType(p.next)
		case p.next < 0:
			next = PayloadNone
		}
		n := 4 + len(p.body)
		if p.length != 0 {
			n = p.length
		}
		b = append(b, byte(next), p.flags, byte(n>>8), byte(n))
		b = append(b, p.body...)
	}
	return fixLength(b)
}

// fixLength sets the header's Length field to len(b).
func fixLength(b []byte) []byte {
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func u16(v int) []byte { return []byte{byte(v >> 8), byte(v)} }

// proposal encodes a proposal substructure with the given transforms.
func proposal(last, num uint8, proto ProtocolID, spi []byte, numTrans int, transforms ...[]byte) []byte {
	body := cat([]byte{num, byte(proto), byte(len(spi)), byte(numTrans)}, spi, cat(transforms...))
	return cat([]byte{last, 0}, u16(4+len(body)), body)
}

// transform encodes a transform substructure.
func transform(last uint8, typ TransformType, id uint16, attrs ...byte) []byte {
	body := cat([]byte{byte(typ), 0}, u16(int(id)), attrs)
	return cat([]byte{last, 0}, u16(4+len(body)), body)
}

var (
	encrAES     = transform(0, TransformENCR, uint16(ENCR_AES_GCM_16), 0x80, 0x0e, 0x01, 0x00)
	espProposal = proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, encrAES)
	ipv4TS      = cat([]byte{7, 0}, u16(16), u16(0), u16(65535), []byte{10, 0, 0, 0, 10, 0, 0, 255})
)

func TestParseErrors(t *testing.T) {
	valid := rawMessage(rawPayload{typ: PayloadNonce, body: make([]byte, 32)})
	tests := []struct {
		name   string
		msg    []byte
		notify NotifyType
		data   []byte
		reason string // a substring of the reason
	}{
		// Header (RFC 7296 3.1, 2.5).
		{"empty datagram", nil, INVALID_SYNTAX, nil, "shorter than the 28-octet IKE header"},
		{"short header", valid[:27], INVALID_SYNTAX, nil, "shorter than"},
		{"major version 3", withOctet(valid, 17, 0x30), INVALID_MAJOR_VERSION, nil, "version 3.0"},
		{"major version 1 (IKEv1)", withOctet(valid, 17, 0x10), INVALID_MAJOR_VERSION, nil, "version 1.0"},
		{"Length too big", withOctet(valid, 27, byte(len(valid)+1)), INVALID_SYNTAX, nil, "header Length"},
		{"Length too small", withOctet(valid, 27, byte(len(valid)-1)), INVALID_SYNTAX, nil, "header Length"},
		{"first payload missing", fixLength(withOctet(valid[:HeaderLen], 16, byte(PayloadNonce))), INVALID_SYNTAX, nil, "Nonce payload header truncated"},

		// Generic payload header (RFC 7296 3.2).
		{"trailing octets", fixLength(cat(valid, []byte{0, 0, 0})), INVALID_SYNTAX, nil, "3 octets after the last payload"},
		{"payload length below header", rawMessage(rawPayload{typ: PayloadVendorID, length: 3}), INVALID_SYNTAX, nil, "length 3 is shorter than its 4-octet header"},
		{"payload past the end", rawMessage(rawPayload{typ: PayloadVendorID, body: []byte{1}, length: 9}), INVALID_SYNTAX, nil, "runs past the end"},
		{"chain names a missing payload", rawMessage(rawPayload{typ: PayloadVendorID, next: int(PayloadNotify)}), INVALID_SYNTAX, nil, "N payload header truncated"},
		{"unknown critical payload", rawMessage(rawPayload{typ: 99, flags: 0x80, body: []byte{1, 2}}), UNSUPPORTED_CRITICAL_PAYLOAD, []byte{99}, "payload type 99"},
		{"IKEv1 payload type, critical", rawMessage(rawPayload{typ: 13, flags: 0xff}), UNSUPPORTED_CRITICAL_PAYLOAD, []byte{13}, "payload type 13"},
		{"critical after a bad payload", rawMessage(rawPayload{typ: PayloadNonce, body: []byte{1}}, rawPayload{typ: 99, flags: 0x80}), INVALID_SYNTAX, nil, "Nonce"},

		// SK and SKF (RFC 7296 3.14, RFC 7383 2.5).
		{"SK not last", rawMessage(rawPayload{typ: PayloadSK, body: make([]byte, 20), next: int(PayloadIDi)}, rawPayload{typ: PayloadVendorID}), INVALID_SYNTAX, nil, "must be the last"},
		{"SKF fragment 0", rawMessage(rawPayload{typ: PayloadSKF, body: cat(u16(0), u16(2))}), INVALID_SYNTAX, nil, "Fragment Number 0 of 2"},
		{"SKF fragment 3 of 2", rawMessage(rawPayload{typ: PayloadSKF, body: cat(u16(3), u16(2))}), INVALID_SYNTAX, nil, "Fragment Number 3 of 2"},
		{"SKF total 0", rawMessage(rawPayload{typ: PayloadSKF, body: cat(u16(1), u16(0))}), INVALID_SYNTAX, nil, "Total Fragments 0"},
		{"SKF fragment 2 with Next Payload", rawMessage(rawPayload{typ: PayloadSKF, body: cat(u16(2), u16(2)), next: int(PayloadIDi)}), INVALID_SYNTAX, nil, "fragment 2 has Next Payload IDi"},
		{"SKF truncated", rawMessage(rawPayload{typ: PayloadSKF, body: u16(1)}), INVALID_SYNTAX, nil, "SKF payload: body truncated"},

		// SA (RFC 7296 3.3).
		{"SA without proposals", rawMessage(rawPayload{typ: PayloadSA}), INVALID_SYNTAX, nil, "SA payload: no proposals"},
		{"proposal Last Substructure 1", rawMessage(rawPayload{typ: PayloadSA, body: withOctet(espProposal, 0, 1)}), INVALID_SYNTAX, nil, "Last Substructure 1, want 0 or 2"},
		{"proposal marked last, more follow", rawMessage(rawPayload{typ: PayloadSA, body: cat(espProposal, withOctet(espProposal, 5, 2))}), INVALID_SYNTAX, nil, "proposal 1 is marked last"},
		{"proposal marked more, none follow", rawMessage(rawPayload{typ: PayloadSA, body: withOctet(espProposal, 0, 2)}), INVALID_SYNTAX, nil, "proposal 1 is marked not last"},
		{"proposal length past the SA", rawMessage(rawPayload{typ: PayloadSA, body: withOctet(espProposal, 3, 99)}), INVALID_SYNTAX, nil, "proposal 1 length 99 runs past the end"},
		{"proposal length below header", rawMessage(rawPayload{typ: PayloadSA, body: withOctet(espProposal, 3, 2)}), INVALID_SYNTAX, nil, "proposal 1 length 2 is shorter"},
		{"proposal body truncated", rawMessage(rawPayload{typ: PayloadSA, body: []byte{0, 0, 0, 7, 1, 3, 4}}), INVALID_SYNTAX, nil, "proposal 1: body truncated"},
		{"Proposal Num 0", rawMessage(rawPayload{typ: PayloadSA, body: withOctet(espProposal, 4, 0)}), INVALID_SYNTAX, nil, "Proposal Num 0"},
		{"Proposal Nums 1, 3", rawMessage(rawPayload{typ: PayloadSA, body: cat(withOctet(espProposal, 0, 2), withOctet(espProposal, 4, 3))}), INVALID_SYNTAX, nil, "proposal 2 has Proposal Num 3 after 1"},
		{"Proposal Nums 2, 3", rawMessage(rawPayload{typ: PayloadSA, body: cat(withOctet(withOctet(espProposal, 0, 2), 4, 2), withOctet(espProposal, 4, 3))}), INVALID_SYNTAX, nil, "want 1"},
		{"Protocol ID 0", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoNone, nil, 1, encrAES)}), INVALID_SYNTAX, nil, "Protocol ID 0"},
		{"ESP SPI Size 3", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3}, 1, encrAES)}), INVALID_SYNTAX, nil, "SPI Size 3 for protocol ESP"},
		{"IKE SPI Size 4", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoIKE, []byte{1, 2, 3, 4}, 1, encrAES)}), INVALID_SYNTAX, nil, "SPI Size 4 for protocol IKE"},
		{"SPI past the proposal", rawMessage(rawPayload{typ: PayloadSA, body: cat([]byte{0, 0}, u16(10), []byte{1, 3, 4, 0, 1, 2})}), INVALID_SYNTAX, nil, "SPI of 4 octets runs past the end"},
		{"Num Transforms too big", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 2, encrAES)}), INVALID_SYNTAX, nil, "Num Transforms 2, but 1 transforms follow"},
		{"no transforms", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 0)}), INVALID_SYNTAX, nil, "proposal 1: no transforms"},
		{"transform Last Substructure 2", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, withOctet(encrAES, 0, 2))}), INVALID_SYNTAX, nil, "transform 1: Last Substructure 2, want 0 or 3"},
		{"transform marked last, more follow", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 2, encrAES, encrAES)}), INVALID_SYNTAX, nil, "transform 1 is marked last"},
		{"transform marked more, none follow", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, withOctet(encrAES, 0, 3))}), INVALID_SYNTAX, nil, "transform 1 is marked not last"},
		{"transform past the proposal", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, withOctet(encrAES, 3, 40))}), INVALID_SYNTAX, nil, "transform 1 length 40 runs past the end"},
		{"transform body truncated", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, []byte{0, 0, 0, 6, 1, 0})}), INVALID_SYNTAX, nil, "transform 1: body truncated"},
		{"Key Length in TLV", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x00, 0x0e, 0, 2, 1, 0))}), INVALID_SYNTAX, nil, "Key Length attribute in TLV format"},
		{"Key Length twice", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x80, 0x0e, 1, 0, 0x80, 0x0e, 1, 0))}), INVALID_SYNTAX, nil, "second Key Length"},
		{"Key Length 0", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x80, 0x0e, 0, 0))}), INVALID_SYNTAX, nil, "Key Length attribute of 0 bits"},
		{"TV attribute truncated", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x80, 0x0e, 1))}), INVALID_SYNTAX, nil, "TV value truncated"},
		{"TLV attribute past the end", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x00, 0x01, 0, 9, 1))}), INVALID_SYNTAX, nil, "TLV value runs past the end"},
		{"attribute type truncated", rawMessage(rawPayload{typ: PayloadSA, body: proposal(0, 1, ProtoESP, []byte{1, 2, 3, 4}, 1, transform(0, TransformENCR, 20, 0x80))}), INVALID_SYNTAX, nil, "attribute truncated"},

		// KE, ID, CERT, CERTREQ, AUTH, Nonce (RFC 7296 3.4-3.9).
		{"KE X25519 of 31", rawMessage(rawPayload{typ: PayloadKE, body: cat(u16(31), u16(0), make([]byte, 31))}), INVALID_SYNTAX, nil, "KE payload: data length 31, want 32 for Curve25519"},
		{"KE MODP2048 of 255", rawMessage(rawPayload{typ: PayloadKE, body: cat(u16(14), u16(0), make([]byte, 255))}), INVALID_SYNTAX, nil, "data length 255, want 256"},
		{"KE ML-KEM-768 of 1000", rawMessage(rawPayload{typ: PayloadKE, body: cat(u16(36), u16(0), make([]byte, 1000))}), INVALID_SYNTAX, nil, "want 1184 or 1088"},
		{"KE truncated", rawMessage(rawPayload{typ: PayloadKE, body: []byte{0, 31, 0}}), INVALID_SYNTAX, nil, "KE payload: body truncated"},
		{"ID truncated", rawMessage(rawPayload{typ: PayloadIDi, body: []byte{1, 0, 0}}), INVALID_SYNTAX, nil, "IDi payload: body truncated"},
		{"ID IPv4 of 3", rawMessage(rawPayload{typ: PayloadIDi, body: []byte{1, 0, 0, 0, 10, 0, 0}}), INVALID_SYNTAX, nil, "ID_IPV4_ADDR of 3 octets, want 4"},
		{"ID IPv6 of 4", rawMessage(rawPayload{typ: PayloadIDr, body: []byte{5, 0, 0, 0, 10, 0, 0, 1}}), INVALID_SYNTAX, nil, "IDr payload: ID_IPV6_ADDR of 4 octets, want 16"},
		{"ID FQDN empty", rawMessage(rawPayload{typ: PayloadIDi, body: []byte{2, 0, 0, 0}}), INVALID_SYNTAX, nil, "empty ID_FQDN"},
		{"ID RFC822 empty", rawMessage(rawPayload{typ: PayloadIDi, body: []byte{3, 0, 0, 0}}), INVALID_SYNTAX, nil, "empty ID_RFC822_ADDR"},
		{"ID DN empty", rawMessage(rawPayload{typ: PayloadIDi, body: []byte{9, 0, 0, 0}}), INVALID_SYNTAX, nil, "empty ID_DER_ASN1_DN"},
		{"CERT empty", rawMessage(rawPayload{typ: PayloadCERT}), INVALID_SYNTAX, nil, "CERT payload: body truncated"},
		{"CERTREQ empty", rawMessage(rawPayload{typ: PayloadCERTREQ}), INVALID_SYNTAX, nil, "CERTREQ payload: body truncated"},
		{"AUTH truncated", rawMessage(rawPayload{typ: PayloadAUTH, body: []byte{2, 0}}), INVALID_SYNTAX, nil, "AUTH payload: body truncated"},
		{"nonce of 15", rawMessage(rawPayload{typ: PayloadNonce, body: make([]byte, 15)}), INVALID_SYNTAX, nil, "nonce of 15 octets, want 16 to 256"},
		{"nonce of 257", rawMessage(rawPayload{typ: PayloadNonce, body: make([]byte, 257)}), INVALID_SYNTAX, nil, "nonce of 257 octets"},

		// Notify, Delete (RFC 7296 3.10, 3.11).
		{"notify truncated", rawMessage(rawPayload{typ: PayloadNotify, body: []byte{0, 0, 0x40}}), INVALID_SYNTAX, nil, "N payload: body truncated"},
		{"notify ESP SPI Size 8", rawMessage(rawPayload{typ: PayloadNotify, body: cat([]byte{3, 8}, u16(int(REKEY_SA)), make([]byte, 8))}), INVALID_SYNTAX, nil, "REKEY_SA: SPI Size 8 for protocol ESP"},
		{"notify IKE SPI Size 4", rawMessage(rawPayload{typ: PayloadNotify, body: cat([]byte{1, 4}, u16(int(INITIAL_CONTACT)), make([]byte, 4))}), INVALID_SYNTAX, nil, "SPI Size 4 for protocol IKE"},
		{"notify SPI past the end", rawMessage(rawPayload{typ: PayloadNotify, body: cat([]byte{3, 4}, u16(int(REKEY_SA)), []byte{1, 2})}), INVALID_SYNTAX, nil, "SPI of 4 octets runs past the end"},
		{"delete truncated", rawMessage(rawPayload{typ: PayloadDelete, body: []byte{3, 4, 0}}), INVALID_SYNTAX, nil, "D payload: body truncated"},
		{"delete protocol 0", rawMessage(rawPayload{typ: PayloadDelete, body: []byte{0, 0, 0, 0}}), INVALID_SYNTAX, nil, "Protocol ID NONE"},
		{"delete IKE with SPI Size 8", rawMessage(rawPayload{typ: PayloadDelete, body: cat([]byte{1, 8}, u16(1), make([]byte, 8))}), INVALID_SYNTAX, nil, "SPI Size 8 for protocol IKE, want 0"},
		{"delete IKE with SPIs", rawMessage(rawPayload{typ: PayloadDelete, body: cat([]byte{1, 0}, u16(2))}), INVALID_SYNTAX, nil, "2 SPIs for protocol IKE"},
		{"delete ESP SPI Size 8", rawMessage(rawPayload{typ: PayloadDelete, body: cat([]byte{3, 8}, u16(1), make([]byte, 8))}), INVALID_SYNTAX, nil, "SPI Size 8 for protocol ESP, want 4"},
		{"delete ESP count too big", rawMessage(rawPayload{typ: PayloadDelete, body: cat([]byte{3, 4}, u16(3), make([]byte, 8))}), INVALID_SYNTAX, nil, "3 SPIs of 4 octets, but 8 octets follow"},
		{"delete ESP count too small", rawMessage(rawPayload{typ: PayloadDelete, body: cat([]byte{3, 4}, u16(1), make([]byte, 8))}), INVALID_SYNTAX, nil, "1 SPIs of 4 octets, but 8 octets follow"},

		// TS (RFC 7296 3.13).
		{"TS truncated", rawMessage(rawPayload{typ: PayloadTSi, body: []byte{1, 0, 0}}), INVALID_SYNTAX, nil, "TSi payload: body truncated"},
		{"TS none", rawMessage(rawPayload{typ: PayloadTSi, body: []byte{0, 0, 0, 0}}), INVALID_SYNTAX, nil, "no traffic selectors"},
		{"TS count too big", rawMessage(rawPayload{typ: PayloadTSr, body: cat([]byte{2, 0, 0, 0}, ipv4TS)}), INVALID_SYNTAX, nil, "TSr payload: Number of TSs 2, but 1 selectors follow"},
		{"TS count too small", rawMessage(rawPayload{typ: PayloadTSr, body: cat([]byte{1, 0, 0, 0}, ipv4TS, ipv4TS)}), INVALID_SYNTAX, nil, "Number of TSs 1, but 2"},
		{"TS IPv4 of length 40", rawMessage(rawPayload{typ: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, withOctet(ipv4TS, 0, 8))}), INVALID_SYNTAX, nil, "selector 1: Selector Length 16 for TS_IPV6_ADDR_RANGE, want 40"},
		{"TS selector past the end", rawMessage(rawPayload{typ: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, ipv4TS[:12])}), INVALID_SYNTAX, nil, "selector 1 length 16 runs past the end"},
		{"TS selector header truncated", rawMessage(rawPayload{typ: PayloadTSi, body: cat([]byte{1, 0, 0, 0}, ipv4TS[:3])}), INVALID_SYNTAX, nil, "selector 1 header truncated"},

		// CP (RFC 7296 3.15).
		{"CP truncated", rawMessage(rawPayload{typ: PayloadCP, body: []byte{1}}), INVALID_SYNTAX, nil, "CP payload: body truncated"},
		{"CP attribute past the end", rawMessage(rawPayload{typ: PayloadCP, body: []byte{1, 0, 0, 0, 0, 1, 0, 4, 10}}), INVALID_SYNTAX, nil, "attribute 1 runs past the end"},
		{"CP INTERNAL_IP4_ADDRESS of 3", rawMessage(rawPayload{typ: PayloadCP, body: []byte{2, 0, 0, 0, 0, 1, 0, 3, 10, 0, 0}}), INVALID_SYNTAX, nil, "INTERNAL_IP4_ADDRESS of 3 octets"},
		{"CP INTERNAL_IP6_ADDRESS of 16", rawMessage(rawPayload{typ: PayloadCP, body: cat([]byte{2, 0, 0, 0, 0, 8, 0, 16}, make([]byte, 16))}), INVALID_SYNTAX, nil, "INTERNAL_IP6_ADDRESS of 16 octets"},

		// EAP (RFC 7296 3.16, RFC 3748 4).
		{"EAP too short", rawMessage(rawPayload{typ: PayloadEAP, body: []byte{3, 1, 0}}), INVALID_SYNTAX, nil, "EAP message header truncated"},
		{"EAP Length too small", rawMessage(rawPayload{typ: PayloadEAP, body: []byte{3, 1, 0, 4, 0}}), INVALID_SYNTAX, nil, "EAP Length 4, but the payload holds 5 octets"},
		{"EAP Length too big", rawMessage(rawPayload{typ: PayloadEAP, body: []byte{1, 1, 0, 9, 1}}), INVALID_SYNTAX, nil, "EAP message length 9 runs past the end"},
		{"EAP request without Type", rawMessage(rawPayload{typ: PayloadEAP, body: []byte{1, 1, 0, 4}}), INVALID_SYNTAX, nil, "EAP code 1 without a Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.msg)
			if err == nil {
				t.Fatalf("Parse succeeded: %#v", m.Payloads)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Notify != tt.notify || !bytes.Equal(e.Data, tt.data) {
				t.Errorf("Notify %v data %x, want %v data %x", e.Notify, e.Data, tt.notify, tt.data)
			}
			if !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", e.Reason, tt.reason)
			}
			if !errors.Is(err, &Error{Notify: tt.notify}) {
				t.Errorf("errors.Is(err, &Error{Notify: %v}) is false", tt.notify)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("Error() = %q, want the prefix \"wire: \"", err)
			}
		})
	}
}

func withOctet(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func TestErrorString(t *testing.T) {
	_, err := Parse(rawMessage(rawPayload{typ: PayloadKE, body: cat(u16(31), u16(0), make([]byte, 31))}))
	const want = "wire: invalid syntax: KE payload: data length 31, want 32 for Curve25519"
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if errors.Is(err, &Error{Notify: UNSUPPORTED_CRITICAL_PAYLOAD}) {
		t.Error("INVALID_SYNTAX error matches UNSUPPORTED_CRITICAL_PAYLOAD")
	}
	if got := (&Error{Notify: INVALID_MAJOR_VERSION}).Error(); got != "wire: invalid major version" {
		t.Errorf("Error() = %q", got)
	}
}

// TestCriticalBit covers RFC 7296 2.5 and 3.2: the critical bit decides the
// fate of payloads we do not understand and is ignored on those we do.
func TestCriticalBit(t *testing.T) {
	// Unknown, not critical: kept and skipped.
	m, err := Parse(rawMessage(
		rawPayload{typ: 200, body: []byte{1, 2, 3}},
		rawPayload{typ: PayloadNonce, body: make([]byte, 16)},
		rawPayload{typ: PayloadSKF - 1, flags: 0x7f}, // KD (52), reserved bits set
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []Payload{
		&Unknown{PType: 200, Data: []byte{1, 2, 3}},
		&Nonce{Data: make([]byte, 16)},
		&Unknown{PType: 52},
	}
	requireEqualMessages(t, m, &Message{Header: m.Header, Payloads: want})

	// Understood, critical: the bit is ignored.
	m, err = Parse(rawMessage(rawPayload{typ: PayloadNonce, flags: 0x80, body: make([]byte, 16)}))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := m.Payloads[0].(*Nonce); !ok || len(n.Data) != 16 {
		t.Fatalf("payload %#v", m.Payloads[0])
	}

	// Unknown, critical, inside SK.
	_, err = ParsePayloads(PayloadVendorID, cat([]byte{200, 0, 0, 8, 1, 0, 0, 0}, []byte{0, 0x80, 0, 4}))
	var e *Error
	if !errors.As(err, &e) || e.Notify != UNSUPPORTED_CRITICAL_PAYLOAD || !bytes.Equal(e.Data, []byte{200}) {
		t.Fatalf("critical unknown inside SK: %v", err)
	}

	// Sending: critical only for an Unknown that asks for it.
	b, err := (&Message{Payloads: []Payload{&Unknown{PType: 200, Critical: true}, &VendorID{}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if b[HeaderLen+1] != 0x80 || b[HeaderLen+5] != 0 {
		t.Errorf("critical octets %#x, %#x, want 0x80, 0", b[HeaderLen+1], b[HeaderLen+5])
	}
	_, err = Parse(b)
	if !errors.As(err, &e) || e.Notify != UNSUPPORTED_CRITICAL_PAYLOAD || !bytes.Equal(e.Data, []byte{200}) {
		t.Fatalf("Parse of a critical unknown: %v", err)
	}
}

// TestVersion covers RFC 7296 2.5 and 3.1.
func TestVersion(t *testing.T) {
	valid := rawMessage(rawPayload{typ: PayloadVendorID})
	// Minor version: ignored on receipt, kept.
	m, err := Parse(withOctet(valid, 17, 0x27))
	if err != nil {
		t.Fatalf("minor version 7: %v", err)
	}
	if m.MajorVersion != 2 || m.MinorVersion != 7 {
		t.Errorf("version %d.%d, want 2.7", m.MajorVersion, m.MinorVersion)
	}
	// Flags: X bits and V ignored.
	m, err = Parse(withOctet(valid, 19, 0xff))
	if err != nil {
		t.Fatal(err)
	}
	if m.Flags != FlagInitiator|FlagResponse || !m.IsInitiator() || !m.IsResponse() {
		t.Errorf("flags %v", m.Flags)
	}
	// Higher and lower major versions; the header is still returned.
	for _, v := range []byte{0x00, 0x10, 0x30, 0xf0} {
		h, err := ParseHeader(withOctet(valid, 17, v))
		var e *Error
		if !errors.As(err, &e) || e.Notify != INVALID_MAJOR_VERSION || e.Data != nil {
			t.Errorf("version %#x: %v", v, err)
		}
		if h.SPIi == 0 || h.Exchange != IKE_SA_INIT || h.MajorVersion != v>>4 {
			t.Errorf("version %#x: header %+v", v, h)
		}
	}
}

func TestSKMustBeLast(t *testing.T) {
	// SK inside SK.
	_, err := ParsePayloads(PayloadSK, []byte{0, 0, 0, 8, 1, 2, 3, 4})
	if !errors.Is(err, &Error{Notify: INVALID_SYNTAX}) || !strings.Contains(err.Error(), "inside an Encrypted payload") {
		t.Errorf("SK inside SK: %v", err)
	}
	_, err = ParsePayloads(PayloadVendorID, []byte{byte(PayloadSKF), 0, 0, 4, 0, 0, 0, 8, 0, 1, 0, 1})
	if !errors.Is(err, &Error{Notify: INVALID_SYNTAX}) {
		t.Errorf("SKF inside SK: %v", err)
	}
	// An empty SK plaintext (e.g. a liveness check) is no payloads.
	if ps, err := ParsePayloads(PayloadNone, nil); err != nil || ps != nil {
		t.Errorf("empty plaintext: %v, %v", ps, err)
	}
	if _, err := ParsePayloads(PayloadNone, []byte{0}); err == nil {
		t.Error("octets after an empty chain accepted")
	}
}
