package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Known-answer tests on a recorded exchange (testdata/PROVENANCE).

type rubNDSVector struct {
	Exchange struct {
		M1     string `json:"m1_ike_sa_init_request"`
		M2     string `json:"m2_ike_sa_init_response"`
		M3     string `json:"m3_ike_auth_request"`
		M4     string `json:"m4_ike_auth_response"`
		SPIi   string `json:"spi_i"`
		SPIr   string `json:"spi_r_expected"`
		Ni     string `json:"ni"`
		AuthIV string `json:"ike_auth_iv"`
	} `json:"exchange"`
	Auth struct {
		Message1 string `json:"message1"`
		IDiBody  string `json:"id_i_payload_body"`
	} `json:"session_secrets_compute_auth"`
}

func loadRubNDS(t *testing.T) rubNDSVector {
	t.Helper()
	b, err := os.ReadFile("testdata/rub-nds_ikev2_psk_modp1024_aescbc_sha1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rubNDSVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordedExchange(t *testing.T) {
	v := loadRubNDS(t)
	spiI, spiR := unhex(t, v.Exchange.SPIi), unhex(t, v.Exchange.SPIr)

	// IKE_SA_INIT request: SA (AES-CBC-128, HMAC-SHA1, HMAC-SHA1-96, MODP-1024), KE, Ni.
	m1 := unhex(t, v.Exchange.M1)
	m, err := Parse(m1)
	if err != nil {
		t.Fatalf("m1: %v", err)
	}
	if m.SPIi != be64(spiI) || m.SPIr != 0 || m.Exchange != IKE_SA_INIT || !m.IsInitiator() || m.IsResponse() || m.MessageID != 0 {
		t.Errorf("m1 header %+v", m.Header)
	}
	want := []Payload{
		&SA{Proposals: []Proposal{ikeProposal(1, nil, ENCR_AES_CBC, 128, PRF_HMAC_SHA1, AUTH_HMAC_SHA1_96, KE_MODP1024)}},
		&KE{Group: KE_MODP1024, Data: m.Payloads[1].(*KE).Data},
		&Nonce{Data: unhex(t, v.Exchange.Ni)},
	}
	requireEqualMessages(t, m, &Message{Header: m.Header, Payloads: want})
	if len(want[1].(*KE).Data) != 128 {
		t.Errorf("KE data of %d octets", len(want[1].(*KE).Data))
	}
	// The recording sets the critical bit on its KE payload, which RFC 7296
	// 3.2 says to ignore for a type we understand; we send it as zero.
	remarshalled := mustMarshal(m)
	expected := bytes.Clone(m1)
	expected[HeaderLen+48+1] = 0 // KE follows the 48-octet SA payload
	if !bytes.Equal(remarshalled, expected) {
		t.Errorf("m1 re-marshalled:\n%x\nwant\n%x", remarshalled, expected)
	}
	if !bytes.Equal(m.Raw, m1) {
		t.Error("m1: Raw is not the datagram")
	}

	// IKE_SA_INIT response.
	m2 := unhex(t, v.Exchange.M2)
	m, err = Parse(m2)
	if err != nil {
		t.Fatalf("m2: %v", err)
	}
	if m.SPIr != be64(spiR) || !m.IsResponse() || m.IsInitiator() {
		t.Errorf("m2 header %+v", m.Header)
	}
	if sa, ok := m.Payloads[0].(*SA); !ok || len(sa.Proposals) != 1 || len(sa.Proposals[0].Transforms) != 4 {
		t.Errorf("m2 SA %#v", m.Payloads[0])
	}

	// IKE_AUTH request and response: one SK payload, IDi / IDr first inside.
	for _, tc := range []struct {
		hex   string
		first PayloadType
	}{{v.Exchange.M3, PayloadIDi}, {v.Exchange.M4, PayloadIDr}} {
		raw := unhex(t, tc.hex)
		m, err := Parse(raw)
		if err != nil {
			t.Fatalf("IKE_AUTH: %v", err)
		}
		sk, ok := m.Payloads[0].(*Encrypted)
		if len(m.Payloads) != 1 || !ok || sk.NextPayload != tc.first || m.Exchange != IKE_AUTH || m.MessageID != 1 {
			t.Fatalf("IKE_AUTH %+v %#v", m.Header, m.Payloads)
		}
		if len(sk.Data) != len(raw)-HeaderLen-4 {
			t.Errorf("SK data of %d octets", len(sk.Data))
		}
		if got := m.EncryptedPrefix(); !bytes.Equal(got, raw[:HeaderLen+4]) {
			t.Errorf("EncryptedPrefix %x", got)
		}
		if !bytes.Equal(mustMarshal(m), raw) {
			t.Error("IKE_AUTH re-marshalled differently")
		}
	}
	m, _ = Parse(unhex(t, v.Exchange.M3))
	if iv := unhex(t, v.Exchange.AuthIV); !bytes.HasPrefix(m.Payloads[0].(*Encrypted).Data, iv) {
		t.Error("SK data does not start with the recorded IV")
	}

	// The AUTH vector: the initiator's IKE_SA_INIT message, and the IDi body
	// (RestOfInitIDPayload) of ID_IPV4_ADDR 10.0.3.1.
	if _, err := Parse(unhex(t, v.Auth.Message1)); err != nil {
		t.Errorf("AUTH vector message1: %v", err)
	}
	id := &ID{Kind: PayloadIDi, IDType: IDIPv4Addr, Data: []byte{10, 0, 3, 1}}
	if got := id.Body(); !bytes.Equal(got, unhex(t, v.Auth.IDiBody)) {
		t.Errorf("ID Body %x, want %s", got, v.Auth.IDiBody)
	}
}

func be64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
