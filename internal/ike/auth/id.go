package auth

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Identity is the content of an IDi/IDr payload (RFC 7296 3.5): an ID type
// and its data. Data is an IPv4 (4 octets) or IPv6 (16 octets) address, an
// FQDN or RFC 822 address as octets without terminator, the DER of a
// distinguished name, or an opaque key ID.
//
// The zero Identity, with Type 0, is the wildcard "%any": it is never sent,
// and as a pattern it matches every identity.
type Identity struct {
	Type wire.IDType
	Data []byte
}

// Any reports whether id is the wildcard "%any".
func (id Identity) Any() bool { return id.Type == 0 }

// idPrefixes are strongSwan's explicit type prefixes
// (create_from_string_with_prefix_type); "userfqdn:" is its name for RFC 822.
var idPrefixes = []struct {
	prefix string
	typ    wire.IDType
}{
	{"ipv4:", wire.IDIPv4Addr},
	{"ipv6:", wire.IDIPv6Addr},
	{"rfc822:", wire.IDRFC822},
	{"email:", wire.IDRFC822},
	{"userfqdn:", wire.IDRFC822},
	{"fqdn:", wire.IDFQDN},
	{"dns:", wire.IDFQDN},
	{"asn1dn:", wire.IDDERASN1DN},
	{"keyid:", wire.IDKeyID},
}

// ParseIdentity reads an identity in strongSwan's configuration syntax
// (libstrongswan identification_create_from_string):
//
//	"192.0.2.1", "2001:db8::1"        ID_IPV4_ADDR, ID_IPV6_ADDR
//	"gw-a.example", "@gw-a.example"   ID_FQDN (a leading '@' forces FQDN)
//	"user@example.com", "@@user@ex"   ID_RFC822_ADDR
//	"C=CH, O=Example, CN=gw-a"        ID_DER_ASN1_DN (any string with '=')
//	"@#0a1b2c"                        ID_KEY_ID from hex
//	"%any", "*", "", "%any6", "0.0.0.0", "::"   the wildcard (Any)
//	"fqdn:", "dns:", "email:", "rfc822:", "userfqdn:", "ipv4:", "ipv6:",
//	"asn1dn:", "keyid:" prefixes force a type; after one, "#hex" gives the
//	data in hex; "{N}:" forces ID type N.
//
// Where strongSwan silently falls back to a KEY_ID (a DN it cannot parse, a
// string with ':' that is no IPv6 address), ParseIdentity returns an error:
// such a string is nearly always a typo. "*" in a DN value, and a leading "*"
// in an FQDN or RFC 822 address, are wildcards for Matches.
func ParseIdentity(s string) (Identity, error) {
	for _, p := range idPrefixes {
		if len(s) >= len(p.prefix) && strings.EqualFold(s[:len(p.prefix)], p.prefix) {
			return parseTyped(s, p.typ, s[len(p.prefix):])
		}
	}
	if strings.HasPrefix(s, "{") {
		if end := strings.Index(s, "}:"); end > 0 {
			n, err := strconv.ParseUint(s[1:end], 0, 8)
			if err != nil || n == 0 {
				return Identity{}, fmt.Errorf("auth: identity %q: bad ID type %q", s, s[1:end])
			}
			return parseTyped(s, wire.IDType(n), s[end+2:])
		}
	}
	if strings.Contains(s, "=") {
		der, err := parseDNString(s)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Type: wire.IDDERASN1DN, Data: der}, nil
	}
	if !strings.Contains(s, "@") {
		switch s {
		case "", "%any", "%any6", "0.0.0.0", "*", "::", "0::0":
			return Identity{}, nil
		}
		if !strings.Contains(s, ":") {
			if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
				return Identity{Type: wire.IDIPv4Addr, Data: a.AsSlice()}, nil
			}
			return fqdnIdentity(s, s)
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Identity{}, fmt.Errorf("auth: identity %q is neither an IPv6 address nor a known type prefix (fqdn:, email:, keyid:, ...)", s)
		}
		return Identity{Type: wire.IDIPv6Addr, Data: a.AsSlice()}, nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		switch {
		case strings.HasPrefix(rest, "#"):
			return parseTyped(s, wire.IDKeyID, rest)
		case strings.HasPrefix(rest, "@"):
			return textIdentity(s, wire.IDRFC822, rest[1:])
		}
		return fqdnIdentity(s, rest)
	}
	return textIdentity(s, wire.IDRFC822, s)
}

