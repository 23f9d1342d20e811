package wire

import (
	"net/netip"
	"os"
)

// Sample messages shared by the truncation, fuzz, tshark and benchmark tests.
// Their contents are made up but realistic: what Cygnet and strongSwan send.

// testCert is a self-signed RSA-2048 X.509 certificate (testdata/PROVENANCE),
// so that dissectors that decode CERT payloads find a real one.
var testCert = func() []byte {
	b, err := os.ReadFile("testdata/gw-a.example.crt.der")
	if err != nil {
		panic(err)
	}
	return b
}()

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func ikeProposal(num uint8, spi []byte, encr EncrID, keyLen uint16, prf PRFID, integ IntegID, ke KEID) Proposal {
	p := Proposal{Num: num, Protocol: ProtoIKE, SPI: spi, Transforms: []Transform{
		{Type: TransformENCR, ID: uint16(encr), KeyLen: keyLen},
		{Type: TransformPRF, ID: uint16(prf)},
	}}
	if integ != AUTH_NONE {
		p.Transforms = append(p.Transforms, Transform{Type: TransformINTEG, ID: uint16(integ)})
	}
	p.Transforms = append(p.Transforms, Transform{Type: TransformKE, ID: uint16(ke)})
	return p
}

func espProposals(spi []byte) []Proposal {
	return []Proposal{
		{Num: 1, Protocol: ProtoESP, SPI: spi, Transforms: []Transform{
			{Type: TransformENCR, ID: uint16(ENCR_AES_GCM_16), KeyLen: 256},
			{Type: TransformESN, ID: uint16(ESN_NO)},
		}},
		{Num: 2, Protocol: ProtoESP, SPI: spi, Transforms: []Transform{
			{Type: TransformENCR, ID: uint16(ENCR_AES_CBC), KeyLen: 128},
			{Type: TransformINTEG, ID: uint16(AUTH_HMAC_SHA2_256_128)},
			{Type: TransformESN, ID: uint16(ESN_NO)},
			{Type: TransformESN, ID: uint16(ESN_YES)},
		}},
	}
}

func selector(start, end string, proto uint8, lo, hi uint16) TrafficSelector {
	s, e := netip.MustParseAddr(start), netip.MustParseAddr(end)
	t := TSIPv4AddrRange
	if s.Is6() {
		t = TSIPv6AddrRange
	}
	return TrafficSelector{Type: t, IPProtocol: proto, StartPort: lo, EndPort: hi, Start: s, End: e}
}

func sigHashAlgs() []byte { return []byte{0, 2, 0, 3, 0, 4, 0, 5} }

func sampleInitRequest() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{
				ikeProposal(1, nil, ENCR_AES_GCM_16, 256, PRF_HMAC_SHA2_256, AUTH_NONE, KE_CURVE25519),
				ikeProposal(2, nil, ENCR_AES_CBC, 128, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128, KE_MODP2048),
			}},
			&KE{Group: KE_CURVE25519, Data: fill(32, 1)},
			&Nonce{Data: fill(32, 2)},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: fill(20, 3)},
			&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: fill(20, 4)},
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
			&Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: sigHashAlgs()},
			&VendorID{Data: []byte("Cygnet test vendor ID")},
		},
	}
}

func sampleInitResponse() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKE_SA_INIT, Flags: FlagResponse},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{
				ikeProposal(1, nil, ENCR_AES_GCM_16, 256, PRF_HMAC_SHA2_256, AUTH_NONE, KE_CURVE25519),
			}},
			&KE{Group: KE_CURVE25519, Data: fill(32, 5)},
			&Nonce{Data: fill(32, 6)},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: fill(20, 7)},
			&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: fill(20, 8)},
			&CertReq{Encoding: CertX509Signature, Data: fill(40, 9)},
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
			&Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: sigHashAlgs()},
			&Notify{NotifyType: MULTIPLE_AUTH_SUPPORTED},
		},
	}
}

// sampleAuthPayloads is an IKE_AUTH request's content with every payload
// type, in the order strongSwan sends the common ones.
func sampleAuthPayloads() []Payload {
	return []Payload{
		&ID{Kind: PayloadIDi, IDType: IDFQDN, Data: []byte("gw-a.example")},
		&Cert{Encoding: CertX509Signature, Data: testCert},
		&CertReq{Encoding: CertX509Signature, Data: fill(20, 11)},
		&Notify{NotifyType: INITIAL_CONTACT},
		&ID{Kind: PayloadIDr, IDType: IDIPv4Addr, Data: []byte{192, 0, 2, 2}},
		&Auth{Method: AuthDigitalSignature, Data: fill(80, 12)},
		&Config{CfgType: CFG_REQUEST, Attrs: []ConfigAttr{
			{Type: INTERNAL_IP4_ADDRESS}, {Type: INTERNAL_IP4_DNS},
			{Type: INTERNAL_IP6_ADDRESS, Value: append(netip.MustParseAddr("2001:db8::5").AsSlice(), 64)},
			{Type: APPLICATION_VERSION, Value: []byte("cygnet")},
		}},
		&Notify{NotifyType: ESP_TFC_PADDING_NOT_SUPPORTED},
		&Notify{NotifyType: NON_FIRST_FRAGMENTS_ALSO},
		&SA{Proposals: espProposals([]byte{0xc1, 0xa2, 0xb3, 0xc4})},
		&TS{Kind: PayloadTSi, Selectors: []TrafficSelector{
			selector("10.1.0.0", "10.1.255.255", 0, 0, 65535),
			selector("2001:db8:1::", "2001:db8:1::ffff", 6, 443, 443),
		}},
		&TS{Kind: PayloadTSr, Selectors: []TrafficSelector{
			selector("10.2.0.0", "10.2.255.255", 0, 0, 65535),
		}},
		&Notify{NotifyType: MOBIKE_SUPPORTED},
		&Notify{NotifyType: ADDITIONAL_IP4_ADDRESS, Data: []byte{198, 51, 100, 7}},
		&KE{Group: KE_ECP256, Data: fill(64, 13)},
		&Nonce{Data: fill(24, 14)},
		&Delete{Protocol: ProtoESP, SPIs: [][]byte{{0xca, 0xfe, 0x00, 0x01}}},
		&VendorID{Data: fill(16, 15)},
		&EAP{Data: []byte{2, 7, 0, 18, 1, 'a', 'l', 'i', 'c', 'e', '@', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}},
	}
}

