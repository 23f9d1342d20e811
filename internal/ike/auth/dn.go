package auth

import (
	"bytes"
	encasn1 "encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Distinguished names (ID_DER_ASN1_DN, RFC 7296 3.5: "the binary DER encoding
// of an ASN.1 X.500 Distinguished Name", i.e. an RDNSequence, RFC 5280
// 4.1.2.4). The string syntax follows strongSwan's (libstrongswan
// identification.c): "C=CH, O=Example, CN=gw-a" with ',' separators and
// optional spaces, or "/C=CH/O=Example/CN=gw-a" when the string starts with
// '/'; RDNs are encoded in the order written, one attribute per RDN; a value
// is a PrintableString when it fits that alphabet, else a UTF8String (email
// addresses: IA5String). Additions to strongSwan's syntax: a backslash
// escapes the next character (strongSwan has no escapes, so a literal
// backslash in a value differs), and a dotted OID may name any attribute,
// with "#hex" giving the DER of its value (RFC 4514 2.4).

// maxRDNs bounds the number of RDNs in a DN string (strongSwan: 20).
const maxRDNs = 64

// dnAttrType is an attribute type we know by name.
type dnAttrType struct {
	name    string   // printed keyword
	aliases []string // other keywords accepted when parsing
	oid     encasn1.ObjectIdentifier
	ia5     bool // encoded as IA5String (email addresses) rather than PrintableString
}

// dnAttrTypes lists strongSwan's keywords (x501rdns in identification.c) and
// a few from RFC 4514/4519. Matching is case-insensitive.
var dnAttrTypes = []dnAttrType{
	{name: "C", oid: encasn1.ObjectIdentifier{2, 5, 4, 6}},
	{name: "ST", oid: encasn1.ObjectIdentifier{2, 5, 4, 8}},
	{name: "L", oid: encasn1.ObjectIdentifier{2, 5, 4, 7}},
	{name: "street", oid: encasn1.ObjectIdentifier{2, 5, 4, 9}},
	{name: "O", oid: encasn1.ObjectIdentifier{2, 5, 4, 10}},
	{name: "OU", oid: encasn1.ObjectIdentifier{2, 5, 4, 11}},
	{name: "CN", oid: encasn1.ObjectIdentifier{2, 5, 4, 3}},
	{name: "S", aliases: []string{"surname"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 4}},
	{name: "serialNumber", aliases: []string{"SN"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 5}},
	{name: "T", aliases: []string{"title"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 12}},
	{name: "D", aliases: []string{"description"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 13}},
	{name: "postalCode", oid: encasn1.ObjectIdentifier{2, 5, 4, 17}},
	{name: "N", aliases: []string{"name"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 41}},
	{name: "G", aliases: []string{"givenName", "GN"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 42}},
	{name: "I", aliases: []string{"initials"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 43}},
	{name: "ID", aliases: []string{"uniqueIdentifier"}, oid: encasn1.ObjectIdentifier{2, 5, 4, 45}},
	{name: "dnQualifier", oid: encasn1.ObjectIdentifier{2, 5, 4, 46}},
	{name: "pseudonym", oid: encasn1.ObjectIdentifier{2, 5, 4, 65}},
	{name: "E", aliases: []string{"Email", "emailAddress"}, oid: encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, ia5: true},
	{name: "UN", aliases: []string{"unstructuredName"}, oid: encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 2}, ia5: true},
	{name: "UA", aliases: []string{"unstructuredAddress"}, oid: encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 8}},
	{name: "DC", aliases: []string{"domainComponent"}, oid: encasn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
	{name: "UID", aliases: []string{"userid"}, oid: encasn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
	{name: "EN", aliases: []string{"employeeNumber"}, oid: encasn1.ObjectIdentifier{2, 16, 840, 1, 113730, 3, 1, 3}},
}

func attrTypeByName(name string) *dnAttrType {
	for i := range dnAttrTypes {
		t := &dnAttrTypes[i]
		if strings.EqualFold(t.name, name) {
			return t
		}
		for _, a := range t.aliases {
			if strings.EqualFold(a, name) {
				return t
			}
		}
	}
	return nil
}

func attrTypeByOID(oid encasn1.ObjectIdentifier) *dnAttrType {
	for i := range dnAttrTypes {
		if dnAttrTypes[i].oid.Equal(oid) {
			return &dnAttrTypes[i]
		}
	}
	return nil
}

// ASN.1 string types that may carry an attribute value.
const (
	tagUTF8String      = asn1.Tag(12)
	tagNumericString   = asn1.Tag(18)
	tagPrintableString = asn1.Tag(19)
	tagT61String       = asn1.Tag(20)
	tagIA5String       = asn1.Tag(22)
	tagVisibleString   = asn1.Tag(26)
	tagUniversalString = asn1.Tag(28)
	tagBMPString       = asn1.Tag(30)
)

// dnAttr is one AttributeTypeAndValue: the value's tag and content octets.
type dnAttr struct {
	oid   encasn1.ObjectIdentifier
	tag   asn1.Tag
	value []byte
}

// rdn is a RelativeDistinguishedName (a SET, usually of one attribute).
type rdn []dnAttr

// errDN is returned for malformed DER names.
var errDN = errors.New("auth: malformed distinguished name")

// parseDNDER decodes the DER of an RDNSequence (RFC 5280 4.1.2.4).
func parseDNDER(der []byte) ([]rdn, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() {
		return nil, errDN
	}
	var dn []rdn
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, asn1.SET) || set.Empty() {
			return nil, errDN
		}
		var r rdn
		for !set.Empty() {
			var atv, val cryptobyte.String
			var oid encasn1.ObjectIdentifier
			var tag asn1.Tag
			if !set.ReadASN1(&atv, asn1.SEQUENCE) ||
				!atv.ReadASN1ObjectIdentifier(&oid) ||
				!atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return nil, errDN
			}
			r = append(r, dnAttr{oid: oid, tag: tag, value: []byte(val)})
		}
		dn = append(dn, r)
	}
	return dn, nil
}

