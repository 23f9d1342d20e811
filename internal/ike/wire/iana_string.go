package wire

import (
	"strconv"
	"strings"
)

// String methods for the registries in iana.go. Names are spelled as in the
// IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries (the
// notation column where the registry has one); values without a name print as
// "KIND(n)".

func enumString[T ~uint8 | ~uint16](v T, names map[T]string, kind string) string {
	if s, ok := names[v]; ok {
		return s
	}
	return kind + "(" + strconv.Itoa(int(v)) + ")"
}

var exchangeNames = map[ExchangeType]string{
	IKE_SA_INIT:        "IKE_SA_INIT",
	IKE_AUTH:           "IKE_AUTH",
	CREATE_CHILD_SA:    "CREATE_CHILD_SA",
	INFORMATIONAL:      "INFORMATIONAL",
	IKE_SESSION_RESUME: "IKE_SESSION_RESUME",
	39:                 "GSA_AUTH",
	40:                 "GSA_REGISTRATION",
	41:                 "GSA_REKEY",
	42:                 "GSA_INBAND_REKEY",
	IKE_INTERMEDIATE:   "IKE_INTERMEDIATE",
	IKE_FOLLOWUP_KE:    "IKE_FOLLOWUP_KE",
}

func (t ExchangeType) String() string { return enumString(t, exchangeNames, "EXCHANGE") }

