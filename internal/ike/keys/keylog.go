package keys

import (
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Wireshark reads its IKEv2 and ESP keys from two UAT files in its
// configuration directory, ikev2_decryption_table and esp_sa (the layout
// strongSwan's save-keys plugin writes). Each record names its algorithms by
// the exact strings of Wireshark's value tables; an unknown name is refused
// with "invalid value". The names below are those of Wireshark 4.0
// (libwireshark16, Debian 12), taken from its library with
//
//	strings libwireshark.so.16 | grep -E '\[RFC(3602|4106|4868|5282)\]'
//
// Wireshark 4.0 has no ChaCha20-Poly1305 in either table, so no record is
// produced for it (see IKEDecryptionRecord and ESPSARecord).

// ikeIntegName is the integrity column of ikev2_decryption_table.
var ikeIntegName = map[wire.IntegID]string{
	wire.AUTH_HMAC_SHA1_96:      "HMAC_SHA1_96 [RFC2404]",
	wire.AUTH_HMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
	wire.AUTH_HMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
	wire.AUTH_HMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
}

// ikeIntegNone is the integrity column for AEADs.
const ikeIntegNone = "NONE [RFC4306]"

// ikeEncrName returns the encryption column of ikev2_decryption_table, or ""
// when Wireshark cannot decrypt the cipher.
func ikeEncrName(id wire.EncrID, keyLenBits int) string {
	switch keyLenBits {
	case 128, 192, 256:
	default:
		return ""
	}
	switch id {
	case wire.ENCR_AES_CBC:
		return fmt.Sprintf("AES-CBC-%d [RFC3602]", keyLenBits)
	case wire.ENCR_AES_GCM_8:
		return fmt.Sprintf("AES-GCM-%d with 8 octet ICV [RFC5282]", keyLenBits)
	case wire.ENCR_AES_GCM_12:
		return fmt.Sprintf("AES-GCM-%d with 12 octet ICV [RFC5282]", keyLenBits)
	case wire.ENCR_AES_GCM_16:
		return fmt.Sprintf("AES-GCM-%d with 16 octet ICV [RFC5282]", keyLenBits)
	}
	return ""
}

// espEncrName is the encryption column of esp_sa. Wireshark's ESP table
// names AES-CBC once for all key lengths, and wants each AES-GCM key with its
// 4-octet salt appended (RFC 4106 8.1).
var espEncrName = map[wire.EncrID]string{
	wire.ENCR_AES_CBC:    "AES-CBC [RFC3602]",
	wire.ENCR_AES_GCM_8:  "AES-GCM with 8 octet ICV [RFC4106]",
	wire.ENCR_AES_GCM_12: "AES-GCM with 12 octet ICV [RFC4106]",
	wire.ENCR_AES_GCM_16: "AES-GCM with 16 octet ICV [RFC4106]",
}

// espIntegName is the authentication column of esp_sa.
var espIntegName = map[wire.IntegID]string{
	wire.AUTH_HMAC_SHA1_96:      "HMAC-SHA-1-96 [RFC2404]",
	wire.AUTH_HMAC_SHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
	wire.AUTH_HMAC_SHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
	wire.AUTH_HMAC_SHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}

// espIntegNull is the authentication column for AEADs.
const espIntegNull = "NULL"

// IKEDecryptionRecord returns one line (without the newline) of Wireshark's
// ikev2_decryption_table for an IKE SA:
//
//	SPIi,SPIr,SK_ei,SK_er,"encryption",SK_ai,SK_ar,"integrity"
//
// SPIs and keys are plain hex, unquoted; an AEAD's SK_e* include the salt
// and its integrity is "NONE [RFC4306]" with empty keys. It returns "" when
// Wireshark cannot decrypt the suite (ChaCha20-Poly1305), so that the
// caller writes nothing rather than a line that would fail to load.
//
// The record contains the SA's secrets: write it only where the operator
// asked for a key log.
func IKEDecryptionRecord(spii, spir uint64, s algs.Suite, k *IKEKeys) string {
	if k == nil {
		return ""
	}
	encr := ikeEncrName(wire.EncrID(s.Encr.ID), int(s.Encr.KeyLen))
	if encr == "" {
		return ""
	}
	integ := ikeIntegNone
	if e := s.EncrAlg(); e == nil || !e.AEAD {
		if integ = ikeIntegName[wire.IntegID(s.Integ.ID)]; integ == "" {
			return ""
		}
	}
	return fmt.Sprintf("%016x,%016x,%s,%s,%q,%s,%s,%q", spii, spir,
		hex.EncodeToString(k.SKei), hex.EncodeToString(k.SKer), encr,
		hex.EncodeToString(k.SKai), hex.EncodeToString(k.SKar), integ)
}

// ESPSARecord returns one line (without the newline) of Wireshark's esp_sa
// for one direction of a CHILD_SA, the packets from src to dst with SPI spi:
//
//	"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","AES-GCM with 16 octet ICV [RFC4106]","0x<key|salt>","NULL",""
//
// family is "IPv4" or "IPv6". encrKey is that direction's encryption key
// (with the salt for AES-GCM, as ChildKeys holds it) and integKey its
// integrity key (empty for AEADs). A CHILD_SA needs two records, one per
// SPI. It returns "" when Wireshark cannot decrypt the suite
// (ChaCha20-Poly1305; newer Wireshark releases know it as "ChaCha20 with
// Poly1305 [RFC7634]", 4.0 does not).
//
// The record contains the SA's secrets: write it only where the operator
// asked for a key log.
func ESPSARecord(family string, src, dst netip.Addr, spi uint32, s algs.Suite, encrKey, integKey []byte) string {
	encr := espEncrName[wire.EncrID(s.Encr.ID)]
	if encr == "" {
		return ""
	}
	integ, integHex := espIntegNull, ""
	if e := s.EncrAlg(); e == nil || !e.AEAD {
		if integ = espIntegName[wire.IntegID(s.Integ.ID)]; integ == "" {
			return ""
		}
		integHex = "0x" + hex.EncodeToString(integKey)
	}
	return fmt.Sprintf("%q,%q,%q,\"0x%08x\",%q,\"0x%s\",%q,%q", family,
		src.Unmap().WithZone("").String(), dst.Unmap().WithZone("").String(), spi, encr,
		hex.EncodeToString(encrKey), integ, integHex)
}