// parseTyped handles the data after an explicit type prefix.
func parseTyped(s string, typ wire.IDType, v string) (Identity, error) {
	if h, ok := strings.CutPrefix(v, "#"); ok {
		data, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
		if err != nil || len(data) == 0 {
			return Identity{}, fmt.Errorf("auth: identity %q: bad hex data", s)
		}
		id := Identity{Type: typ, Data: data}
		if err := id.check(); err != nil {
			return Identity{}, fmt.Errorf("auth: identity %q: %v", s, err)
		}
		return id, nil
	}
	switch typ {
	case wire.IDIPv4Addr, wire.IDIPv6Addr:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" || (typ == wire.IDIPv4Addr) != a.Is4() {
			return Identity{}, fmt.Errorf("auth: identity %q: not an %s address", s, map[bool]string{true: "IPv4", false: "IPv6"}[typ == wire.IDIPv4Addr])
		}
		return Identity{Type: typ, Data: a.AsSlice()}, nil
	case wire.IDDERASN1DN:
		der, err := parseDNString(v)
		if err != nil {
			return Identity{}, err
		}
		return Identity{Type: typ, Data: der}, nil
	case wire.IDFQDN:
		return fqdnIdentity(s, v)
	}
	return textIdentity(s, typ, v)
}

func fqdnIdentity(s, name string) (Identity, error) {
	return textIdentity(s, wire.IDFQDN, name)
}

func textIdentity(s string, typ wire.IDType, v string) (Identity, error) {
	if v == "" {
		return Identity{}, fmt.Errorf("auth: identity %q: empty %s", s, idTypeName(typ))
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return Identity{}, fmt.Errorf("auth: identity %q: control character in %s", s, idTypeName(typ))
		}
	}
	return Identity{Type: typ, Data: []byte(v)}, nil
}