// String lists the flags that are set, e.g. "I|R"; no flags print as "0".
func (f Flags) String() string {
	var parts []string
	for _, x := range []struct {
		f    Flags
		name string
	}{{FlagInitiator, "I"}, {FlagVersion, "V"}, {FlagResponse, "R"}} {
		if f&x.f != 0 {
			parts = append(parts, x.name)
			f &^= x.f
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

var payloadNames = map[PayloadType]string{
	PayloadNone:     "NONE",
	PayloadSA:       "SA",
	PayloadKE:       "KE",
	PayloadIDi:      "IDi",
	PayloadIDr:      "IDr",
	PayloadCERT:     "CERT",
	PayloadCERTREQ:  "CERTREQ",
	PayloadAUTH:     "AUTH",
	PayloadNonce:    "Nonce",
	PayloadNotify:   "N",
	PayloadDelete:   "D",
	PayloadVendorID: "V",
	PayloadTSi:      "TSi",
	PayloadTSr:      "TSr",
	PayloadSK:       "SK",
	PayloadCP:       "CP",
	PayloadEAP:      "EAP",
	49:              "GSPM", // RFC 6467
	50:              "IDg",  // G-IKEv2
	51:              "GSA",
	52:              "KD",
	PayloadSKF:      "SKF",
	54:              "PS", // RFC 8019
}

func (t PayloadType) String() string { return enumString(t, payloadNames, "PAYLOAD") }

var protocolNames = map[ProtocolID]string{
	ProtoNone: "NONE",
	ProtoIKE:  "IKE",
	ProtoAH:   "AH",
	ProtoESP:  "ESP",
}

func (p ProtocolID) String() string { return enumString(p, protocolNames, "PROTOCOL") }

var transformTypeNames = map[TransformType]string{
	TransformENCR:  "ENCR",
	TransformPRF:   "PRF",
	TransformINTEG: "INTEG",
	TransformKE:    "KE",
	TransformESN:   "ESN",
	6:              "ADDKE1",
	7:              "ADDKE2",
	8:              "ADDKE3",
	9:              "ADDKE4",
	10:             "ADDKE5",
	11:             "ADDKE6",
	12:             "ADDKE7",
}

func (t TransformType) String() string { return enumString(t, transformTypeNames, "TRANSFORM") }

var encrNames = map[EncrID]string{
	1:                       "ENCR_DES_IV64",
	2:                       "ENCR_DES",
	ENCR_3DES:               "ENCR_3DES",
	4:                       "ENCR_RC5",
	5:                       "ENCR_IDEA",
	6:                       "ENCR_CAST",
	7:                       "ENCR_BLOWFISH",
	8:                       "ENCR_3IDEA",
	9:                       "ENCR_DES_IV32",
	ENCR_NULL:               "ENCR_NULL",
	ENCR_AES_CBC:            "ENCR_AES_CBC",
	ENCR_AES_CTR:            "ENCR_AES_CTR",
	ENCR_AES_CCM_8:          "ENCR_AES_CCM_8",
	ENCR_AES_CCM_12:         "ENCR_AES_CCM_12",
	ENCR_AES_CCM_16:         "ENCR_AES_CCM_16",
	ENCR_AES_GCM_8:          "ENCR_AES_GCM_8",
	ENCR_AES_GCM_12:         "ENCR_AES_GCM_12",
	ENCR_AES_GCM_16:         "ENCR_AES_GCM_16",
	ENCR_NULL_AUTH_AES_GMAC: "ENCR_NULL_AUTH_AES_GMAC",
	23:                      "ENCR_CAMELLIA_CBC",
	24:                      "ENCR_CAMELLIA_CTR",
	25:                      "ENCR_CAMELLIA_CCM_8",
	26:                      "ENCR_CAMELLIA_CCM_12",
	27:                      "ENCR_CAMELLIA_CCM_16",
	ENCR_CHACHA20_POLY1305:  "ENCR_CHACHA20_POLY1305",
}

func (id EncrID) String() string { return enumString(id, encrNames, "ENCR") }

var prfNames = map[PRFID]string{
	PRF_HMAC_MD5:      "PRF_HMAC_MD5",
	PRF_HMAC_SHA1:     "PRF_HMAC_SHA1",
	3:                 "PRF_HMAC_TIGER",
	PRF_AES128_XCBC:   "PRF_AES128_XCBC",
	PRF_HMAC_SHA2_256: "PRF_HMAC_SHA2_256",
	PRF_HMAC_SHA2_384: "PRF_HMAC_SHA2_384",
	PRF_HMAC_SHA2_512: "PRF_HMAC_SHA2_512",
	PRF_AES128_CMAC:   "PRF_AES128_CMAC",
}

func (id PRFID) String() string { return enumString(id, prfNames, "PRF") }

var integNames = map[IntegID]string{
	AUTH_NONE:              "NONE",
	AUTH_HMAC_MD5_96:       "AUTH_HMAC_MD5_96",
	AUTH_HMAC_SHA1_96:      "AUTH_HMAC_SHA1_96",
	3:                      "AUTH_DES_MAC",
	4:                      "AUTH_KPDK_MD5",
	AUTH_AES_XCBC_96:       "AUTH_AES_XCBC_96",
	6:                      "AUTH_HMAC_MD5_128",
	7:                      "AUTH_HMAC_SHA1_160",
	8:                      "AUTH_AES_CMAC_96",
	9:                      "AUTH_AES_128_GMAC",
	10:                     "AUTH_AES_192_GMAC",
	11:                     "AUTH_AES_256_GMAC",
	AUTH_HMAC_SHA2_256_128: "AUTH_HMAC_SHA2_256_128",
	AUTH_HMAC_SHA2_384_192: "AUTH_HMAC_SHA2_384_192",
	AUTH_HMAC_SHA2_512_256: "AUTH_HMAC_SHA2_512_256",
}

func (id IntegID) String() string { return enumString(id, integNames, "INTEG") }

var keNames = map[KEID]string{
	KE_NONE:         "NONE",
	KE_MODP768:      "768-bit MODP Group",
	KE_MODP1024:     "1024-bit MODP Group",
	KE_MODP1536:     "1536-bit MODP Group",
	KE_MODP2048:     "2048-bit MODP Group",
	KE_MODP3072:     "3072-bit MODP Group",
	KE_MODP4096:     "4096-bit MODP Group",
	KE_MODP6144:     "6144-bit MODP Group",
	KE_MODP8192:     "8192-bit MODP Group",
	KE_ECP256:       "256-bit random ECP group",
	KE_ECP384:       "384-bit random ECP group",
	KE_ECP521:       "521-bit random ECP group",
	KE_MODP1024_160: "1024-bit MODP Group with 160-bit Prime Order Subgroup",
	KE_MODP2048_224: "2048-bit MODP Group with 224-bit Prime Order Subgroup",
	KE_MODP2048_256: "2048-bit MODP Group with 256-bit Prime Order Subgroup",
	KE_ECP192:       "192-bit Random ECP Group",
	KE_ECP224:       "224-bit Random ECP Group",
	27:              "brainpoolP224r1",
	28:              "brainpoolP256r1",
	29:              "brainpoolP384r1",
	30:              "brainpoolP512r1",
	KE_CURVE25519:   "Curve25519",
	KE_CURVE448:     "Curve448",
	33:              "GOST3410_2012_256",
	34:              "GOST3410_2012_512",
	KE_MLKEM512:     "ml-kem-512",
	KE_MLKEM768:     "ml-kem-768",
	KE_MLKEM1024:    "ml-kem-1024",
}

func (id KEID) String() string { return enumString(id, keNames, "KE") }

var esnNames = map[ESNID]string{
	ESN_NO:  "No Extended Sequence Numbers",
	ESN_YES: "Extended Sequence Numbers",
}

func (id ESNID) String() string { return enumString(id, esnNames, "ESN") }

var attributeNames = map[AttributeType]string{
	AttrKeyLength: "Key Length",
}

func (t AttributeType) String() string { return enumString(t, attributeNames, "ATTR") }

var authMethodNames = map[AuthMethod]string{
	AuthRSASig:           "RSA Digital Signature",
	AuthSharedKey:        "Shared Key Message Integrity Code",
	AuthDSSSig:           "DSS Digital Signature",
	AuthECDSA256:         "ECDSA with SHA-256 on the P-256 curve",
	AuthECDSA384:         "ECDSA with SHA-384 on the P-384 curve",
	AuthECDSA521:         "ECDSA with SHA-512 on the P-521 curve",
	12:                   "Generic Secure Password Authentication Method",
	AuthNULL:             "NULL Authentication",
	AuthDigitalSignature: "Digital Signature",
}

func (m AuthMethod) String() string { return enumString(m, authMethodNames, "AUTH") }

var hashNames = map[HashAlgorithm]string{
	HashSHA1:     "SHA1",
	HashSHA2_256: "SHA2-256",
	HashSHA2_384: "SHA2-384",
	HashSHA2_512: "SHA2-512",
	HashIdentity: "Identity",
}

func (h HashAlgorithm) String() string { return enumString(h, hashNames, "HASH") }

var idTypeNames = map[IDType]string{
	IDIPv4Addr:  "ID_IPV4_ADDR",
	IDFQDN:      "ID_FQDN",
	IDRFC822:    "ID_RFC822_ADDR",
	IDIPv6Addr:  "ID_IPV6_ADDR",
	IDDERASN1DN: "ID_DER_ASN1_DN",
	IDDERASN1GN: "ID_DER_ASN1_GN",
	IDKeyID:     "ID_KEY_ID",
	12:          "ID_FC_NAME",
	IDNULL:      "ID_NULL",
}

func (t IDType) String() string { return enumString(t, idTypeNames, "ID") }

var certEncodingNames = map[CertEncoding]string{
	CertPKCS7:         "PKCS #7 wrapped X.509 certificate",
	CertPGP:           "PGP Certificate",
	CertDNSSignedKey:  "DNS Signed Key",
	CertX509Signature: "X.509 Certificate - Signature",
	CertKerberos:      "Kerberos Token",
	CertCRL:           "Certificate Revocation List (CRL)",
	CertARL:           "Authority Revocation List (ARL)",
	CertSPKI:          "SPKI Certificate",
	CertX509Attribute: "X.509 Certificate - Attribute",
	11:                "Raw RSA Key",
	CertHashURLX509:   "Hash and URL of X.509 certificate",
	CertHashURLBundle: "Hash and URL of X.509 bundle",
	CertOCSPContent:   "OCSP Content",
	CertRawPublicKey:  "Raw Public Key",
}

func (e CertEncoding) String() string { return enumString(e, certEncodingNames, "CERT") }

var tsTypeNames = map[TSType]string{
	TSIPv4AddrRange: "TS_IPV4_ADDR_RANGE",
	TSIPv6AddrRange: "TS_IPV6_ADDR_RANGE",
	9:               "TS_FC_ADDR_RANGE", // RFC 4595
	10:              "TS_SECLABEL",      // RFC 9478
}

func (t TSType) String() string { return enumString(t, tsTypeNames, "TS") }

var configTypeNames = map[ConfigType]string{
	CFG_REQUEST: "CFG_REQUEST",
	CFG_REPLY:   "CFG_REPLY",
	CFG_SET:     "CFG_SET",
	CFG_ACK:     "CFG_ACK",
}

func (t ConfigType) String() string { return enumString(t, configTypeNames, "CFG") }

var configAttrNames = map[ConfigAttrType]string{
	INTERNAL_IP4_ADDRESS: "INTERNAL_IP4_ADDRESS",
	INTERNAL_IP4_NETMASK: "INTERNAL_IP4_NETMASK",
	INTERNAL_IP4_DNS:     "INTERNAL_IP4_DNS",
	INTERNAL_IP4_NBNS:    "INTERNAL_IP4_NBNS",
	INTERNAL_IP4_DHCP:    "INTERNAL_IP4_DHCP",
	APPLICATION_VERSION:  "APPLICATION_VERSION",
	INTERNAL_IP6_ADDRESS: "INTERNAL_IP6_ADDRESS",
	INTERNAL_IP6_DNS:     "INTERNAL_IP6_DNS",
	INTERNAL_IP6_DHCP:    "INTERNAL_IP6_DHCP",
	INTERNAL_IP4_SUBNET:  "INTERNAL_IP4_SUBNET",
	SUPPORTED_ATTRIBUTES: "SUPPORTED_ATTRIBUTES",
	INTERNAL_IP6_SUBNET:  "INTERNAL_IP6_SUBNET",
	16:                   "MIP6_HOME_PREFIX",
	17:                   "INTERNAL_IP6_LINK",
	18:                   "INTERNAL_IP6_PREFIX",
	19:                   "HOME_AGENT_ADDRESS",
	20:                   "P_CSCF_IP4_ADDRESS",
	21:                   "P_CSCF_IP6_ADDRESS",
	22:                   "FTT_KAT",
	23:                   "EXTERNAL_SOURCE_IP4_NAT_INFO",
	24:                   "TIMEOUT_PERIOD_FOR_LIVENESS_CHECK",
	INTERNAL_DNS_DOMAIN:  "INTERNAL_DNS_DOMAIN",
	INTERNAL_DNSSEC_TA:   "INTERNAL_DNSSEC_TA",
}

func (t ConfigAttrType) String() string { return enumString(t, configAttrNames, "CFGATTR") }