// decodeString returns the text of a string-typed attribute value.
func decodeString(tag asn1.Tag, v []byte) (string, bool) {
	switch tag {
	case tagUTF8String:
		if !utf8.Valid(v) {
			return "", false
		}
		return string(v), true
	case tagPrintableString, tagIA5String, tagVisibleString, tagNumericString:
		for _, c := range v {
			if c >= 0x80 {
				return "", false
			}
		}
		return string(v), true
	case tagT61String:
		// Treated as Latin-1, as most software does.
		r := make([]rune, len(v))
		for i, c := range v {
			r[i] = rune(c)
		}
		return string(r), true
	case tagBMPString:
		if len(v)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v)/2)
		for i := range u {
			u[i] = uint16(v[2*i])<<8 | uint16(v[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case tagUniversalString:
		if len(v)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(v)/4)
		for i := range r {
			r[i] = rune(uint32(v[4*i])<<24 | uint32(v[4*i+1])<<16 | uint32(v[4*i+2])<<8 | uint32(v[4*i+3]))
			if !utf8.ValidRune(r[i]) {
				return "", false
			}
		}
		return string(r), true
	}
	return "", false
}

// isPrintableString reports whether s fits the PrintableString alphabet
// (X.680 41.4), as strongSwan's asn1_is_printablestring checks.
func isPrintableString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" '()+,-./:=?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// parseDNString converts the string syntax described above into the DER of
// an RDNSequence.
func parseDNString(s string) ([]byte, error) {
	rest := strings.TrimLeft(s, " ")
	sep := byte(',')
	if strings.HasPrefix(rest, "/") {
		sep = '/'
		rest = rest[1:]
	}
	var attrs []dnAttr
	for {
		comp, more, err := nextDNComponent(rest, sep)
		if err != nil {
			return nil, err
		}
		rest = more
		if strings.TrimSpace(comp) == "" {
			if rest == "" && len(attrs) > 0 {
				break // a trailing separator, as strongSwan accepts
			}
			return nil, fmt.Errorf("auth: DN %q: empty RDN", s)
		}
		a, err := parseDNAttr(comp)
		if err != nil {
			return nil, fmt.Errorf("auth: DN %q: %v", s, err)
		}
		if len(attrs) == maxRDNs {
			return nil, fmt.Errorf("auth: DN %q: more than %d RDNs", s, maxRDNs)
		}
		attrs = append(attrs, a)
		if rest == "" {
			break
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(a.oid)
					b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes(a.value) })
				})
			})
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("auth: DN %q: %v", s, err)
	}
	return der, nil
}

