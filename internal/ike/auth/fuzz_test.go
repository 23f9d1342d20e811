package auth

import (
	"crypto"
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// FuzzVerify feeds arbitrary AUTH data, methods and signed octets to Verify
// with keys of every kind: it must never panic, and whatever verifies must
// decode to a scheme that fits the key.
func FuzzVerify(f *testing.F) {
	kinds := []string{"RSA-2048", "P-256", "P-384", "P-521", "Ed25519"}
	var keys []crypto.Signer
	for _, kind := range kinds {
		keys = append(keys, testKey(f, kind, 0))
	}
	octets := []byte("signed octets")
	for i, kind := range kinds {
		for _, c := range combos(kind) {
			auth, err := Sign(rand.Reader, keys[i], c.method, c.scheme, octets)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), uint8(c.method), auth, octets)
		}
	}
	f.Add(uint8(0), uint8(14), []byte{0x0f}, []byte{})
	f.Add(uint8(0), uint8(2), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, keyIndex, method uint8, authData, signedOctets []byte) {
		pub := keys[int(keyIndex)%len(keys)].Public()
		err := Verify(pub, wire.AuthMethod(method), authData, signedOctets, allHashes)
		if err == nil {
			s, err := AuthScheme(wire.AuthMethod(method), authData)
			if err != nil {
				t.Fatalf("verified, but AuthScheme fails: %v", err)
			}
			if _, err := keyFits(pub, wire.AuthMethod(method), s); err != nil {
				t.Fatalf("verified with a key that does not fit: %v", err)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "auth: ") {
			t.Fatalf("error without package prefix: %v", err)
		}
	})
}

// FuzzParseIdentity: arbitrary configuration strings never panic; what
// parses prints and reads back as an equal identity (for printable input),
// validates, and matches itself.
func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", "2001:db8::1", "gw-a.example", "@gw-a.example", "user@example.com",
		"@@user@example.com", "@#0a1b2c", "keyid:k", "%any", "", "*", "*.example",
		"C=CH, O=Example, CN=gw-a", "/C=CH/O=Example/CN=gw-a", "C=CH,O=Example,CN=*",
		`CN=Doe\, Jane, O=Example`, `CN=\ x\ `, "E=gw@example.com, CN=Zürich", "1.2.3.4=#0c03616263",
		"2.5.4.3=#020101", "fqdn:192.0.2.1", "ipv4:#c0000201", "asn1dn:#3000", "{5}:#00", "{9}:CN=x",
		"serialNumber=1, DC=example", "CN=a,", "CN==x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		str := id.String()
		_ = id.HasWildcards()
		if !id.Matches(id) {
			t.Fatalf("%q (%q) does not match itself", s, str)
		}
		if id.Any() {
			return
		}
		known := map[wire.IDType]bool{wire.IDIPv4Addr: true, wire.IDFQDN: true, wire.IDRFC822: true,
			wire.IDIPv6Addr: true, wire.IDDERASN1DN: true, wire.IDKeyID: true}
		if err := id.Validate(); err != nil && known[id.Type] {
			t.Fatalf("%q parses to an invalid identity: %v", s, err)
		}
		unprintable := func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }
		if !utf8.ValidString(s) || strings.ContainsFunc(s, unprintable) || dnHolds(id, unprintable) {
			return // printed with '?' for the unprintable (as strongSwan does)
		}
		back, err := ParseIdentity(str)
		if err != nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", s, str, err)
		}
		if !back.Equal(id) {
			t.Fatalf("%q prints as %q, which parses to another identity (%d %x vs %d %x)", s, str, back.Type, back.Data, id.Type, id.Data)
		}
	})
}

// FuzzFormatDN: DER names from the wire (peer IDs, certificates) never make
// printing or comparison panic, and compare equal to themselves.
func FuzzFormatDN(f *testing.F) {
	for _, s := range []string{"C=CH, O=Example, CN=gw-a", "CN=*", "1.2.3.4=#020101", "CN=Zürich, E=a@b"} {
		id, err := ParseIdentity(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(id.Data)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		id := Identity{Type: wire.IDDERASN1DN, Data: der}
		_ = id.String()
		_ = id.Validate()
		_ = id.HasWildcards()
		if !id.Equal(id) || !id.Matches(id) {
			t.Fatalf("%x is not equal to itself", der)
		}
	})
}

// FuzzParseCertReqData: the CERTREQ authority field.
func FuzzParseCertReqData(f *testing.F) {
	f.Add(make([]byte, 40))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		hashes, err := ParseCertReqData(data)
		if err != nil {
			return
		}
		if len(hashes)*20 != len(data) {
			t.Fatalf("%d hashes from %d octets", len(hashes), len(data))
		}
	})
}

// dnHolds reports whether id is a DN with a string value holding a
// character f is true of (such as one that "#hex" gave, "0.0=#0c03000000").
func dnHolds(id Identity, f func(rune) bool) bool {
	if id.Type != wire.IDDERASN1DN {
		return false
	}
	dn, err := parseDNDER(id.Data)
	if err != nil {
		return false
	}
	for _, r := range dn {
		for _, a := range r {
			if v, ok := decodeString(a.tag, a.value); ok && strings.ContainsFunc(v, f) {
				return true
			}
		}
	}
	return false
}
