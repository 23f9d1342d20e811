package auth

import (
	encasn1 "encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// AlgorithmIdentifiers of RFC 7427 (Digital Signature, auth method 14).

var (
	oidSHA1WithRSA   = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASSAPSS     = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA1          = encasn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256        = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = encasn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSAWithSHA1 = encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSASHA256   = encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384   = encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512   = encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519       = encasn1.ObjectIdentifier{1, 3, 101, 112} // RFC 8410
	oidEd448         = encasn1.ObjectIdentifier{1, 3, 101, 113}
)

// algorithmIdentifier returns the DER AlgorithmIdentifier we send for s
// inside method 14 (RFC 7427 3):
//
//   - sha{256,384,512}WithRSAEncryption with NULL parameters (RFC 7427 A.1,
//     RFC 4055 5);
//   - id-RSASSA-PSS with explicit parameters: hashAlgorithm and MGF1's hash
//     as AlgorithmIdentifiers with NULL parameters, saltLength the hash
//     length, trailerField omitted (its DEFAULT). This is RFC 7427 A.4.3 as
//     corrected by its errata (the published A.4.3 also encodes the default
//     trailerField) and exactly what strongSwan builds
//     (rsa_pss_params_build, asn1_algorithmIdentifier);
//   - ecdsa-with-SHA{256,384,512} without parameters (RFC 7427 A.3, RFC
//     5758 3.2);
//   - id-Ed25519 without parameters (RFC 8420 3, RFC 8410 3).
func algorithmIdentifier(s Scheme) []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		switch s {
		case RSAPKCS1SHA256, RSAPKCS1SHA384, RSAPKCS1SHA512:
			b.AddASN1ObjectIdentifier(map[Scheme]encasn1.ObjectIdentifier{
				RSAPKCS1SHA256: oidSHA256WithRSA, RSAPKCS1SHA384: oidSHA384WithRSA, RSAPKCS1SHA512: oidSHA512WithRSA,
			}[s])
			b.AddASN1NULL()
		case RSAPSSSHA256, RSAPSSSHA384, RSAPSSSHA512:
			h := map[Scheme]encasn1.ObjectIdentifier{
				RSAPSSSHA256: oidSHA256, RSAPSSSHA384: oidSHA384, RSAPSSSHA512: oidSHA512,
			}[s]
			b.AddASN1ObjectIdentifier(oidRSASSAPSS)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					addHashAlgorithm(b, h)
				})
				b.AddASN1(asn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						addHashAlgorithm(b, h)
					})
				})
				b.AddASN1(asn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(int64(s.cryptoHash().Size()))
				})
			})
		case ECDSASHA256, ECDSASHA384, ECDSASHA512:
			b.AddASN1ObjectIdentifier(map[Scheme]encasn1.ObjectIdentifier{
				ECDSASHA256: oidECDSASHA256, ECDSASHA384: oidECDSASHA384, ECDSASHA512: oidECDSASHA512,
			}[s])
		case Ed25519:
			b.AddASN1ObjectIdentifier(oidEd25519)
		default:
			b.SetError(fmt.Errorf("auth: scheme %v has no RFC 7427 AlgorithmIdentifier", s))
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return nil
	}
	return der
}

func addHashAlgorithm(b *cryptobyte.Builder, oid encasn1.ObjectIdentifier) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1NULL()
	})
}

// signatureAlgorithm is a parsed RFC 7427 AlgorithmIdentifier.
type signatureAlgorithm struct {
	scheme  Scheme
	saltLen int // RSASSA-PSS only: the declared saltLength
}

var (
	errAlgID      = errors.New("malformed AlgorithmIdentifier")
	errPSSParams  = errors.New("malformed RSASSA-PSS parameters")
	errSHA1In7427 = errors.New("SHA-1 is not accepted in RFC 7427 signatures (RFC 8247 3.2.2: MUST NOT)")
)

