package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// ID is an Identification payload, IDi or IDr (RFC 7296 3.5).
type ID struct {
	Kind   PayloadType // PayloadIDi or PayloadIDr
	IDType IDType
	Data   []byte
}

// Cert is the Certificate payload (RFC 7296 3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

// CertReq is the Certificate Request payload (RFC 7296 3.7).
type CertReq struct {
	Encoding CertEncoding
	// Data is the Certification Authority field: for X.509 encodings, a
	// concatenation of 20-octet SHA-1 hashes of trusted CAs' public keys
	// (see Hashes).
	Data []byte
}

// Auth is the Authentication payload (RFC 7296 3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (p *ID) Type() PayloadType      { return p.Kind }
func (p *Cert) Type() PayloadType    { return PayloadCERT }
func (p *CertReq) Type() PayloadType { return PayloadCERTREQ }
func (p *Auth) Type() PayloadType    { return PayloadAUTH }

// Body returns the payload body without the generic header: ID Type, three
// RESERVED octets and the identification data. It is the
// RestOfInitIDPayload (or RestOfRespIDPayload) that the AUTH MAC covers
// (RFC 7296 2.15).
func (p *ID) Body() []byte {
	b := make([]byte, 4, 4+len(p.Data))
	b[0] = uint8(p.IDType)
	return append(b, p.Data...)
}

// checkID returns a reason if the identification data does not fit its type
// (RFC 7296 3.5). Types not listed there are accepted as they are.
func checkID(t IDType, data []byte) string {
	switch t {
	case IDIPv4Addr:
		if len(data) != 4 {
			return sprintf("%v of %d octets, want 4", t, len(data))
		}
	case IDIPv6Addr:
		if len(data) != 16 {
			return sprintf("%v of %d octets, want 16", t, len(data))
		}
	case IDFQDN, IDRFC822, IDDERASN1DN:
		if len(data) == 0 {
			return sprintf("empty %v", t)
		}
	}
	return ""
}

func parseID(kind PayloadType, s cryptobyte.String) (*ID, error) {
	var t uint8
	if !s.ReadUint8(&t) || !s.Skip(3) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &ID{Kind: kind, IDType: IDType(t), Data: clip(s)}
	if reason := checkID(p.IDType, p.Data); reason != "" {
		return nil, syntaxError("%s", reason)
	}
	return p, nil
}

func (p *ID) marshal(b *cryptobyte.Builder) {
	switch {
	case p.Kind != PayloadIDi && p.Kind != PayloadIDr:
		b.SetError(marshalError("ID payload of kind %v", p.Kind))
		return
	case checkID(p.IDType, p.Data) != "":
		b.SetError(marshalError("%v payload: %s", p.Kind, checkID(p.IDType, p.Data)))
		return
	}
	b.AddBytes(p.Body())
}

func parseCert(s cryptobyte.String) (*Cert, error) {
	var e uint8
	if !s.ReadUint8(&e) {
		return nil, syntaxError("body truncated: want at least 1 octet")
	}
	return &Cert{Encoding: CertEncoding(e), Data: clip(s)}, nil
}

func (p *Cert) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Encoding))
	b.AddBytes(p.Data)
}

// parseCertReq keeps the Certification Authority field as it is: a peer
// that sends something other than whole SHA-1 hashes has sent a request we
// cannot use, not a malformed message (strongSwan ignores such requests too).
// Hashes reports it.
func parseCertReq(s cryptobyte.String) (*CertReq, error) {
	var e uint8
	if !s.ReadUint8(&e) {
		return nil, syntaxError("body truncated: want at least 1 octet")
	}
	return &CertReq{Encoding: CertEncoding(e), Data: clip(s)}, nil
}

func (p *CertReq) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Encoding))
	b.AddBytes(p.Data)
}

// CertReqHashLen is the length of one hash in an X.509 CERTREQ: SHA-1 of a
// CA's SubjectPublicKeyInfo (RFC 7296 3.7).
const CertReqHashLen = 20

// Hashes splits the Certification Authority field of an X.509 certificate
// request into its 20-octet hashes. RFC 7296 3.7 defines the field only for
// encodings 4, 12 and 13 (X.509 signature, hash and URL of X.509 certificate
// or bundle). An empty field gives no hashes and no error.
func (p *CertReq) Hashes() ([][]byte, error) {
	switch p.Encoding {
	case CertX509Signature, CertHashURLX509, CertHashURLBundle:
	default:
		return nil, syntaxError("CERTREQ payload: encoding %v carries no CA hashes", p.Encoding)
	}
	if len(p.Data)%CertReqHashLen != 0 {
		return nil, syntaxError("CERTREQ payload: Certification Authority of %d octets is not a list of %d-octet hashes", len(p.Data), CertReqHashLen)
	}
	var hs [][]byte
	for d := p.Data; len(d) > 0; d = d[CertReqHashLen:] {
		hs = append(hs, d[:CertReqHashLen:CertReqHashLen])
	}
	return hs, nil
}

func parseAuth(s cryptobyte.String) (*Auth, error) {
	var m uint8
	if !s.ReadUint8(&m) || !s.Skip(3) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	return &Auth{Method: AuthMethod(m), Data: clip(s)}, nil
}

func (p *Auth) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Method))
	b.AddBytes([]byte{0, 0, 0})
	b.AddBytes(p.Data)
}