// nextDNComponent returns the raw text up to the next unescaped separator
// (escapes kept) and the text after it ("" at the end; more is "" only if
// there was no separator). A separator at the very end yields one more, empty,
// component.
func nextDNComponent(s string, sep byte) (comp, rest string, err error) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", "", errors.New("auth: DN ends in a lone backslash")
			}
			i++
		case sep:
			if i+1 == len(s) {
				// Trailing separator: return the component and an empty
				// remainder; the caller sees rest == "" and stops after an
				// empty component check.
				return s[:i], "", nil
			}
			return s[:i], s[i+1:], nil
		}
	}
	return s, "", nil
}

// parseDNAttr parses "keyword=value" (escapes still in value).
func parseDNAttr(comp string) (dnAttr, error) {
	eq := strings.IndexByte(comp, '=')
	if eq < 0 {
		return dnAttr{}, fmt.Errorf("%q is not keyword=value", strings.TrimSpace(comp))
	}
	keyword := strings.TrimSpace(comp[:eq])
	raw := strings.TrimLeft(comp[eq+1:], " ")
	if keyword == "" {
		return dnAttr{}, fmt.Errorf("empty attribute keyword in %q", strings.TrimSpace(comp))
	}
	t := attrTypeByName(keyword)
	var oid encasn1.ObjectIdentifier
	if t != nil {
		oid = t.oid
	} else {
		var ok bool
		if oid, ok = parseDottedOID(keyword); !ok {
			return dnAttr{}, fmt.Errorf("unknown attribute %q (use C, ST, L, O, OU, CN, E, DC, serialNumber, ... or a dotted OID)", keyword)
		}
		t = attrTypeByOID(oid) // for the string type of a known attribute
		if strings.HasPrefix(raw, "#") {
			// RFC 4514 2.4: "#" and the hex of the value's BER (here DER).
			tlv, err := hex.DecodeString(strings.TrimRight(raw[1:], " "))
			if err != nil {
				return dnAttr{}, fmt.Errorf("attribute %s: bad hex value", keyword)
			}
			in := cryptobyte.String(tlv)
			var val cryptobyte.String
			var tag asn1.Tag
			if !in.ReadAnyASN1(&val, &tag) || !in.Empty() {
				return dnAttr{}, fmt.Errorf("attribute %s: hex value is not one DER element", keyword)
			}
			return dnAttr{oid: oid, tag: tag, value: []byte(val)}, nil
		}
	}
	value, err := unescapeDNValue(raw)
	if err != nil {
		return dnAttr{}, err
	}
	if !utf8.ValidString(value) {
		return dnAttr{}, fmt.Errorf("attribute %s: value is not UTF-8", keyword)
	}
	tag := tagUTF8String
	switch {
	case t != nil && t.ia5 && isASCII(value):
		tag = tagIA5String
	case t != nil && !t.ia5 && isPrintableString(value):
		tag = tagPrintableString
	}
	return dnAttr{oid: oid, tag: tag, value: []byte(value)}, nil
}

// unescapeDNValue removes backslash escapes and the unescaped trailing spaces.
func unescapeDNValue(raw string) (string, error) {
	var b strings.Builder
	keep := 0 // length of b up to the last escaped or non-space character
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			if i+1 == len(raw) {
				return "", errors.New("value ends in a lone backslash")
			}
			i++
			b.WriteByte(raw[i])
			keep = b.Len()
			continue
		}
		b.WriteByte(c)
		if c != ' ' {
			keep = b.Len()
		}
	}
	return b.String()[:keep], nil
}

