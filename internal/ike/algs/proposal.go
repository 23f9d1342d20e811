package algs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Transform is one algorithm of a proposal, as on the wire (RFC 7296
// 3.3.2): its type, its ID in that type's registry and, for ciphers with a
// variable key size, the Key Length attribute (RFC 7296 3.3.5).
type Transform struct {
	Type   wire.TransformType
	ID     uint16
	KeyLen uint16 // in bits; 0: no Key Length attribute
}

// String returns the strongSwan keyword of t ("aes256gcm16", "prfsha256",
// "sha256", "x25519", "ke1_mlkem768", "esn"). A transform Cygnet cannot
// name prints as its type and ID, e.g. "ENCR(99)", with "_bits" appended
// when it carries a key length.
func (t Transform) String() string {
	if n, ok := t.name(); ok {
		return n
	}
	var kl string
	if t.KeyLen != 0 {
		kl = "_" + strconv.Itoa(int(t.KeyLen))
	}
	if isAddKE(t.Type) {
		return fmt.Sprintf("%sKE(%d)%s", addKEPrefix(t.Type), t.ID, kl)
	}
	return fmt.Sprintf("%s(%d)%s", typeName(t.Type), t.ID, kl)
}

// name returns the keyword of a transform: one Cygnet implements, or one
// strongSwan names that Cygnet does not implement (for messages only:
// ParseProposal rejects those).
func (t Transform) name() (string, bool) {
	if isAddKE(t.Type) {
		if n, ok := (Transform{Type: wire.TransformKE, ID: t.ID, KeyLen: t.KeyLen}).name(); ok {
			return addKEPrefix(t.Type) + n, true
		}
		return "", false
	}
	if n, ok := foreignNames[t]; ok {
		return n, true
	}
	switch {
	case t.Type == wire.TransformENCR:
		if e := LookupEncr(wire.EncrID(t.ID)); e != nil && e.ValidKeyLen(int(t.KeyLen)) {
			return e.Name(int(t.KeyLen)), true
		}
	case t.KeyLen != 0:
	case t.Type == wire.TransformPRF:
		if p := LookupPRF(wire.PRFID(t.ID)); p != nil {
			return p.Keyword, true
		}
	case t.Type == wire.TransformINTEG:
		if i := LookupInteg(wire.IntegID(t.ID)); i != nil {
			return i.Keyword, true
		}
	case t.Type == wire.TransformKE:
		if wire.KEID(t.ID) == wire.KE_NONE {
			return "none", true
		}
		if m := LookupKE(wire.KEID(t.ID)); m != nil {
			return m.Keyword, true
		}
	case t.Type == wire.TransformESN:
		switch wire.ESNID(t.ID) {
		case wire.ESN_NO:
			return "noesn", true
		case wire.ESN_YES:
			return "esn", true
		}
	}
	return "", false
}

func isKE(t wire.TransformType) bool { return t == wire.TransformKE || isAddKE(t) }

func isAddKE(t wire.TransformType) bool {
	return t >= wire.TransformADDKE1 && t <= wire.TransformADDKE7
}

// addKEPrefix is strongSwan's keyword prefix for RFC 9370's additional key
// exchanges: "ke1_" for ADDKE1 up to "ke7_".
func addKEPrefix(t wire.TransformType) string {
	return "ke" + strconv.Itoa(int(t-wire.TransformADDKE1)+1) + "_"
}

func typeName(t wire.TransformType) string {
	switch t {
	case wire.TransformENCR:
		return "ENCR"
	case wire.TransformPRF:
		return "PRF"
	case wire.TransformINTEG:
		return "INTEG"
	case wire.TransformKE:
		return "KE"
	case wire.TransformESN:
		return "ESN"
	}
	return "TRANSFORM" + strconv.Itoa(int(t))
}

func protoName(p wire.ProtocolID) string {
	switch p {
	case wire.ProtoIKE:
		return "IKE"
	case wire.ProtoAH:
		return "AH"
	case wire.ProtoESP:
		return "ESP"
	}
	return "PROTO" + strconv.Itoa(int(p))
}

// typeRank orders transform types the way proposal strings print them:
// encryption, integrity, PRF, key exchange, additional key exchanges, ESN.
// Unknown types sort last, by number.
func typeRank(t wire.TransformType) int {
	switch {
	case t == wire.TransformENCR:
		return 0
	case t == wire.TransformINTEG:
		return 1
	case t == wire.TransformPRF:
		return 2
	case t == wire.TransformKE:
		return 3
	case isAddKE(t):
		return 4 + int(t-wire.TransformADDKE1)
	case t == wire.TransformESN:
		return 11
	}
	return 12 + int(t)
}

// keywords maps every keyword Cygnet accepts, aliases included, to its
// transform. Additional key exchanges ("ke1_x25519") are the KE keywords
// with a prefix.
var keywords = map[string]Transform{}

// unsupported names strongSwan keywords Cygnet deliberately lacks, so that
// the error says so instead of "unknown".
var unsupported = map[string]string{}

func init() {
	add := func(name string, t Transform) {
		if _, dup := keywords[name]; dup {
			panic("algs: duplicate keyword " + name)
		}
		keywords[name] = t
	}
	for _, e := range encrs {
		t := Transform{Type: wire.TransformENCR, ID: uint16(e.ID)}
		if e.KeyLens == nil {
			add(e.Keyword, t)
			continue
		}
		for _, kl := range e.KeyLens {
			t.KeyLen = uint16(kl)
			add(e.Name(kl), t)
			// strongSwan's aliases: the ICV length in bits, and "gcm"
			// alone for the 16-octet ICV.
			switch e.ID {
			case wire.ENCR_AES_GCM_8:
				add(fmt.Sprintf("aes%dgcm64", kl), t)
			case wire.ENCR_AES_GCM_12:
				add(fmt.Sprintf("aes%dgcm96", kl), t)
			case wire.ENCR_AES_GCM_16:
				add(fmt.Sprintf("aes%dgcm128", kl), t)
				add(fmt.Sprintf("aes%dgcm", kl), t)
			}
		}
	}
	add("aes", Transform{Type: wire.TransformENCR, ID: uint16(wire.ENCR_AES_CBC), KeyLen: 128})
	for _, i := range integs {
		add(i.Keyword, Transform{Type: wire.TransformINTEG, ID: uint16(i.ID)})
	}
	add("sha", Transform{Type: wire.TransformINTEG, ID: uint16(wire.AUTH_HMAC_SHA1_96)})
	add("sha2_256", Transform{Type: wire.TransformINTEG, ID: uint16(wire.AUTH_HMAC_SHA2_256_128)})
	add("sha2_384", Transform{Type: wire.TransformINTEG, ID: uint16(wire.AUTH_HMAC_SHA2_384_192)})
	add("sha2_512", Transform{Type: wire.TransformINTEG, ID: uint16(wire.AUTH_HMAC_SHA2_512_256)})
	for _, p := range prfs {
		add(p.Keyword, Transform{Type: wire.TransformPRF, ID: uint16(p.ID)})
	}
	for _, m := range keMethods {
		add(m.Keyword, Transform{Type: wire.TransformKE, ID: uint16(m.ID)})
	}
	add("curve25519", Transform{Type: wire.TransformKE, ID: uint16(wire.KE_CURVE25519)})
	add("none", Transform{Type: wire.TransformKE, ID: uint16(wire.KE_NONE)})
	add("modpnone", Transform{Type: wire.TransformKE, ID: uint16(wire.KE_NONE)})
	add("noesn", Transform{Type: wire.TransformESN, ID: uint16(wire.ESN_NO)})
	add("esn", Transform{Type: wire.TransformESN, ID: uint16(wire.ESN_YES)})

	for _, k := range []string{"null", "des", "3des", "cast128", "blowfish", "blowfish128",
		"blowfish192", "blowfish256", "camellia", "camellia128", "camellia192", "camellia256",
		"serpent", "serpent128", "serpent192", "serpent256", "twofish", "twofish128",
		"twofish192", "twofish256", "md5", "md5_128", "sha1_160", "sha256_96", "sha2_256_96",
		"aesxcbc", "camelliaxcbc", "aescmac", "prfmd5", "prfaesxcbc", "prfcamelliaxcbc",
		"prfaescmac", "modpnull", "chacha20poly1305compat"} {
		unsupported[k] = "not implemented by Cygnet"
	}
	for _, kl := range []string{"128", "192", "256"} {
		unsupported["aes"+kl+"ctr"] = "not implemented by Cygnet"
		unsupported["aes"+kl+"gmac"] = "not implemented by Cygnet"
		for _, icv := range []string{"", "8", "64", "12", "96", "16", "128"} {
			unsupported["aes"+kl+"ccm"+icv] = "not implemented by Cygnet"
		}
	}
	for _, k := range []string{"modp768", "modp1024", "modp1536", "modp1024s160",
		"modp2048s224", "modp2048s256", "ecp192", "ecp224"} {
		unsupported[k] = "a weak key exchange method"
	}
	for _, k := range []string{"ecp224bp", "ecp256bp", "ecp384bp", "ecp512bp", "curve448", "x448"} {
		unsupported[k] = "not implemented by Cygnet"
	}
	unsupported["mlkem512"] = "Go's crypto/mlkem has no ML-KEM-512"
}

// foreignNames are strongSwan's keywords for transforms Cygnet does not
// implement, so that a peer's proposal prints as strongSwan would print it
// ("aes128-sha1-modp1024"). IDs from the IANA IKEv2 registries.
var foreignNames = map[Transform]string{}

func init() {
	encr := func(id uint16, kl uint16, name string) {
		foreignNames[Transform{Type: wire.TransformENCR, ID: id, KeyLen: kl}] = name
	}
	encr(2, 0, "des")
	encr(uint16(wire.ENCR_3DES), 0, "3des")
	encr(6, 128, "cast128")
	encr(7, 128, "blowfish128")
	encr(7, 192, "blowfish192")
	encr(7, 256, "blowfish256")
	encr(uint16(wire.ENCR_NULL), 0, "null")
	for _, kl := range []uint16{128, 192, 256} {
		encr(uint16(wire.ENCR_AES_CTR), kl, fmt.Sprintf("aes%dctr", kl))
		encr(uint16(wire.ENCR_AES_CCM_8), kl, fmt.Sprintf("aes%dccm8", kl))
		encr(uint16(wire.ENCR_AES_CCM_12), kl, fmt.Sprintf("aes%dccm12", kl))
		encr(uint16(wire.ENCR_AES_CCM_16), kl, fmt.Sprintf("aes%dccm16", kl))
		encr(uint16(wire.ENCR_NULL_AUTH_AES_GMAC), kl, fmt.Sprintf("aes%dgmac", kl))
		encr(23, kl, fmt.Sprintf("camellia%d", kl))
	}
	for id, name := range map[wire.PRFID]string{
		wire.PRF_HMAC_MD5: "prfmd5", wire.PRF_AES128_XCBC: "prfaesxcbc", wire.PRF_AES128_CMAC: "prfaescmac",
	} {
		foreignNames[Transform{Type: wire.TransformPRF, ID: uint16(id)}] = name
	}
	for id, name := range map[wire.IntegID]string{
		wire.AUTH_HMAC_MD5_96: "md5", wire.AUTH_AES_XCBC_96: "aesxcbc",
		7: "sha1_160", 8: "aescmac",
	} {
		foreignNames[Transform{Type: wire.TransformINTEG, ID: uint16(id)}] = name
	}
	for id, name := range map[wire.KEID]string{
		wire.KE_MODP768: "modp768", wire.KE_MODP1024: "modp1024", wire.KE_MODP1536: "modp1536",
		wire.KE_MODP1024_160: "modp1024s160", wire.KE_MODP2048_224: "modp2048s224",
		wire.KE_MODP2048_256: "modp2048s256", wire.KE_ECP192: "ecp192", wire.KE_ECP224: "ecp224",
		27: "ecp224bp", 28: "ecp256bp", 29: "ecp384bp", 30: "ecp512bp",
		wire.KE_CURVE448: "curve448", wire.KE_MLKEM512: "mlkem512",
	} {
		foreignNames[Transform{Type: wire.TransformKE, ID: uint16(id)}] = name
	}
}

// Proposal is a proposal as configured: for each transform type, the
// acceptable transforms in order of preference. Transforms holds them
// grouped by type in the order strongSwan prints them (encryption,
// integrity, PRF, key exchange, additional key exchanges, ESN).
type Proposal struct {
	Protocol   wire.ProtocolID
	Transforms []Transform
}

// Of returns the transforms of type typ in order of preference.
func (p Proposal) Of(typ wire.TransformType) []Transform {
	var ts []Transform
	for _, t := range p.Transforms {
		if t.Type == typ {
			ts = append(ts, t)
		}
	}
	return ts
}

// WithoutKE returns p without key exchange transforms (types 4 and 6-12):
// the form of an ESP proposal in IKE_AUTH, whose CHILD_SA takes its keys
// from the IKE SA (RFC 7296 1.2: "SHOULD omit the whole transform
// substructure"). Use it both for the offer and to select or confirm.
func (p Proposal) WithoutKE() Proposal {
	q := Proposal{Protocol: p.Protocol}
	for _, t := range p.Transforms {
		if !isKE(t.Type) {
			q.Transforms = append(q.Transforms, t)
		}
	}
	return q
}

// String returns p in strongSwan's syntax, canonically: one keyword per
// transform, in the order of the Transforms. Two things are left out
// because parsing puts them back: in IKE proposals, PRFs that just mirror
// the integrity algorithms ("aes128-sha256-modp2048" stands for
// aes128-sha256-prfsha256-modp2048), and in ESP proposals a lone "noesn".
func (p Proposal) String() string {
	return formatTransforms(p.Protocol, p.Transforms, nil)
}

// formatTransforms prints transforms as a proposal string; bad, if not nil,
// marks the ones with unrecognised attributes.
func formatTransforms(proto wire.ProtocolID, ts []Transform, bad []bool) string {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return typeRank(ts[a].Type) - typeRank(ts[b].Type) })
	var integ, prf, esn []Transform
	for _, t := range ts {
		switch t.Type {
		case wire.TransformINTEG:
			integ = append(integ, t)
		case wire.TransformPRF:
			prf = append(prf, t)
		case wire.TransformESN:
			esn = append(esn, t)
		}
	}
	skipPRF := proto == wire.ProtoIKE && len(integ) > 0 && slices.Equal(prf, prfsFromInteg(integ))
	skipESN := proto == wire.ProtoESP && len(esn) == 1 && esn[0] == Transform{Type: wire.TransformESN, ID: uint16(wire.ESN_NO)}
	var b strings.Builder
	for _, i := range idx {
		t := ts[i]
		if (skipPRF && t.Type == wire.TransformPRF) || (skipESN && t.Type == wire.TransformESN) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		b.WriteString(t.String())
		if bad != nil && bad[i] {
			b.WriteString("+attr")
		}
	}
	return b.String()
}

