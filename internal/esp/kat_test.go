package esp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// splitTrailer splits an ESP plaintext into payload and next header,
// checking that its padding is what Seal would produce.
func splitTrailer(t *testing.T, pt []byte, align int) (payload []byte, nh uint8) {
	t.Helper()
	padLen := int(pt[len(pt)-2])
	payload = pt[:len(pt)-2-padLen]
	if want := (len(payload) + 2 + align - 1) &^ (align - 1); want != len(pt) {
		t.Fatalf("vector plaintext is %d bytes, Seal pads %d payload bytes to %d", len(pt), len(payload), want)
	}
	return payload, pt[len(pt)-1]
}

// TestKnownAnswerGCM runs the 14 ESP packets of draft-mcgrew-gcm-test-01
// through Seal (with the vectors' IVs) and Open. The same packets with the
// tag cut to 12 and 8 octets are AES-GCM-12 and AES-GCM-8 packets (NIST SP
// 800-38D 5.2.1.2: a shorter tag is the leftmost bits of the full one).
func TestKnownAnswerGCM(t *testing.T) {
	var file struct {
		Vectors []struct {
			Index                                               int
			Key, Salt, IV, AAD, SPI, Plaintext, Ciphertext, Tag string
			ESN                                                 bool
		}
	}
	readJSON(t, "esp_aes_gcm_draft-mcgrew-gcm-test-01.json", &file)
	if len(file.Vectors) != 14 {
		t.Fatalf("%d vectors, want 14", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		key, salt, iv, aad := unhex(t, v.Key), unhex(t, v.Salt), unhex(t, v.IV), unhex(t, v.AAD)
		pt, ct, tag := unhex(t, v.Plaintext), unhex(t, v.Ciphertext), unhex(t, v.Tag)
		spi := binary.BigEndian.Uint32(unhex(t, v.SPI))
		var seq uint64
		if v.ESN {
			seq = binary.BigEndian.Uint64(aad[4:12])
		} else {
			seq = uint64(binary.BigEndian.Uint32(aad[4:8]))
		}
		payload, nh := splitTrailer(t, pt, 4)
		for _, g := range []struct {
			id  wire.EncrID
			icv int
		}{{wire.ENCR_AES_GCM_16, 16}, {wire.ENCR_AES_GCM_12, 12}, {wire.ENCR_AES_GCM_8, 8}} {
			c := Config{SPI: spi, Mode: Transport, Encr: g.id, EncrKeyLen: len(key) * 8,
				EncrKey: append(append([]byte{}, key...), salt...), ESN: v.ESN}
			o, in := newPair(t, c)

			want := binary.BigEndian.AppendUint32(nil, spi)
			want = binary.BigEndian.AppendUint32(want, uint32(seq))
			want = append(want, iv...)
			want = append(want, ct...)
			want = append(want, tag[:g.icv]...)

			got, err := o.seal(nil, payload, nh, seq, iv)
			if err != nil {
				t.Fatalf("case %d/%d: seal: %v", v.Index, g.icv, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("case %d/%d: seal\n got %x\nwant %x", v.Index, g.icv, got, want)
			}

			// The receiver has seen seq-1, so that Appendix A infers the
			// vector's high-order bits.
			in.w.reset(seq - 1)
			gotPayload, gotNH, err := in.Open(nil, want)
			if err != nil {
				t.Fatalf("case %d/%d: open: %v", v.Index, g.icv, err)
			}
			if !bytes.Equal(gotPayload, payload) || gotNH != nh {
				t.Errorf("case %d/%d: open = %x, %d; want %x, %d", v.Index, g.icv, gotPayload, gotNH, payload, nh)
			}

			// A flipped bit in the IV (part of the nonce), the ciphertext or
			// the ICV fails authentication.
			for _, at := range []int{8, 16, len(want) - g.icv - 1, len(want) - 1} {
				bad := bytes.Clone(want)
				bad[at] ^= 0x80
				in.w.reset(seq - 1)
				if _, _, err := in.Open(nil, bad); err != ErrAuth {
					t.Errorf("case %d/%d: bit flipped at %d: err = %v, want ErrAuth", v.Index, g.icv, at, err)
				}
			}
		}
	}
}

// TestKnownAnswerCBC checks RFC 3602 section 4 cases 5-8: complete ESP
// packets with AES-128-CBC and no integrity.
func TestKnownAnswerCBC(t *testing.T) {
	var file struct {
		ESP []struct {
			Reference  string
			KeyHex     string `json:"key"`
			SPIHex     string `json:"spi"`
			PacketHex  string `json:"esp_packet"`
			IVHex      string `json:"iv"`
			PayloadHex string `json:"payload"`
			Seq        uint64
			NextHeader uint8 `json:"next_header"`
		}
	}
	readJSON(t, "aes_cbc_rfc3602.json", &file)
	if len(file.ESP) != 4 {
		t.Fatalf("%d ESP cases, want 4", len(file.ESP))
	}
	for _, v := range file.ESP {
		key := unhex(t, v.KeyHex)
		c := Config{SPI: binary.BigEndian.Uint32(unhex(t, v.SPIHex)), Mode: Transport,
			Encr: wire.ENCR_AES_CBC, EncrKeyLen: len(key) * 8, EncrKey: key, allowNoInteg: true}
		o, in := newPair(t, c)
		want, payload := unhex(t, v.PacketHex), unhex(t, v.PayloadHex)
		got, err := o.seal(nil, payload, v.NextHeader, v.Seq, unhex(t, v.IVHex))
		if err != nil {
			t.Fatalf("%s: seal: %v", v.Reference, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: seal\n got %x\nwant %x", v.Reference, got, want)
		}
		gotPayload, nh, err := in.Open(nil, want)
		if err != nil {
			t.Fatalf("%s: open: %v", v.Reference, err)
		}
		if !bytes.Equal(gotPayload, payload) || nh != v.NextHeader {
			t.Errorf("%s: open = %x, %d; want %x, %d", v.Reference, gotPayload, nh, payload, v.NextHeader)
		}
	}
}

// TestKnownAnswerChaCha20Poly1305 checks the ESP packet of RFC 7634
// appendix A.
func TestKnownAnswerChaCha20Poly1305(t *testing.T) {
	var file struct {
		Vectors []struct {
			Reference                                      string
			Key, Salt, IV, AAD, Plaintext, Ciphertext, Tag string
		}
	}
	readJSON(t, "chacha20poly1305_rfc7539_rfc8439_rfc7634.json", &file)
	found := false
	for _, v := range file.Vectors {
		if v.Reference != "ESP example from RFC 7634" {
			continue
		}
		found = true
		aad := unhex(t, v.AAD)
		pt := unhex(t, v.Plaintext)
		payload, nh := splitTrailer(t, pt, 4)
		c := Config{SPI: binary.BigEndian.Uint32(aad[0:4]), Mode: Tunnel, Encr: wire.ENCR_CHACHA20_POLY1305,
			EncrKey: append(unhex(t, v.Key), unhex(t, v.Salt)...)}
		o, in := newPair(t, c)
		seq := uint64(binary.BigEndian.Uint32(aad[4:8]))
		iv := unhex(t, v.IV)
		want := append(append(append(bytes.Clone(aad), iv...), unhex(t, v.Ciphertext)...), unhex(t, v.Tag)...)
		got, err := o.seal(nil, payload, nh, seq, iv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seal\n got %x\nwant %x", got, want)
		}
		gotPayload, gotNH, err := in.Open(nil, want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotPayload, payload) || gotNH != nh || nh != ProtoIPv4 {
			t.Errorf("open = %x, %d; want %x, %d", gotPayload, gotNH, payload, nh)
		}
	}
	if !found {
		t.Fatal("RFC 7634 ESP vector missing")
	}
}

// TestHMACKnownAnswer checks the marshaled-state HMAC against RFC 4868's
// AUTH_HMAC_SHA2_* cases.
func TestHMACKnownAnswer(t *testing.T) {
	var file struct {
		Vectors []struct{ Kind, Alg, Key, Data, ICV string }
	}
	readJSON(t, "hmac_sha2_rfc4868.json", &file)
	ids := map[string]wire.IntegID{
		"AUTH_HMAC_SHA2_256_128": wire.AUTH_HMAC_SHA2_256_128,
		"AUTH_HMAC_SHA2_384_192": wire.AUTH_HMAC_SHA2_384_192,
		"AUTH_HMAC_SHA2_512_256": wire.AUTH_HMAC_SHA2_512_256,
	}
	n := 0
	for _, v := range file.Vectors {
		if v.Kind != "integrity" {
			continue
		}
		k, err := newHMACKey(ids[v.Alg], unhex(t, v.Key))
		if err != nil {
			t.Fatalf("%s: %v", v.Alg, err)
		}
		sc := getScratch()
		got := k.mac(sc, unhex(t, v.Data), nil)[:k.icvLen]
		if want := unhex(t, v.ICV); !bytes.Equal(got, want) {
			t.Errorf("%s: icv %x, want %x", v.Alg, got, want)
		}
		putScratch(sc)
		n++
	}
	if n < 6 {
		t.Fatalf("only %d integrity vectors", n)
	}
}
