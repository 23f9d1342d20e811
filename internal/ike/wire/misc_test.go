package wire

import (
	"bytes"
	"testing"
)

func TestCertReqHashes(t *testing.T) {
	data := fill(60, 1)
	hs, err := (&CertReq{Encoding: CertX509Signature, Data: data}).Hashes()
	if err != nil || len(hs) != 3 || !bytes.Equal(hs[2], data[40:]) || cap(hs[0]) != 20 {
		t.Fatalf("Hashes: %x, %v", hs, err)
	}
	if hs, err := (&CertReq{Encoding: CertX509Signature}).Hashes(); err != nil || hs != nil {
		t.Errorf("empty CERTREQ: %x, %v", hs, err)
	}
	if _, err := (&CertReq{Encoding: CertX509Signature, Data: data[:30]}).Hashes(); err == nil {
		t.Error("30-octet CERTREQ accepted")
	}
	if _, err := (&CertReq{Encoding: CertRawPublicKey}).Hashes(); err == nil {
		t.Error("hashes of a raw public key CERTREQ")
	}
	// A CERTREQ that is not a list of hashes still parses: it is a request
	// we cannot use, not a malformed message.
	if _, err := Parse(rawMessage(rawPayload{typ: PayloadCERTREQ, body: []byte{4, 1, 2, 3}})); err != nil {
		t.Errorf("odd CERTREQ: %v", err)
	}
}

func TestIDBody(t *testing.T) {
	id := &ID{Kind: PayloadIDr, IDType: IDFQDN, Data: []byte("gw-b.example")}
	want := append([]byte{2, 0, 0, 0}, "gw-b.example"...)
	if got := id.Body(); !bytes.Equal(got, want) {
		t.Errorf("Body %x, want %x", got, want)
	}
	// The body is what follows the generic header on the wire.
	_, b, _ := MarshalPayloads([]Payload{id})
	if !bytes.Equal(b[4:], want) {
		t.Errorf("wire body %x", b[4:])
	}
}

func TestEncryptedPrefix(t *testing.T) {
	for _, mk := range []func() *Message{sampleAuthSK, sampleAuthSKF} {
		raw := mustMarshal(mk())
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := HeaderLen + 4 // generic header
		if _, ok := m.Payloads[0].(*EncryptedFragment); ok {
			want += 4 // Fragment Number, Total Fragments
		}
		if got := m.EncryptedPrefix(); !bytes.Equal(got, raw[:want]) {
			t.Errorf("EncryptedPrefix of %d octets, want %d", len(got), want)
		}
	}
	m, _ := Parse(mustMarshal(sampleInitRequest()))
	if m.EncryptedPrefix() != nil {
		t.Error("EncryptedPrefix of a plaintext message")
	}
}

func TestParseCopies(t *testing.T) {
	b := mustMarshal(sampleInitRequest())
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xee
	}
	if n := m.Payloads[2].(*Nonce); !bytes.Equal(n.Data, fill(32, 2)) {
		t.Error("the message changed with the caller's buffer")
	}
	// Appending to a parsed field must not write into Raw.
	raw := bytes.Clone(m.Raw)
	v := m.Payloads[3].(*Notify)
	_ = append(v.Data, 0xff, 0xff)
	if !bytes.Equal(m.Raw, raw) {
		t.Error("an append to a payload field changed Raw")
	}
}

