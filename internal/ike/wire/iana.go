package wire

// IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries, as far
// as Cygnet uses them. Values are from RFC 7296 section 3 unless a comment
// names another RFC.

// ExchangeType is the IKE header's Exchange Type (RFC 7296 3.1).
type ExchangeType uint8

const (
	IKE_SA_INIT        ExchangeType = 34
	IKE_AUTH           ExchangeType = 35
	CREATE_CHILD_SA    ExchangeType = 36
	INFORMATIONAL      ExchangeType = 37
	IKE_SESSION_RESUME ExchangeType = 38 // RFC 5723
	IKE_INTERMEDIATE   ExchangeType = 43 // RFC 9242
	IKE_FOLLOWUP_KE    ExchangeType = 44 // RFC 9370
)

// Flags are the IKE header flags (RFC 7296 3.1).
type Flags uint8

const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: sender can speak a higher major version
	FlagResponse  Flags = 0x20 // R: this message is a response
)

// PayloadType is a Next Payload value (RFC 7296 3.2).
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCERT     PayloadType = 37
	PayloadCERTREQ  PayloadType = 38
	PayloadAUTH     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendorID PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadSKF      PayloadType = 53 // RFC 7383
)

// ProtocolID names the protocol of a proposal, notify or delete (RFC 7296 3.3.1).
type ProtocolID uint8