func sampleAuthPlain() *Message {
	return &Message{
		Header:   Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
		Payloads: sampleAuthPayloads(),
	}
}

func sampleAuthSK() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{
			&Encrypted{NextPayload: PayloadIDi, Data: fill(8+400+16, 16)},
		},
	}
}

func sampleAuthSKF() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{
			&EncryptedFragment{NextPayload: PayloadIDi, Number: 1, Total: 3, Data: fill(8+300+16, 17)},
		},
	}
}

func sampleCreateChild() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: CREATE_CHILD_SA, Flags: FlagInitiator, MessageID: 2},
		Payloads: []Payload{
			&Notify{Protocol: ProtoESP, SPI: []byte{0xc1, 0xa2, 0xb3, 0xc4}, NotifyType: REKEY_SA},
			&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: []byte{0xc9, 0x99, 0x00, 0x01}, Transforms: []Transform{
				{Type: TransformENCR, ID: uint16(ENCR_CHACHA20_POLY1305)},
				{Type: TransformKE, ID: uint16(KE_CURVE25519)},
				{Type: TransformESN, ID: uint16(ESN_NO)},
			}}}},
			&Nonce{Data: fill(32, 18)},
			&KE{Group: KE_CURVE25519, Data: fill(32, 19)},
			&TS{Kind: PayloadTSi, Selectors: []TrafficSelector{selector("10.1.0.0", "10.1.255.255", 0, 0, 65535)}},
			&TS{Kind: PayloadTSr, Selectors: []TrafficSelector{selector("10.2.0.0", "10.2.255.255", 0, 0, 65535)}},
		},
	}
}

func sampleInformational() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: INFORMATIONAL, Flags: FlagInitiator | FlagResponse, MessageID: 3},
		Payloads: []Payload{
			&Delete{Protocol: ProtoESP, SPIs: [][]byte{{0xc1, 0xa2, 0xb3, 0xc4}, {0xc9, 0x99, 0x00, 0x01}}},
			&Delete{Protocol: ProtoIKE},
			&Notify{NotifyType: AUTHENTICATION_FAILED},
		},
	}
}

// sampleBenchAuth is the decrypted content of a realistic IKE_AUTH request
// for the benchmarks: IDi, CERT (859 octets), CERTREQ, AUTH, SA with two ESP
// proposals, TSi, TSr and a few notifies.
func sampleBenchAuth() *Message {
	return &Message{
		Header: Header{SPIi: 0x0123456789abcdef, SPIr: 0xfedcba9876543210, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
		Payloads: []Payload{
			&ID{Kind: PayloadIDi, IDType: IDFQDN, Data: []byte("gw-a.example")},
			&Cert{Encoding: CertX509Signature, Data: testCert},
			&CertReq{Encoding: CertX509Signature, Data: fill(40, 21)},
			&Notify{NotifyType: INITIAL_CONTACT},
			&Auth{Method: AuthDigitalSignature, Data: fill(88, 22)},
			&Notify{NotifyType: ESP_TFC_PADDING_NOT_SUPPORTED},
			&Notify{NotifyType: NON_FIRST_FRAGMENTS_ALSO},
			&SA{Proposals: espProposals([]byte{0xc1, 0xa2, 0xb3, 0xc4})},
			&TS{Kind: PayloadTSi, Selectors: []TrafficSelector{selector("10.1.0.0", "10.1.255.255", 0, 0, 65535)}},
			&TS{Kind: PayloadTSr, Selectors: []TrafficSelector{selector("10.2.0.0", "10.2.255.255", 0, 0, 65535)}},
			&Notify{NotifyType: MOBIKE_SUPPORTED},
		},
	}
}

var samples = []struct {
	name string
	msg  func() *Message
}{
	{"IKE_SA_INIT request", sampleInitRequest},
	{"IKE_SA_INIT response", sampleInitResponse},
	{"IKE_AUTH plaintext", sampleAuthPlain},
	{"IKE_AUTH SK", sampleAuthSK},
	{"IKE_AUTH SKF", sampleAuthSKF},
	{"CREATE_CHILD_SA", sampleCreateChild},
	{"INFORMATIONAL", sampleInformational},
	{"IKE_AUTH bench", sampleBenchAuth},
}

func mustMarshal(m *Message) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}
