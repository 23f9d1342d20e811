package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/netip"
	"os"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// rubNDS is testdata/rub-nds_ikev2_psk_modp1024_aescbc_sha1.json: a recorded
// IKE_SA_INIT + IKE_AUTH exchange with PSK "AAAA", MODP-1024, AES-128-CBC,
// HMAC-SHA1-96 and PRF-HMAC-SHA1, and two KDF/AUTH unit vectors.
type rubNDS struct {
	Exchange struct {
		M1Raw          hexBytes `json:"m1_ike_sa_init_request"`
		M2Raw          hexBytes `json:"m2_ike_sa_init_response"`
		M3Raw          hexBytes `json:"m3_ike_auth_request"`
		M4Raw          hexBytes `json:"m4_ike_auth_response"`
		DHPrivate      hexBytes `json:"initiator_dh_private_pkcs8_der"`
		SPIi           hexBytes `json:"spi_i"`
		Ni             hexBytes `json:"ni"`
		SPIrExpected   hexBytes `json:"spi_r_expected"`
		ChildSPIi      hexBytes `json:"child_spi_i"`
		ChildSPIr      hexBytes `json:"child_spi_r_expected"`
		IKEAuthIV      hexBytes `json:"ike_auth_iv"`
		IKEAuthPadding hexBytes `json:"ike_auth_sk_padding"`
		PSK            string   `json:"psk_ascii"`
	} `json:"exchange"`
	Keys struct {
		PSK      string   `json:"psk_ascii"`
		SPIi     hexBytes `json:"spi_i"`
		SPIr     hexBytes `json:"spi_r"`
		Ni       hexBytes `json:"ni"`
		Nr       hexBytes `json:"nr"`
		GIR      hexBytes `json:"g_ir"`
		SKEYSEED hexBytes `json:"SKEYSEED"`
		SKd      hexBytes `json:"SK_d"`
		SKai     hexBytes `json:"SK_ai"`
		SKar     hexBytes `json:"SK_ar"`
		SKei     hexBytes `json:"SK_ei"`
		SKer     hexBytes `json:"SK_er"`
		SKpi     hexBytes `json:"SK_pi"`
		SKpr     hexBytes `json:"SK_pr"`
	} `json:"session_secrets_compute_keys"`
	Auth struct {
		PSK                   string   `json:"psk_ascii"`
		SPIi                  hexBytes `json:"spi_i"`
		SPIr                  hexBytes `json:"spi_r"`
		Ni                    hexBytes `json:"ni"`
		Nr                    hexBytes `json:"nr"`
		GIR                   hexBytes `json:"g_ir"`
		Message1              hexBytes `json:"message1"`
		IDiBody               hexBytes `json:"id_i_payload_body"`
		InitiatorSignedOctets hexBytes `json:"initiator_signed_octets"`
		AUTH                  hexBytes `json:"AUTH"`
	} `json:"session_secrets_compute_auth"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

func loadRubNDS(t *testing.T) *rubNDS {
	t.Helper()
	b, err := os.ReadFile("testdata/rub-nds_ikev2_psk_modp1024_aescbc_sha1.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rubNDS
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// rubSuite is the exchange's IKE suite: aes128-sha1-prfsha1-modp1024.
func rubSuite() algs.Suite {
	s := suiteFor(wire.ProtoIKE, wire.ENCR_AES_CBC, 128, wire.PRF_HMAC_SHA1, wire.AUTH_HMAC_SHA1_96)
	s.KE = algs.Transform{Type: wire.TransformKE, ID: uint16(wire.KE_MODP1024)}
	return s
}

func u64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestRubNDSSessionKeys(t *testing.T) {
	v := loadRubNDS(t).Keys
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA1)
	skeyseed := SKEYSEED(prf, v.Ni, v.Nr, v.GIR)
	if !bytes.Equal(skeyseed, v.SKEYSEED) {
		t.Fatalf("SKEYSEED %x, want %x", skeyseed, v.SKEYSEED)
	}
	k, err := DeriveIKEKeys(rubSuite(), skeyseed, v.Ni, v.Nr, u64(v.SPIi), u64(v.SPIr))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"SK_d", k.SKd, v.SKd}, {"SK_ai", k.SKai, v.SKai}, {"SK_ar", k.SKar, v.SKar},
		{"SK_ei", k.SKei, v.SKei}, {"SK_er", k.SKer, v.SKer},
		{"SK_pi", k.SKpi, v.SKpi}, {"SK_pr", k.SKpr, v.SKpr},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s = %x, want %x", c.name, c.got, c.want)
		}
	}
}

func TestRubNDSAuth(t *testing.T) {
	v := loadRubNDS(t).Auth
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA1)
	k, err := DeriveIKEKeys(rubSuite(), SKEYSEED(prf, v.Ni, v.Nr, v.GIR), v.Ni, v.Nr, u64(v.SPIi), u64(v.SPIr))
	if err != nil {
		t.Fatal(err)
	}
	octets := SignedOctets(prf, v.Message1, v.Nr, k.SKpi, v.IDiBody)
	if !bytes.Equal(octets, v.InitiatorSignedOctets) {
		t.Fatalf("InitiatorSignedOctets\n got %x\nwant %x", octets, v.InitiatorSignedOctets)
	}
	if auth := PSKAuth(prf, []byte(v.PSK), octets); !bytes.Equal(auth, v.AUTH) {
		t.Fatalf("AUTH %x, want %x", auth, v.AUTH)
	}
	// RFC 9242 3.3.2: IntAuth is appended after MACedIDForI.
	intAuth := []byte("IntAuth_i|IntAuth_r|IKE_AUTH_MID")
	if got := SignedOctets(prf, v.Message1, v.Nr, k.SKpi, v.IDiBody, intAuth); !bytes.Equal(got, append(bytes.Clone(octets), intAuth...)) {
		t.Error("IntAuth is not appended to the signed octets")
	}
}

// modpPrivateKey extracts p and x from a PKCS#8 DH private key as Java
// encodes it (PKCS #3 dhKeyAgreement: SEQUENCE { p, g [, l] }).
func modpPrivateKey(t *testing.T, der []byte) (p, x *big.Int) {
	t.Helper()
	var pki struct {
		Version int
		Algo    struct {
			OID    asn1.ObjectIdentifier
			Params struct {
				P, G *big.Int
			}
		}
		Key []byte
	}
	if _, err := asn1.Unmarshal(der, &pki); err != nil {
		t.Fatalf("PKCS#8: %v", err)
	}
	x = new(big.Int)
	if _, err := asn1.Unmarshal(pki.Key, &x); err != nil {
		t.Fatalf("DH private value: %v", err)
	}
	return pki.Algo.Params.P, x
}

func findPayload[T wire.Payload](ps []wire.Payload) (T, bool) {
	for _, p := range ps {
		if v, ok := p.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// TestRubNDSExchange recomputes the recorded exchange's keys from the
// initiator's DH private key and the messages, decrypts both IKE_AUTH
// messages, checks their AUTH payloads, and re-encrypts them with the
// recorded IVs and padding to the recorded octets.
func TestRubNDSExchange(t *testing.T) {
	v := loadRubNDS(t).Exchange
	prf := algs.LookupPRF(wire.PRF_HMAC_SHA1)
	suite := rubSuite()

	parse := func(name string, b []byte) *wire.Message {
		t.Helper()
		m, err := wire.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	m1, m2 := parse("m1", v.M1Raw), parse("m2", v.M2Raw)
	m3, m4 := parse("m3", v.M3Raw), parse("m4", v.M4Raw)
	if m1.SPIi != u64(v.SPIi) || m2.SPIr != u64(v.SPIrExpected) {
		t.Fatalf("SPIs %016x/%016x, want %x/%x", m1.SPIi, m2.SPIr, v.SPIi, v.SPIrExpected)
	}
	ni, ok1 := findPayload[*wire.Nonce](m1.Payloads)
	nr, ok2 := findPayload[*wire.Nonce](m2.Payloads)
	ker, ok3 := findPayload[*wire.KE](m2.Payloads)
	if !ok1 || !ok2 || !ok3 {
		t.Fatal("IKE_SA_INIT messages lack Nonce or KE payloads")
	}
	if !bytes.Equal(ni.Data, v.Ni) {
		t.Fatalf("Ni %x, want %x", ni.Data, v.Ni)
	}

	// g^ir = (g^r)^i mod p, as a fixed-length 128-octet value (RFC 7296
	// 2.14: the shared secret is padded with zeros to the prime's length).
	p, x := modpPrivateKey(t, v.DHPrivate)
	gir := new(big.Int).Exp(new(big.Int).SetBytes(ker.Data), x, p).FillBytes(make([]byte, 128))

	skeyseed := SKEYSEED(prf, ni.Data, nr.Data, gir)
	ik, err := DeriveIKEKeys(suite, skeyseed, ni.Data, nr.Data, m1.SPIi, m2.SPIr)
	if err != nil {
		t.Fatal(err)
	}
	initiator, err := NewProtector(suite, ik, true)
	if err != nil {
		t.Fatal(err)
	}
	responder, err := NewProtector(suite, ik, false)
	if err != nil {
		t.Fatal(err)
	}

	// m3 is the initiator's request: the responder opens it.
	inner3, err := responder.Open(m3)
	if err != nil {
		t.Fatalf("open m3: %v", err)
	}
	if _, err := initiator.Open(m3); err == nil {
		t.Error("the initiator's own keys opened m3: directions are swapped")
	}
	idi, ok := findPayload[*wire.ID](inner3)
	auth, ok2 := findPayload[*wire.Auth](inner3)
	if !ok || !ok2 {
		t.Fatalf("m3 lacks IDi or AUTH: %v", inner3)
	}
	if idi.IDType != wire.IDIPv4Addr || netip.AddrFrom4([4]byte(idi.Data)) != netip.MustParseAddr("10.0.3.1") {
		t.Errorf("IDi %v %x, want ID_IPV4_ADDR 10.0.3.1", idi.IDType, idi.Data)
	}
	want := PSKAuth(prf, []byte(v.PSK), SignedOctets(prf, v.M1Raw, nr.Data, ik.SKpi, idi.Body()))
	if auth.Method != wire.AuthSharedKey || !bytes.Equal(auth.Data, want) {
		t.Errorf("initiator AUTH %v %x, want shared key %x", auth.Method, auth.Data, want)
	}
	if sa, ok := findPayload[*wire.SA](inner3); !ok || len(sa.Proposals) == 0 || !bytes.Equal(sa.Proposals[0].SPI, v.ChildSPIi) {
		t.Errorf("m3 SA payload lacks the child SPI %x", v.ChildSPIi)
	}

	// m4 is the responder's answer: the initiator opens it.
	inner4, err := initiator.Open(m4)
	if err != nil {
		t.Fatalf("open m4: %v", err)
	}
	idr, ok := findPayload[*wire.ID](inner4)
	auth, ok2 = findPayload[*wire.Auth](inner4)
	if !ok || !ok2 {
		t.Fatalf("m4 lacks IDr or AUTH: %v", inner4)
	}
	want = PSKAuth(prf, []byte(v.PSK), SignedOctets(prf, v.M2Raw, ni.Data, ik.SKpr, idr.Body()))
	if !bytes.Equal(auth.Data, want) {
		t.Errorf("responder AUTH %x, want %x", auth.Data, want)
	}
	if sa, ok := findPayload[*wire.SA](inner4); !ok || len(sa.Proposals) == 0 || !bytes.Equal(sa.Proposals[0].SPI, v.ChildSPIr) {
		t.Errorf("m4 SA payload lacks the child SPI %x", v.ChildSPIr)
	}

	// Re-encrypt both with their own IV and padding: the octets must match.
	// m3's IV and padding are recorded; m4's are recovered by decrypting.
	reseal := func(name string, p *Protector, m *wire.Message, inner []wire.Payload, iv, pad []byte) {
		t.Helper()
		first, body, err := wire.MarshalPayloads(inner)
		if err != nil {
			t.Fatalf("%s: marshal: %v", name, err)
		}
		got, err := p.seal(m.Header, skParams{next: first}, body, bytes.NewReader(iv), pad)
		if err != nil {
			t.Fatalf("%s: seal: %v", name, err)
		}
		if !bytes.Equal(got, m.Raw) {
			t.Errorf("%s re-encrypted\n got %x\nwant %x", name, got, m.Raw)
		}
	}
	reseal("m3", initiator, m3, inner3, v.IKEAuthIV, v.IKEAuthPadding)
	iv4, pad4 := cbcIVAndPadding(t, ik.SKer, m4)
	reseal("m4", responder, m4, inner4, iv4, pad4)
}

// cbcIVAndPadding decrypts an AES-CBC SK payload directly and returns its IV
// and padding.
func cbcIVAndPadding(t *testing.T, key []byte, m *wire.Message) (iv, pad []byte) {
	t.Helper()
	sk := m.Payloads[len(m.Payloads)-1].(*wire.Encrypted)
	const icvLen = 12 // HMAC-SHA1-96
	iv, ct := sk.Data[:16], sk.Data[16:len(sk.Data)-icvLen]
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	n := int(pt[len(pt)-1])
	return iv, pt[len(pt)-1-n : len(pt)-1]
}