// parseAlgorithmIdentifier decodes the AlgorithmIdentifier of a method 14
// AUTH payload. Parameters must be absent or NULL except for RSASSA-PSS,
// whose parameters are parsed per RFC 4055 3.1 (RFC 7427 A.4.3 as published,
// with an explicit default trailerField, is accepted too).
func parseAlgorithmIdentifier(der []byte) (signatureAlgorithm, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var oid encasn1.ObjectIdentifier
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) {
		return signatureAlgorithm{}, errAlgID
	}
	if oid.Equal(oidRSASSAPSS) {
		return parsePSSParams(seq)
	}
	// Other algorithms: parameters absent or NULL.
	if !seq.Empty() {
		var null cryptobyte.String
		if !seq.ReadASN1(&null, asn1.NULL) || !null.Empty() || !seq.Empty() {
			return signatureAlgorithm{}, fmt.Errorf("unexpected parameters for %v", oid)
		}
	}
	switch {
	case oid.Equal(oidSHA256WithRSA):
		return signatureAlgorithm{scheme: RSAPKCS1SHA256}, nil
	case oid.Equal(oidSHA384WithRSA):
		return signatureAlgorithm{scheme: RSAPKCS1SHA384}, nil
	case oid.Equal(oidSHA512WithRSA):
		return signatureAlgorithm{scheme: RSAPKCS1SHA512}, nil
	case oid.Equal(oidECDSASHA256):
		return signatureAlgorithm{scheme: ECDSASHA256}, nil
	case oid.Equal(oidECDSASHA384):
		return signatureAlgorithm{scheme: ECDSASHA384}, nil
	case oid.Equal(oidECDSASHA512):
		return signatureAlgorithm{scheme: ECDSASHA512}, nil
	case oid.Equal(oidEd25519):
		return signatureAlgorithm{scheme: Ed25519}, nil
	case oid.Equal(oidSHA1WithRSA), oid.Equal(oidECDSAWithSHA1):
		return signatureAlgorithm{}, errSHA1In7427
	case oid.Equal(oidEd448):
		return signatureAlgorithm{}, errors.New("Ed448 is not supported")
	}
	return signatureAlgorithm{}, fmt.Errorf("unsupported signature algorithm %v", oid)
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055 3.1):
//
//	SEQUENCE {
//	  hashAlgorithm    [0] HashAlgorithm    DEFAULT sha1,
//	  maskGenAlgorithm [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
//	  saltLength       [2] INTEGER          DEFAULT 20,
//	  trailerField     [3] INTEGER          DEFAULT 1 }
//
// crypto/rsa uses the same hash for MGF1, so a different MGF1 hash is
// refused; so is SHA-1 (the defaults).
func parsePSSParams(seq cryptobyte.String) (signatureAlgorithm, error) {
	hash, mgfHash := oidSHA1, oidSHA1
	salt := int64(20)
	if !seq.Empty() {
		var params cryptobyte.String
		if !seq.ReadASN1(&params, asn1.SEQUENCE) || !seq.Empty() {
			return signatureAlgorithm{}, errPSSParams
		}
		var field cryptobyte.String
		var present bool
		if !params.ReadOptionalASN1(&field, &present, asn1.Tag(0).Constructed().ContextSpecific()) {
			return signatureAlgorithm{}, errPSSParams
		}
		if present {
			var err error
			if hash, err = readHashAlgorithm(&field); err != nil || !field.Empty() {
				return signatureAlgorithm{}, errPSSParams
			}
		}
		if !params.ReadOptionalASN1(&field, &present, asn1.Tag(1).Constructed().ContextSpecific()) {
			return signatureAlgorithm{}, errPSSParams
		}
		if present {
			var mgf cryptobyte.String
			var mgfOID encasn1.ObjectIdentifier
			if !field.ReadASN1(&mgf, asn1.SEQUENCE) || !field.Empty() || !mgf.ReadASN1ObjectIdentifier(&mgfOID) {
				return signatureAlgorithm{}, errPSSParams
			}
			if !mgfOID.Equal(oidMGF1) {
				return signatureAlgorithm{}, fmt.Errorf("unsupported RSASSA-PSS mask generation function %v", mgfOID)
			}
			var err error
			if mgfHash, err = readHashAlgorithm(&mgf); err != nil || !mgf.Empty() {
				return signatureAlgorithm{}, errPSSParams
			}
		}
		if !params.ReadOptionalASN1(&field, &present, asn1.Tag(2).Constructed().ContextSpecific()) {
			return signatureAlgorithm{}, errPSSParams
		}
		if present {
			if !field.ReadASN1Int64WithTag(&salt, asn1.INTEGER) || !field.Empty() || salt < 0 || salt > 1<<16 {
				return signatureAlgorithm{}, errPSSParams
			}
		}
		if !params.ReadOptionalASN1(&field, &present, asn1.Tag(3).Constructed().ContextSpecific()) {
			return signatureAlgorithm{}, errPSSParams
		}
		if present {
			var trailer int64
			if !field.ReadASN1Int64WithTag(&trailer, asn1.INTEGER) || !field.Empty() || trailer != 1 {
				return signatureAlgorithm{}, errPSSParams
			}
		}
		if !params.Empty() {
			return signatureAlgorithm{}, errPSSParams
		}
	}
	if !hash.Equal(mgfHash) {
		return signatureAlgorithm{}, errors.New("RSASSA-PSS with an MGF1 hash different from the message hash is not supported")
	}
	alg := signatureAlgorithm{saltLen: int(salt)}
	switch {
	case hash.Equal(oidSHA256):
		alg.scheme = RSAPSSSHA256
	case hash.Equal(oidSHA384):
		alg.scheme = RSAPSSSHA384
	case hash.Equal(oidSHA512):
		alg.scheme = RSAPSSSHA512
	case hash.Equal(oidSHA1):
		return signatureAlgorithm{}, errSHA1In7427
	default:
		return signatureAlgorithm{}, fmt.Errorf("unsupported RSASSA-PSS hash %v", hash)
	}
	return alg, nil
}

// readHashAlgorithm reads a hash AlgorithmIdentifier whose parameters are
// absent or NULL (RFC 4055 2.1 allows both).
func readHashAlgorithm(s *cryptobyte.String) (encasn1.ObjectIdentifier, error) {
	var seq cryptobyte.String
	var oid encasn1.ObjectIdentifier
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return nil, errAlgID
	}
	if !seq.Empty() {
		var null cryptobyte.String
		if !seq.ReadASN1(&null, asn1.NULL) || !null.Empty() || !seq.Empty() {
			return nil, errAlgID
		}
	}
	return oid, nil
}