func TestHeaderAppendTo(t *testing.T) {
	h := Header{SPIi: 1, SPIr: 2, NextPayload: PayloadSK, Exchange: IKE_AUTH, Flags: FlagResponse | FlagVersion | 1, MessageID: 7, Length: 28}
	b := h.AppendTo([]byte{0xaa})
	want := []byte{0xaa, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 46, 0x20, 35, 0x20, 0, 0, 0, 7, 0, 0, 0, 28}
	if !bytes.Equal(b, want) {
		t.Errorf("AppendTo:\n%x\nwant\n%x", b, want)
	}
	got, err := ParseHeader(b[1:])
	h.MajorVersion, h.Flags = 2, FlagResponse
	if err != nil || got != h {
		t.Errorf("ParseHeader: %+v, %v", got, err)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		v    interface{ String() string }
		want string
	}{
		{NO_PROPOSAL_CHOSEN, "NO_PROPOSAL_CHOSEN"},
		{NAT_DETECTION_SOURCE_IP, "NAT_DETECTION_SOURCE_IP"},
		{USE_ASSIGNED_HoA, "USE_ASSIGNED_HoA"},
		{SA_RESOURCE_INFO, "SA_RESOURCE_INFO"},
		{NotifyType(12345), "NOTIFY(12345)"},
		{IKE_SA_INIT, "IKE_SA_INIT"},
		{IKE_FOLLOWUP_KE, "IKE_FOLLOWUP_KE"},
		{ExchangeType(99), "EXCHANGE(99)"},
		{FlagInitiator | FlagResponse, "I|R"},
		{Flags(0), "0"},
		{Flags(0x29), "I|R|0x1"},
		{PayloadSKF, "SKF"},
		{PayloadNotify, "N"},
		{PayloadType(200), "PAYLOAD(200)"},
		{ProtoESP, "ESP"},
		{TransformKE, "KE"},
		{TransformType(9), "ADDKE4"},
		{ENCR_AES_GCM_16, "ENCR_AES_GCM_16"},
		{PRF_HMAC_SHA2_256, "PRF_HMAC_SHA2_256"},
		{AUTH_HMAC_SHA2_256_128, "AUTH_HMAC_SHA2_256_128"},
		{KE_CURVE25519, "Curve25519"},
		{KE_MLKEM768, "ml-kem-768"},
		{KEID(4000), "KE(4000)"},
		{ESN_YES, "Extended Sequence Numbers"},
		{AttrKeyLength, "Key Length"},
		{AuthSharedKey, "Shared Key Message Integrity Code"},
		{HashSHA2_256, "SHA2-256"},
		{IDDERASN1DN, "ID_DER_ASN1_DN"},
		{CertX509Signature, "X.509 Certificate - Signature"},
		{TSIPv6AddrRange, "TS_IPV6_ADDR_RANGE"},
		{CFG_REPLY, "CFG_REPLY"},
		{INTERNAL_DNS_DOMAIN, "INTERNAL_DNS_DOMAIN"},
		{ConfigAttrType(0x7000), "CFGATTR(28672)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%T(%v): String() = %q, want %q", tt.v, tt.v, got, tt.want)
		}
	}
	if !INVALID_SYNTAX.IsError() || !NotifyType(16383).IsError() || INITIAL_CONTACT.IsError() {
		t.Error("IsError")
	}
}

// TestNotifyNumbers pins a sample of the registry against the RFCs' tables.
func TestNotifyNumbers(t *testing.T) {
	for v, want := range map[NotifyType]uint16{
		UNSUPPORTED_CRITICAL_PAYLOAD: 1, INVALID_IKE_SPI: 4, INVALID_MAJOR_VERSION: 5, INVALID_SYNTAX: 7,
		INVALID_MESSAGE_ID: 9, INVALID_SPI: 11, NO_PROPOSAL_CHOSEN: 14, INVALID_KE_PAYLOAD: 17,
		AUTHENTICATION_FAILED: 24, TS_UNACCEPTABLE: 38, TEMPORARY_FAILURE: 43, CHILD_SA_NOT_FOUND: 44,
		INITIAL_CONTACT: 16384, SET_WINDOW_SIZE: 16385, COOKIE: 16390, USE_TRANSPORT_MODE: 16391,
		REKEY_SA: 16393, NON_FIRST_FRAGMENTS_ALSO: 16395, MOBIKE_SUPPORTED: 16396, NO_NATS_ALLOWED: 16402,
		REDIRECT: 16407, EAP_ONLY_AUTHENTICATION: 16417, CHILDLESS_IKEV2_SUPPORTED: 16418,
		IKEV2_FRAGMENTATION_SUPPORTED: 16430, SIGNATURE_HASH_ALGORITHMS: 16431,
		INTERMEDIATE_EXCHANGE_SUPPORTED: 16438, ADDITIONAL_KEY_EXCHANGE: 16441,
	} {
		if uint16(v) != want {
			t.Errorf("%v = %d, want %d", v, uint16(v), want)
		}
	}
	// Every named value has a distinct name.
	seen := map[string]NotifyType{}
	for v, name := range notifyNames {
		if w, dup := seen[name]; dup {
			t.Errorf("%s names %d and %d", name, v, w)
		}
		seen[name] = v
	}
}

// TestNotifyProtocolWithoutSPI: RFC 7296 3.10, the Protocol ID of a notify
// without an SPI is sent as zero and ignored on receipt.
func TestNotifyProtocolWithoutSPI(t *testing.T) {
	_, b, err := MarshalPayloads([]Payload{&Notify{Protocol: ProtoESP, NotifyType: ESP_TFC_PADDING_NOT_SUPPORTED}})
	if err != nil || b[4] != 0 {
		t.Fatalf("sent Protocol ID %d, %v", b[4], err)
	}
	b[4] = byte(ProtoIKE)
	ps, err := ParsePayloads(PayloadNotify, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := ps[0].(*Notify); n.Protocol != ProtoNone || n.NotifyType != ESP_TFC_PADDING_NOT_SUPPORTED {
		t.Errorf("parsed %#v", n)
	}
}