// prfsFromInteg maps integrity algorithms onto the PRFs with the same hash,
// in order and without duplicates, as strongSwan does for IKE proposals that
// name no PRF.
func prfsFromInteg(integ []Transform) []Transform {
	var out []Transform
	for _, t := range integ {
		i := LookupInteg(wire.IntegID(t.ID))
		if i == nil || t.KeyLen != 0 {
			continue
		}
		p := Transform{Type: wire.TransformPRF, ID: uint16(i.PRF)}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// ParseProposal parses a proposal in strongSwan's syntax (CONTRACT.md,
// "Proposal strings"): keywords joined by "-", several of one type listed
// in order of preference, types in any order; "keN_" before a key exchange
// keyword (N = 1..7) makes it RFC 9370's additional key exchange N. proto
// is wire.ProtoIKE or wire.ProtoESP. The rules are strongSwan's
// (proposal.c, check_proposal):
//
//   - IKE: without a PRF keyword, each integrity algorithm brings the PRF
//     with the same hash ("aes128-sha256-modp2048" gets prfsha256); a PRF
//     and a key exchange method are required ("none" is dropped).
//   - ESP: PRF keywords are ignored; without "esn"/"noesn", noesn is
//     assumed; a key exchange method is optional (PFS), and "none" next to
//     one makes it optional for the peer.
//   - An encryption algorithm is required. AEAD and classic ciphers do not
//     mix in one proposal (use two proposals); with AEADs, integrity
//     keywords are dropped.
//
// Cygnet differs from strongSwan in three ways, each an error here: classic
// ESP encryption without an integrity algorithm, "esn"/"noesn" in an IKE
// proposal, and protocols other than IKE and ESP. Keywords appearing twice
// are kept once.
//
// "default" alone is the first of DefaultProposals(proto); use
// ParseProposals to get all of them.
func ParseProposal(s string, proto wire.ProtocolID) (Proposal, error) {
	if proto != wire.ProtoIKE && proto != wire.ProtoESP {
		return Proposal{}, fmt.Errorf("algs: %s proposals are not supported", protoName(proto))
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Proposal{}, fmt.Errorf("algs: empty %s proposal", protoName(proto))
	}
	if s == "default" {
		return DefaultProposals(proto)[0], nil
	}
	p := Proposal{Protocol: proto}
	for _, kw := range strings.Split(s, "-") {
		kw = strings.TrimSpace(kw)
		t, err := parseKeyword(kw)
		if err != nil {
			return Proposal{}, fmt.Errorf("algs: proposal %q: %w", s, err)
		}
		if !slices.Contains(p.Transforms, t) {
			p.Transforms = append(p.Transforms, t)
		}
	}
	if err := p.check(); err != nil {
		return Proposal{}, fmt.Errorf("algs: proposal %q: %w", s, err)
	}
	slices.SortStableFunc(p.Transforms, func(a, b Transform) int { return typeRank(a.Type) - typeRank(b.Type) })
	return p, nil
}

func parseKeyword(kw string) (Transform, error) {
	if kw == "" {
		return Transform{}, fmt.Errorf("empty algorithm")
	}
	if kw == "default" {
		return Transform{}, fmt.Errorf(`"default" must stand alone`)
	}
	var addKE wire.TransformType
	base := kw
	// RFC 9370 additional key exchanges: "ke1_" .. "ke7_".
	if len(kw) > 4 && kw[:2] == "ke" && kw[3] == '_' {
		n := int(kw[2] - '0')
		if n < 1 || n > 7 {
			return Transform{}, fmt.Errorf("unknown algorithm %q (additional key exchanges are ke1_ to ke7_)", kw)
		}
		addKE = wire.TransformADDKE1 + wire.TransformType(n-1)
		base = kw[4:]
	}
	t, ok := keywords[base]
	if !ok {
		if why, ok := unsupported[base]; ok {
			return Transform{}, fmt.Errorf("algorithm %q is not supported (%s)", kw, why)
		}
		return Transform{}, fmt.Errorf("unknown algorithm %q", kw)
	}
	if addKE != 0 {
		if t.Type != wire.TransformKE {
			return Transform{}, fmt.Errorf("%q: %s takes a key exchange method", kw, kw[:4])
		}
		t.Type = addKE
	}
	return t, nil
}

// check applies strongSwan's rules for a parsed proposal (see ParseProposal)
// and fills in what they imply.
func (p *Proposal) check() error {
	remove := func(drop func(Transform) bool) {
		p.Transforms = slices.DeleteFunc(p.Transforms, drop)
	}
	ofType := func(typ wire.TransformType) func(Transform) bool {
		return func(t Transform) bool { return t.Type == typ }
	}
	if p.Protocol == wire.ProtoIKE {
		if len(p.Of(wire.TransformPRF)) == 0 {
			p.Transforms = append(p.Transforms, prfsFromInteg(p.Of(wire.TransformINTEG))...)
		}
		if len(p.Of(wire.TransformPRF)) == 0 {
			return fmt.Errorf("an IKE proposal needs a PRF (a prf keyword or an integrity algorithm)")
		}
		remove(func(t Transform) bool { return t.Type == wire.TransformKE && t.ID == uint16(wire.KE_NONE) })
		if len(p.Of(wire.TransformKE)) == 0 {
			return fmt.Errorf("an IKE proposal needs a key exchange method")
		}
		if len(p.Of(wire.TransformESN)) > 0 {
			return fmt.Errorf("esn/noesn apply to ESP proposals only")
		}
	} else {
		remove(ofType(wire.TransformPRF))
	}
	var aead, classic bool
	for _, t := range p.Of(wire.TransformENCR) {
		if LookupEncr(wire.EncrID(t.ID)).AEAD {
			aead = true
		} else {
			classic = true
		}
	}
	switch {
	case !aead && !classic:
		return fmt.Errorf("a proposal needs an encryption algorithm")
	case aead && classic:
		return fmt.Errorf("AEAD and classic encryption algorithms cannot share a proposal (make two)")
	case aead:
		// RFC 5282 8: no integrity algorithm with a combined-mode cipher.
		remove(ofType(wire.TransformINTEG))
	case len(p.Of(wire.TransformINTEG)) == 0:
		return fmt.Errorf("classic encryption needs an integrity algorithm")
	}
	if p.Protocol == wire.ProtoESP && len(p.Of(wire.TransformESN)) == 0 {
		p.Transforms = append(p.Transforms, Transform{Type: wire.TransformESN, ID: uint16(wire.ESN_NO)})
	}
	return nil
}

// Cygnet's "default" proposals, in order of preference. They follow RFC
// 8221 and RFC 8247 (nothing below 128-bit strength, no SHA-1) and offer
// the groups most peers have; MODP-6144/8192 are left out because a peer
// could make us spend much CPU on them.
var defaultProposals = map[wire.ProtocolID][]string{
	wire.ProtoIKE: {
		"aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-" +
			"x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048",
		"aes256-aes128-sha256-sha384-sha512-" +
			"x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048",
	},
	wire.ProtoESP: {
		"aes256gcm16-aes128gcm16-chacha20poly1305",
		"aes256-aes128-sha256-sha384-sha512",
	},
}

// DefaultProposals returns what "default" stands for: for IKE,
//
//	aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048
//	aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-ecp521-modp3072-modp4096-modp2048
//
// and for ESP (no PFS, no ESN)
//
//	aes256gcm16-aes128gcm16-chacha20poly1305
//	aes256-aes128-sha256-sha384-sha512
//
// An AEAD and a classic proposal, since the two cannot share one.
func DefaultProposals(proto wire.ProtocolID) []Proposal {
	var ps []Proposal
	for _, s := range defaultProposals[proto] {
		p, err := ParseProposal(s, proto)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// ParseProposals parses a list of proposals (a connection's "proposals" or
// "esp_proposals"), expanding "default" into all of DefaultProposals.
func ParseProposals(list []string, proto wire.ProtocolID) ([]Proposal, error) {
	var ps []Proposal
	for _, s := range list {
		if strings.TrimSpace(s) == "default" && (proto == wire.ProtoIKE || proto == wire.ProtoESP) {
			ps = append(ps, DefaultProposals(proto)...)
			continue
		}
		p, err := ParseProposal(s, proto)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("algs: no %s proposals", protoName(proto))
	}
	return ps, nil
}

// formatProposals joins proposals with ", ", as strongSwan logs them.
func formatProposals(ps []Proposal) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