func parseDottedOID(s string) (encasn1.ObjectIdentifier, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	oid := make(encasn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return nil, false
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, false
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || (oid[0] < 2 && oid[1] > 39) {
		return nil, false
	}
	return oid, true
}

// formatDN prints a DER RDNSequence as "C=CH, O=Example, CN=gw-a", the way
// strongSwan prints DNs, escaping so that parseDNString reads it back. DER
// that does not parse prints as "asn1dn:#hex".
func formatDN(der []byte) string {
	dn, err := parseDNDER(der)
	if err != nil {
		return "asn1dn:#" + hex.EncodeToString(der)
	}
	var b strings.Builder
	for i, r := range dn {
		if i > 0 {
			b.WriteString(", ")
		}
		for j, a := range r {
			if j > 0 {
				b.WriteString(" + ")
			}
			t := attrTypeByOID(a.oid)
			s, ok := decodeString(a.tag, a.value)
			if t != nil && ok {
				b.WriteString(t.name)
				b.WriteByte('=')
				writeDNValue(&b, s, false)
				continue
			}
			b.WriteString(a.oid.String())
			b.WriteByte('=')
			if ok {
				writeDNValue(&b, s, true)
				continue
			}
			var tlv cryptobyte.Builder
			tlv.AddASN1(a.tag, func(c *cryptobyte.Builder) { c.AddBytes(a.value) })
			raw, err := tlv.Bytes()
			if err != nil {
				b.WriteString("?")
				continue
			}
			b.WriteByte('#')
			b.WriteString(hex.EncodeToString(raw))
		}
	}
	return b.String()
}

// writeDNValue escapes what parseDNString would otherwise read differently
// (a leading '#' only matters after a dotted OID) and replaces control
// characters, so that a DN from the wire cannot forge log lines.
func writeDNValue(b *strings.Builder, s string, escapeHash bool) {
	for i, r := range s {
		switch {
		case r == '\\' || r == ',' || r == ' ' && (i == 0 || i == len(s)-1) ||
			r == '#' && i == 0 && escapeHash:
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
}

// dnMatch compares two DER names semantically (RFC 5280 7.1 in spirit):
// the same attribute types in the same order, string values compared without
// regard to their ASN.1 string type, case or runs of spaces; other values
// compared byte for byte. With wildcards, a pattern value of "*" matches any
// value (strongSwan's DN wildcard). Names that do not parse are compared as
// bytes.
func dnMatch(pattern, name []byte, wildcards bool) bool {
	if bytes.Equal(pattern, name) {
		return true
	}
	p, err1 := parseDNDER(pattern)
	n, err2 := parseDNDER(name)
	if err1 != nil || err2 != nil || len(p) != len(n) {
		return false
	}
	for i := range p {
		if !rdnMatch(p[i], n[i], wildcards) {
			return false
		}
	}
	return true
}

// rdnMatch compares two RDNs as sets of attributes.
func rdnMatch(p, n rdn, wildcards bool) bool {
	if len(p) != len(n) {
		return false
	}
	used := make([]bool, len(n))
outer:
	for _, pa := range p {
		for j, na := range n {
			if !used[j] && attrMatch(pa, na, wildcards) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func attrMatch(p, n dnAttr, wildcards bool) bool {
	if !p.oid.Equal(n.oid) {
		return false
	}
	ps, pok := decodeString(p.tag, p.value)
	ns, nok := decodeString(n.tag, n.value)
	if wildcards && pok && ps == "*" {
		return true
	}
	if pok && nok {
		return strings.EqualFold(strings.Join(strings.Fields(ps), " "), strings.Join(strings.Fields(ns), " "))
	}
	return p.tag == n.tag && bytes.Equal(p.value, n.value)
}

// dnHasWildcard reports whether a DER name has a "*" attribute value.
func dnHasWildcard(der []byte) bool {
	dn, err := parseDNDER(der)
	if err != nil {
		return false
	}
	for _, r := range dn {
		for _, a := range r {
			if s, ok := decodeString(a.tag, a.value); ok && s == "*" {
				return true
			}
		}
	}
	return false
}