// check validates Data against Type where the type fixes a format.
func (id Identity) check() error {
	switch id.Type {
	case wire.IDIPv4Addr:
		if len(id.Data) != 4 {
			return fmt.Errorf("ID_IPV4_ADDR of %d octets", len(id.Data))
		}
	case wire.IDIPv6Addr:
		if len(id.Data) != 16 {
			return fmt.Errorf("ID_IPV6_ADDR of %d octets", len(id.Data))
		}
	case wire.IDDERASN1DN:
		if _, err := parseDNDER(id.Data); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a received identity: a known type, non-empty data, and the
// format its type fixes (address length, DER of a DN).
func (id Identity) Validate() error {
	switch id.Type {
	case wire.IDIPv4Addr, wire.IDIPv6Addr, wire.IDFQDN, wire.IDRFC822,
		wire.IDDERASN1DN, wire.IDDERASN1GN, wire.IDKeyID:
	default:
		return fmt.Errorf("auth: unsupported ID type %d", id.Type)
	}
	if len(id.Data) == 0 {
		return fmt.Errorf("auth: empty %s", idTypeName(id.Type))
	}
	if err := id.check(); err != nil {
		return fmt.Errorf("auth: %v", err)
	}
	return nil
}

func idTypeName(t wire.IDType) string {
	switch t {
	case 0:
		return "ID_ANY"
	case wire.IDIPv4Addr:
		return "ID_IPV4_ADDR"
	case wire.IDFQDN:
		return "ID_FQDN"
	case wire.IDRFC822:
		return "ID_RFC822_ADDR"
	case wire.IDIPv6Addr:
		return "ID_IPV6_ADDR"
	case wire.IDDERASN1DN:
		return "ID_DER_ASN1_DN"
	case wire.IDDERASN1GN:
		return "ID_DER_ASN1_GN"
	case wire.IDKeyID:
		return "ID_KEY_ID"
	case wire.IDNULL:
		return "ID_NULL"
	}
	return "ID type " + strconv.Itoa(int(t))
}

// printable reports whether b is printable ASCII (no controls, no 8-bit).
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// String prints id for logs and configuration: "gw-a.example",
// "user@example.com", "192.0.2.1", "C=CH, O=Example, CN=gw-a", "%any".
// Where the plain form would read back as another type (an FQDN that looks
// like an address, say) or holds unprintable octets, a type prefix and, if
// needed, "#hex" are used, so that ParseIdentity(id.String()) gives id back.
func (id Identity) String() string {
	switch id.Type {
	case 0:
		return "%any"
	case wire.IDIPv4Addr, wire.IDIPv6Addr:
		if a, ok := netip.AddrFromSlice(id.Data); ok && a.Is4() == (id.Type == wire.IDIPv4Addr) {
			if a.IsUnspecified() {
				// "0.0.0.0" and "::" read back as %any.
				return map[bool]string{true: "ipv4:", false: "ipv6:"}[a.Is4()] + a.String()
			}
			return a.String()
		}
	case wire.IDFQDN:
		if printable(id.Data) {
			s := string(id.Data)
			if p, err := ParseIdentity(s); err == nil && p.Type == wire.IDFQDN && bytes.Equal(p.Data, id.Data) {
				return s
			}
			if !strings.HasPrefix(s, "#") {
				return "fqdn:" + s
			}
		}
	case wire.IDRFC822:
		if printable(id.Data) {
			s := string(id.Data)
			if p, err := ParseIdentity(s); err == nil && p.Type == wire.IDRFC822 && bytes.Equal(p.Data, id.Data) {
				return s
			}
			if !strings.HasPrefix(s, "#") {
				return "email:" + s
			}
		}
	case wire.IDDERASN1DN:
		if dn, err := parseDNDER(id.Data); err == nil && len(dn) > 0 {
			return formatDN(id.Data)
		}
	case wire.IDKeyID:
		if printable(id.Data) && len(id.Data) > 0 && id.Data[0] != '#' {
			return "keyid:" + string(id.Data)
		}
		if len(id.Data) > 0 {
			return "@#" + hex.EncodeToString(id.Data)
		}
	}
	for _, p := range idPrefixes {
		if p.typ == id.Type {
			return p.prefix + "#" + hex.EncodeToString(id.Data)
		}
	}
	return "{" + strconv.Itoa(int(id.Type)) + "}:#" + hex.EncodeToString(id.Data)
}

// Equal reports whether id and o are the same identity: FQDNs and RFC 822
// addresses compare without regard to case (as strongSwan does), DNs
// semantically (attribute by attribute, ignoring string type, case and runs
// of spaces), everything else octet for octet. Two wildcards are equal.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case 0:
		return true
	case wire.IDFQDN, wire.IDRFC822:
		return bytes.EqualFold(id.Data, o.Data)
	case wire.IDDERASN1DN:
		return dnMatch(id.Data, o.Data, false)
	}
	return bytes.Equal(id.Data, o.Data)
}

// Matches reports whether the pattern id (typically from our configuration)
// accepts the concrete identity o (typically what the peer sent, or what its
// certificate proves). "%any" matches everything; "*" as a DN attribute value
// matches any value of that attribute; an FQDN or RFC 822 pattern starting
// with "*" matches any identity of that type ending in the rest ("*.example"
// matches "gw.example"; "*" alone matches any). Otherwise Matches is Equal.
func (id Identity) Matches(o Identity) bool {
	if id.Any() {
		return true
	}
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case wire.IDFQDN, wire.IDRFC822:
		if suffix, ok := bytes.CutPrefix(id.Data, []byte("*")); ok {
			return len(o.Data) >= len(suffix) && bytes.EqualFold(o.Data[len(o.Data)-len(suffix):], suffix)
		}
	case wire.IDDERASN1DN:
		return dnMatch(id.Data, o.Data, true)
	}
	return id.Equal(o)
}

// HasWildcards reports whether id is a pattern rather than a concrete
// identity: "%any", a "*" DN value, or a leading "*" in an FQDN or RFC 822
// address. Such an identity must not be sent as our own ID.
func (id Identity) HasWildcards() bool {
	switch id.Type {
	case 0:
		return true
	case wire.IDFQDN, wire.IDRFC822:
		return bytes.HasPrefix(id.Data, []byte("*"))
	case wire.IDDERASN1DN:
		return dnHasWildcard(id.Data)
	}
	return false
}
