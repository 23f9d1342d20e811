package auth

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  wire.IDType
		data string // hex, or "" to skip
		str  string // String(), or "" for in
	}{
		{"192.0.2.1", wire.IDIPv4Addr, "c0000201", ""},
		{"2001:db8::1", wire.IDIPv6Addr, "20010db8000000000000000000000001", ""},
		{"::ffff:192.0.2.1", wire.IDIPv6Addr, "00000000000000000000ffffc0000201", ""},
		{"gw-a.example", wire.IDFQDN, "67772d612e6578616d706c65", ""},
		{"@gw-a.example", wire.IDFQDN, "67772d612e6578616d706c65", "gw-a.example"},
		{"@192.0.2.1", wire.IDFQDN, "3139322e302e322e31", "fqdn:192.0.2.1"},
		{"fqdn:192.0.2.1", wire.IDFQDN, "3139322e302e322e31", ""},
		{"dns:gw", wire.IDFQDN, "6777", "gw"},
		{"FQDN:gw", wire.IDFQDN, "6777", "gw"},
		{"user@example.com", wire.IDRFC822, "75736572406578616d706c652e636f6d", ""},
		{"@@user@example.com", wire.IDRFC822, "75736572406578616d706c652e636f6d", "user@example.com"},
		{"email:gw", wire.IDRFC822, "6777", ""},
		{"rfc822:a@b", wire.IDRFC822, "614062", "a@b"},
		{"userfqdn:a@b", wire.IDRFC822, "614062", "a@b"},
		{"@#0a1b2c", wire.IDKeyID, "0a1b2c", ""},
		{"keyid:#0a:1b:2c", wire.IDKeyID, "0a1b2c", "@#0a1b2c"},
		{"keyid:my-key", wire.IDKeyID, "6d792d6b6579", ""},
		{"ipv4:#c0000201", wire.IDIPv4Addr, "c0000201", "192.0.2.1"},
		{"ipv6:2001:db8::1", wire.IDIPv6Addr, "20010db8000000000000000000000001", "2001:db8::1"},
		{"{2}:gw", wire.IDFQDN, "6777", "gw"},
		{"{11}:#ff", wire.IDKeyID, "ff", "@#ff"},
		{"{200}:#ff", 200, "ff", ""},
		{"*.example", wire.IDFQDN, "2a2e6578616d706c65", ""},
		{"*@example.com", wire.IDRFC822, "", ""},
		{"%any", 0, "", ""},
		{"", 0, "", "%any"},
		{"*", 0, "", "%any"},
		{"%any6", 0, "", "%any"},
		{"0.0.0.0", 0, "", "%any"},
		{"::", 0, "", "%any"},
		// A DN as strongSwan encodes it: `pki --self --dn "C=CH, O=Cygnet
		// Test, CN=gw-a.example"` then `pki --dn --format hex` (5.9.8).
		{"C=CH, O=Cygnet Test, CN=gw-a.example", wire.IDDERASN1DN,
			"303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65", ""},
		{"C=CH,O=Cygnet Test,CN=gw-a.example", wire.IDDERASN1DN,
			"303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			"C=CH, O=Cygnet Test, CN=gw-a.example"},
		{"/C=CH/O=Cygnet Test/CN=gw-a.example", wire.IDDERASN1DN,
			"303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			"C=CH, O=Cygnet Test, CN=gw-a.example"},
		{"  c = CH ,  o=Cygnet Test  ,cn=gw-a.example,", wire.IDDERASN1DN,
			"303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			"C=CH, O=Cygnet Test, CN=gw-a.example"},
		{"asn1dn:C=CH, O=Cygnet Test, CN=gw-a.example", wire.IDDERASN1DN,
			"303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			"C=CH, O=Cygnet Test, CN=gw-a.example"},
		{"asn1dn:#303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			wire.IDDERASN1DN, "303a310b300906035504061302434831143012060355040a130b4379676e65742054657374311530130603550403130c67772d612e6578616d706c65",
			"C=CH, O=Cygnet Test, CN=gw-a.example"},
		// E/emailAddress is an IA5String; non-printable text a UTF8String.
		{"E=gw@example.com", wire.IDDERASN1DN, "301f311d301b06092a864886f70d010901160e6777406578616d706c652e636f6d", ""},
		{"emailAddress=gw@example.com", wire.IDDERASN1DN, "", "E=gw@example.com"},
		{"CN=Zürich", wire.IDDERASN1DN, "30123110300e06035504030c075ac3bc72696368", ""},
		{"CN=*", wire.IDDERASN1DN, "300c310a300806035504030c012a", ""},
		{"DC=example, DC=com, UID=jdoe", wire.IDDERASN1DN, "", ""},
		{"serialNumber=1234, SN=5678", wire.IDDERASN1DN, "", "serialNumber=1234, serialNumber=5678"},
		{"ST=Zurich, L=Zurich, OU=VPN, S=Doe, G=Jane", wire.IDDERASN1DN, "", ""},
		// Escapes (not in strongSwan's syntax, which cannot express these).
		{`CN=Doe\, Jane, O=Example`, wire.IDDERASN1DN, "", ""},
		{`CN=\ padded\ `, wire.IDDERASN1DN, "", ""},
		{`CN=back\\slash`, wire.IDDERASN1DN, "", ""},
		// Dotted OIDs, and "#hex" DER values after them (RFC 4514 2.4).
		{"2.5.4.3=gw-a", wire.IDDERASN1DN, "300f310d300b0603550403130467772d61", "CN=gw-a"},
		{"1.2.3.4=#0c03616263", wire.IDDERASN1DN, "", "1.2.3.4=abc"},
		{"1.2.3.4=#020101", wire.IDDERASN1DN, "", ""},
	} {
		id, err := ParseIdentity(tc.in)
		if err != nil {
			t.Errorf("ParseIdentity(%q): %v", tc.in, err)
			continue
		}
		if id.Type != tc.typ {
			t.Errorf("ParseIdentity(%q): type %d, want %d", tc.in, id.Type, tc.typ)
		}
		if tc.data != "" && !bytes.Equal(id.Data, mustHex(tc.data)) {
			t.Errorf("ParseIdentity(%q): data %x, want %s", tc.in, id.Data, tc.data)
		}
		want := tc.str
		if want == "" {
			want = tc.in
		}
		if got := id.String(); got != want {
			t.Errorf("ParseIdentity(%q).String() = %q, want %q", tc.in, got, want)
		}
		// Round trip.
		back, err := ParseIdentity(id.String())
		if err != nil || !back.Equal(id) || back.Type != id.Type {
			t.Errorf("round trip of %q via %q: %v, %v", tc.in, id.String(), back, err)
		}
		if !id.Any() {
			if err := id.Validate(); err != nil && id.Type != 200 {
				t.Errorf("%q: Validate: %v", tc.in, err)
			}
		}
	}
}

func TestParseIdentityErrors(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"X=foo", `unknown attribute "X"`},
		{"CN=a,,O=b", "empty RDN"},
		{"CN=a, foo", "not keyword=value"},
		{"=x", "empty attribute keyword"},
		{`CN=a\`, "lone backslash"},
		{"CN=\xff", "not UTF-8"},
		{"1.2.3.4=#zz", "bad hex"},
		{"1.2.3.4=#0c0361", "not one DER element"},
		{"fe80::1%eth0", "neither an IPv6 address"},
		{"fdqn:gw", "neither an IPv6 address"},
		{"@", "empty ID_FQDN"},
		{"@@", "empty ID_RFC822_ADDR"},
		{"@#", "bad hex"},
		{"@#xyz", "bad hex"},
		{"ipv4:1.2.3", "not an IPv4 address"},
		{"ipv4:2001:db8::1", "not an IPv4 address"},
		{"ipv6:192.0.2.1", "not an IPv6 address"},
		{"ipv4:#c00002", "ID_IPV4_ADDR of 3 octets"},
		{"asn1dn:#3000ff", "malformed distinguished name"},
		{"{0}:x", "bad ID type"},
		{"{300}:x", "bad ID type"},
		{"fqdn:", "empty ID_FQDN"},
		{"gw\x01.example", "control character"},
		{strings.Repeat("CN=x,", 65), "more than 64 RDNs"},
	} {
		id, err := ParseIdentity(tc.in)
		if err == nil {
			t.Errorf("ParseIdentity(%q) = %v, want error %q", tc.in, id, tc.err)
			continue
		}
		if !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "auth: ") {
			t.Errorf("ParseIdentity(%q): %v, want %q", tc.in, err, tc.err)
		}
	}
}

func mustID(t *testing.T, s string) Identity {
	t.Helper()
	id, err := ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// utf8DN encodes a DN with UTF8String values, as OpenSSL does by default.
func utf8DN(t *testing.T, pairs ...string) Identity {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for i := 0; i < len(pairs); i += 2 {
			b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(attrTypeByName(pairs[i]).oid)
					b.AddASN1(tagUTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(pairs[i+1])) })
				})
			})
		}
	})
	return Identity{Type: wire.IDDERASN1DN, Data: b.BytesOrPanic()}
}

func TestIdentityEqualAndMatches(t *testing.T) {
	dn := mustID(t, "C=CH, O=Example, CN=gw-a")
	for _, tc := range []struct {
		a, b           Identity
		equal, matches bool // a.Equal(b), a.Matches(b)
	}{
		{dn, mustID(t, "C=CH,O=Example,CN=gw-a"), true, true},
		{dn, mustID(t, "  C = CH ,  O=Example , CN=gw-a  "), true, true},
		{dn, mustID(t, "/C=CH/O=Example/CN=gw-a"), true, true},
		{dn, mustID(t, "c=ch, o=EXAMPLE, cn=GW-A"), true, true},
		{dn, mustID(t, "C=CH, O=Example, CN=gw-a"), true, true},
		{dn, utf8DN(t, "C", "CH", "O", "Example", "CN", "gw-a"), true, true},
		{dn, utf8DN(t, "C", "CH", "O", "Example  ", "CN", "gw-a"), true, true},
		{dn, mustID(t, "CN=gw-a, O=Example, C=CH"), false, false},
		{dn, mustID(t, "C=CH, O=Example, CN=gw-b"), false, false},
		{dn, mustID(t, "C=CH, O=Example"), false, false},
		{dn, mustID(t, "C=CH, O=Example, CN=gw-a, OU=x"), false, false},
		{mustID(t, "C=CH, O=Example, CN=*"), dn, false, true},
		{mustID(t, "C=*, O=*, CN=*"), dn, false, true},
		{mustID(t, "C=DE, O=Example, CN=*"), dn, false, false},
		{mustID(t, "C=CH, O=Example, CN=*"), mustID(t, "C=CH, O=Example"), false, false},
		{mustID(t, "gw-a.example"), mustID(t, "GW-A.Example"), true, true},
		{mustID(t, "*.example"), mustID(t, "gw-a.example"), false, true},
		{mustID(t, "*.example"), mustID(t, "gw-a.example.org"), false, false},
		{mustID(t, "*.example"), mustID(t, "example"), false, false},
		{mustID(t, "fqdn:*"), mustID(t, "anything"), false, true},
		{mustID(t, "*@example.com"), mustID(t, "jane@Example.COM"), false, true},
		{mustID(t, "jane@example.com"), mustID(t, "Jane@example.com"), true, true},
		{mustID(t, "gw-a.example"), mustID(t, "gw-a@example"), false, false},
		{mustID(t, "192.0.2.1"), mustID(t, "192.0.2.1"), true, true},
		{mustID(t, "192.0.2.1"), mustID(t, "192.0.2.2"), false, false},
		{mustID(t, "192.0.2.1"), mustID(t, "fqdn:192.0.2.1"), false, false},
		{mustID(t, "::ffff:192.0.2.1"), mustID(t, "192.0.2.1"), false, false},
		{mustID(t, "%any"), dn, false, true},
		{mustID(t, "%any"), mustID(t, "*"), true, true},
		{dn, mustID(t, "%any"), false, false},
		{mustID(t, "@#0102"), mustID(t, "@#0102"), true, true},
		{mustID(t, "keyid:AB"), mustID(t, "keyid:ab"), false, false},
	} {
		if got := tc.a.Equal(tc.b); got != tc.equal {
			t.Errorf("%q.Equal(%q) = %v", tc.a, tc.b, got)
		}
		if got := tc.b.Equal(tc.a); got != tc.equal {
			t.Errorf("%q.Equal(%q) = %v (reversed)", tc.b, tc.a, got)
		}
		if got := tc.a.Matches(tc.b); got != tc.matches {
			t.Errorf("%q.Matches(%q) = %v", tc.a, tc.b, got)
		}
	}
	// Malformed DER DNs compare as bytes.
	bad := Identity{Type: wire.IDDERASN1DN, Data: []byte{0x30, 0x01}}
	if !bad.Equal(Identity{Type: wire.IDDERASN1DN, Data: []byte{0x30, 0x01}}) || bad.Equal(dn) || dn.Equal(bad) {
		t.Error("malformed DN comparison")
	}
	if bad.String() != "asn1dn:#3001" {
		t.Errorf("malformed DN prints as %q", bad)
	}
}

func TestHasWildcards(t *testing.T) {
	for s, want := range map[string]bool{
		"%any": true, "*.example": true, "*@example.com": true, "C=CH, CN=*": true,
		"gw.example": false, "C=CH, CN=gw*": false, "192.0.2.1": false, "@#2a": false,
	} {
		if got := mustID(t, s).HasWildcards(); got != want {
			t.Errorf("%q.HasWildcards() = %v", s, got)
		}
	}
}

func TestIdentityStringHostile(t *testing.T) {
	// Identities from the wire print safely and readably.
	for _, tc := range []struct {
		id   Identity
		want string
	}{
		{Identity{Type: wire.IDFQDN, Data: []byte("gw\nINFO fake log")}, "fqdn:#67770a494e464f2066616b65206c6f67"},
		{Identity{Type: wire.IDRFC822, Data: []byte("@x")}, "email:@x"},
		{Identity{Type: wire.IDRFC822, Data: []byte("a=b@c")}, "email:a=b@c"},
		{Identity{Type: wire.IDFQDN, Data: []byte("#x")}, "#x"},
		{Identity{Type: wire.IDFQDN, Data: []byte("#x=")}, "fqdn:#23783d"},
		{Identity{Type: wire.IDIPv4Addr, Data: []byte{1, 2, 3}}, "ipv4:#010203"},
		{Identity{Type: wire.IDKeyID, Data: []byte{0}}, "@#00"},
		{Identity{Type: wire.IDKeyID, Data: []byte("#1")}, "@#2331"},
		{Identity{Type: wire.IDDERASN1GN, Data: []byte{1}}, "{10}:#01"},
		{utf8DN(t, "CN", "a\nb"), "CN=a?b"},
		{utf8DN(t, "CN", "a,b", "O", " x "), `CN=a\,b, O=\ x\ `},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		id Identity
		ok bool
	}{
		{mustID(t, "192.0.2.1"), true},
		{Identity{Type: wire.IDIPv4Addr, Data: make([]byte, 16)}, false},
		{Identity{Type: wire.IDIPv6Addr, Data: make([]byte, 4)}, false},
		{Identity{Type: wire.IDFQDN}, false},
		{Identity{Type: wire.IDDERASN1DN, Data: []byte{0x30, 0x03, 0x31, 0x01, 0x00}}, false},
		{Identity{Type: wire.IDNULL, Data: []byte{1}}, false},
		{Identity{}, false},
		{mustID(t, "C=CH"), true},
	} {
		if err := tc.id.Validate(); (err == nil) != tc.ok {
			t.Errorf("%q.Validate() = %v", tc.id, err)
		}
	}
}