const (
	ProtoNone ProtocolID = 0
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

// TransformType is a transform's type (RFC 7296 3.3.2, RFC 9370).
type TransformType uint8

const (
	TransformENCR   TransformType = 1
	TransformPRF    TransformType = 2
	TransformINTEG  TransformType = 3
	TransformKE     TransformType = 4 // "Diffie-Hellman Group" in RFC 7296, "Key Exchange Method" since RFC 9370
	TransformESN    TransformType = 5
	TransformADDKE1 TransformType = 6 // RFC 9370 Additional Key Exchange 1..7
	TransformADDKE7 TransformType = 12
)

// EncrID is a Transform Type 1 (encryption algorithm) ID.
type EncrID uint16

const (
	ENCR_3DES               EncrID = 3
	ENCR_NULL               EncrID = 11
	ENCR_AES_CBC            EncrID = 12 // RFC 3602
	ENCR_AES_CTR            EncrID = 13 // RFC 5930
	ENCR_AES_CCM_8          EncrID = 14 // RFC 5282
	ENCR_AES_CCM_12         EncrID = 15
	ENCR_AES_CCM_16         EncrID = 16
	ENCR_AES_GCM_8          EncrID = 18 // RFC 5282: AES-GCM with an 8-octet ICV
	ENCR_AES_GCM_12         EncrID = 19
	ENCR_AES_GCM_16         EncrID = 20
	ENCR_NULL_AUTH_AES_GMAC EncrID = 21
	ENCR_CHACHA20_POLY1305  EncrID = 28 // RFC 7634
)

// PRFID is a Transform Type 2 (pseudorandom function) ID.
type PRFID uint16

const (
	PRF_HMAC_MD5      PRFID = 1
	PRF_HMAC_SHA1     PRFID = 2
	PRF_AES128_XCBC   PRFID = 4
	PRF_HMAC_SHA2_256 PRFID = 5 // RFC 4868
	PRF_HMAC_SHA2_384 PRFID = 6
	PRF_HMAC_SHA2_512 PRFID = 7
	PRF_AES128_CMAC   PRFID = 8
)

// IntegID is a Transform Type 3 (integrity algorithm) ID.
type IntegID uint16

const (
	AUTH_NONE              IntegID = 0
	AUTH_HMAC_MD5_96       IntegID = 1
	AUTH_HMAC_SHA1_96      IntegID = 2
	AUTH_AES_XCBC_96       IntegID = 5
	AUTH_HMAC_SHA2_256_128 IntegID = 12 // RFC 4868
	AUTH_HMAC_SHA2_384_192 IntegID = 13
	AUTH_HMAC_SHA2_512_256 IntegID = 14
)

// KEID is a Transform Type 4 (key exchange method, formerly Diffie-Hellman
// group) ID. The same numbers are used in the KE payload.
type KEID uint16

const (
	KE_NONE         KEID = 0
	KE_MODP768      KEID = 1
	KE_MODP1024     KEID = 2
	KE_MODP1536     KEID = 5
	KE_MODP2048     KEID = 14 // RFC 3526
	KE_MODP3072     KEID = 15
	KE_MODP4096     KEID = 16
	KE_MODP6144     KEID = 17
	KE_MODP8192     KEID = 18
	KE_ECP256       KEID = 19 // RFC 5903
	KE_ECP384       KEID = 20
	KE_ECP521       KEID = 21
	KE_MODP1024_160 KEID = 22 // RFC 5114
	KE_MODP2048_224 KEID = 23
	KE_MODP2048_256 KEID = 24
	KE_ECP192       KEID = 25
	KE_ECP224       KEID = 26
	KE_CURVE25519   KEID = 31 // RFC 8031
	KE_CURVE448     KEID = 32
	KE_MLKEM512     KEID = 35 // RFC 9370 + draft-ietf-ipsecme-ikev2-mlkem
	KE_MLKEM768     KEID = 36
	KE_MLKEM1024    KEID = 37
)

// ESNID is a Transform Type 5 (extended sequence numbers) ID.
type ESNID uint16

const (
	ESN_NO  ESNID = 0
	ESN_YES ESNID = 1
)

// AttributeType is a transform attribute type (RFC 7296 3.3.5).
type AttributeType uint16

// AttrKeyLength is the only attribute RFC 7296 defines; it is always sent in
// TV format (the AF bit set).
const AttrKeyLength AttributeType = 14

// AuthMethod is the AUTH payload's Auth Method (RFC 7296 3.8).
type AuthMethod uint8

const (
	AuthRSASig           AuthMethod = 1 // RSA PKCS#1 v1.5 with SHA-1
	AuthSharedKey        AuthMethod = 2 // Shared Key Message Integrity Code
	AuthDSSSig           AuthMethod = 3
	AuthECDSA256         AuthMethod = 9  // RFC 4754: ECDSA with SHA-256 on P-256
	AuthECDSA384         AuthMethod = 10 // RFC 4754: ECDSA with SHA-384 on P-384
	AuthECDSA521         AuthMethod = 11 // RFC 4754: ECDSA with SHA-512 on P-521
	AuthNULL             AuthMethod = 13 // RFC 7619
	AuthDigitalSignature AuthMethod = 14 // RFC 7427
)

// HashAlgorithm is an RFC 7427 hash algorithm identifier, as carried in the
// SIGNATURE_HASH_ALGORITHMS notify.
type HashAlgorithm uint16

const (
	HashSHA1     HashAlgorithm = 1
	HashSHA2_256 HashAlgorithm = 2
	HashSHA2_384 HashAlgorithm = 3
	HashSHA2_512 HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420 (Ed25519, Ed448)
)

// IDType is an identification payload's ID Type (RFC 7296 3.5).
type IDType uint8

const (
	IDIPv4Addr  IDType = 1
	IDFQDN      IDType = 2
	IDRFC822    IDType = 3
	IDIPv6Addr  IDType = 5
	IDDERASN1DN IDType = 9
	IDDERASN1GN IDType = 10
	IDKeyID     IDType = 11
	IDNULL      IDType = 13 // RFC 7619
)

// CertEncoding is a CERT or CERTREQ payload's Cert Encoding (RFC 7296 3.6).
type CertEncoding uint8

const (
	CertPKCS7         CertEncoding = 1
	CertPGP           CertEncoding = 2
	CertDNSSignedKey  CertEncoding = 3
	CertX509Signature CertEncoding = 4
	CertKerberos      CertEncoding = 6
	CertCRL           CertEncoding = 7
	CertARL           CertEncoding = 8
	CertSPKI          CertEncoding = 9
	CertX509Attribute CertEncoding = 10
	CertHashURLX509   CertEncoding = 12
	CertHashURLBundle CertEncoding = 13
	CertOCSPContent   CertEncoding = 14 // RFC 4806
	CertRawPublicKey  CertEncoding = 15 // RFC 7670
)

// TSType is a traffic selector's TS Type (RFC 7296 3.13.1).
type TSType uint8

const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

// ConfigType is a CP payload's CFG Type (RFC 7296 3.15).
type ConfigType uint8

const (
	CFG_REQUEST ConfigType = 1
	CFG_REPLY   ConfigType = 2
	CFG_SET     ConfigType = 3
	CFG_ACK     ConfigType = 4
)

// ConfigAttrType is a configuration attribute type (RFC 7296 3.15.1).
type ConfigAttrType uint16

const (
	INTERNAL_IP4_ADDRESS ConfigAttrType = 1
	INTERNAL_IP4_NETMASK ConfigAttrType = 2
	INTERNAL_IP4_DNS     ConfigAttrType = 3
	INTERNAL_IP4_NBNS    ConfigAttrType = 4
	INTERNAL_IP4_DHCP    ConfigAttrType = 6
	APPLICATION_VERSION  ConfigAttrType = 7
	INTERNAL_IP6_ADDRESS ConfigAttrType = 8
	INTERNAL_IP6_DNS     ConfigAttrType = 10
	INTERNAL_IP6_DHCP    ConfigAttrType = 12
	INTERNAL_IP4_SUBNET  ConfigAttrType = 13
	SUPPORTED_ATTRIBUTES ConfigAttrType = 14
	INTERNAL_IP6_SUBNET  ConfigAttrType = 15
	INTERNAL_DNS_DOMAIN  ConfigAttrType = 25 // RFC 8598
	INTERNAL_DNSSEC_TA   ConfigAttrType = 26 // RFC 8598
)
