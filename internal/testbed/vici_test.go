package testbed

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"testing"
)

// viciReadmeExample is the encoding example of strongSwan's VICI README
// (src/libcharon/plugins/vici/README.md, "Encoding example"):
//
//	key1 = value1
//	section1 = {
//		sub-section = {
//			key2 = value2
//		}
//		list1 = [ item1, item2 ]
//	}
var viciReadmeExample = []byte{
	3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',
	1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',
	1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',
	3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',
	2,
	4, 5, 'l', 'i', 's', 't', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '2',
	6,
	2,
}

func viciReadmeMessage() *ViciMessage {
	sub := (&ViciMessage{}).Add("key2", "value2")
	s1 := (&ViciMessage{}).AddSection("sub-section", sub).AddList("list1", "item1", "item2")
	return (&ViciMessage{}).Add("key1", "value1").AddSection("section1", s1)
}

func TestViciReadmeExample(t *testing.T) {
	got, err := MarshalVici(viciReadmeMessage())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, viciReadmeExample) {
		t.Errorf("MarshalVici:\n got %v\nwant %v", got, viciReadmeExample)
	}
	m, err := UnmarshalVici(viciReadmeExample)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, viciReadmeMessage()) {
		t.Errorf("UnmarshalVici:\n%v\nwant\n%v", m, viciReadmeMessage())
	}
	if v := m.GetSection("section1").GetSection("sub-section").Get("key2"); v != "value2" {
		t.Errorf("section1.sub-section.key2 = %q", v)
	}
	if l := m.GetSection("section1").GetList("list1"); !reflect.DeepEqual(l, []string{"item1", "item2"}) {
		t.Errorf("section1.list1 = %q", l)
	}
	if m.Get("section1") != "" || m.GetSection("key1") != nil || m.GetList("nope") != nil {
		t.Error("lookups of the wrong kind must find nothing")
	}
}

func TestViciRecordedListSA(t *testing.T) {
	b, err := os.ReadFile("testdata/list-sa-psk.vici")
	if err != nil {
		t.Fatal(err)
	}
	m, err := UnmarshalVici(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := MarshalVici(m); err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding the recording differs (%v)", err)
	}
	if len(m.Elems) != 1 || m.Elems[0].Kind != ViciSection {
		t.Fatalf("want one IKE_SA section, got\n%v", m)
	}
	sa, err := parseSA(m.Elems[0].Key, m.Elems[0].Section)
	if err != nil {
		t.Fatal(err)
	}
	// The recording is of the initiator ("left") of TestCharonToCharon/psk-ipv4.
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"Name", sa.Name, "psk"},
		{"State", sa.State, "ESTABLISHED"},
		{"Version", sa.Version, 2},
		{"LocalHost", sa.LocalHost, netip.MustParseAddr("192.0.2.1")},
		{"LocalPort", sa.LocalPort, uint16(4500)},
		{"RemoteHost", sa.RemoteHost, netip.MustParseAddr("192.0.2.2")},
		{"RemotePort", sa.RemotePort, uint16(4500)},
		{"LocalID", sa.LocalID, "left@cygnet.test"},
		{"RemoteID", sa.RemoteID, "right@cygnet.test"},
		{"Initiator", sa.Initiator, true},
		{"NATAny", sa.NATAny, true},
		{"EncrAlg", sa.EncrAlg, "AES_GCM_16"},
		{"EncrKeysize", sa.EncrKeysize, 256},
		{"PRFAlg", sa.PRFAlg, "PRF_HMAC_SHA2_256"},
		{"DHGroup", sa.DHGroup, "CURVE_25519"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if sa.SPIi == 0 || sa.SPIr == 0 {
		t.Errorf("IKE SPIs %x %x", sa.SPIi, sa.SPIr)
	}
	c, ok := sa.Child("net")
	if !ok {
		t.Fatalf("no CHILD_SA net in\n%s", FormatSAs([]SA{sa}))
	}
	if c.State != "INSTALLED" || c.Mode != "TUNNEL" || c.Protocol != "ESP" || !c.Encap ||
		c.SPIIn == 0 || c.SPIOut == 0 || c.EncrAlg != "AES_GCM_16" || c.EncrKeysize != 256 ||
		!reflect.DeepEqual(c.LocalTS, []string{"10.1.0.1/32", "fd00:1::1/128"}) ||
		!reflect.DeepEqual(c.RemoteTS, []string{"10.2.0.1/32", "fd00:2::1/128"}) {
		t.Errorf("CHILD_SA:\n%s", FormatSAs([]SA{sa}))
	}
}

func TestParseSAErrors(t *testing.T) {
	for _, kv := range [][2]string{
		{"uniqueid", "x"}, {"local-host", "not-an-ip"}, {"initiator-spi", "zz"}, {"local-port", "70000"},
	} {
		m := (&ViciMessage{}).Add(kv[0], kv[1])
		if _, err := parseSA("c", m); err == nil {
			t.Errorf("%s = %q: no error", kv[0], kv[1])
		}
	}
	child := (&ViciMessage{}).Add("spi-in", "123456789")
	m := (&ViciMessage{}).AddSection("child-sas", (&ViciMessage{}).AddSection("net-1", child))
	if _, err := parseSA("c", m); err == nil {
		t.Error("33-bit CHILD_SA SPI: no error")
	}
}

func TestViciTruncation(t *testing.T) {
	// Wrapped in a section, every proper prefix is incomplete.
	full, err := MarshalVici((&ViciMessage{}).AddSection("outer", viciReadmeMessage()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range full {
		_, err := UnmarshalVici(full[:i])
		if i > 0 && err == nil {
			t.Errorf("prefix of %d bytes: no error", i)
		}
		var ve *ViciError
		if err != nil && !errors.As(err, &ve) {
			t.Errorf("prefix of %d bytes: error %T, want *ViciError", i, err)
		}
	}
}

func TestViciMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"unknown type":        {9},
		"section end at root": {2},
		"item outside list":   {5, 0, 1, 'x'},
		"list end alone":      {6},
		"kv inside list":      {4, 1, 'l', 3, 1, 'k', 0, 0, 6},
		"section inside list": {4, 1, 'l', 1, 1, 's', 2, 6},
		"list not closed":     {4, 1, 'l'},
		"section not closed":  {1, 1, 's'},
		"value too short":     {3, 1, 'k', 0, 5, 'a'},
		"name too short":      {3, 5, 'k'},
	} {
		if _, err := UnmarshalVici(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	deep := bytes.Repeat([]byte{1, 1, 's'}, viciMaxDepth+2)
	if _, err := UnmarshalVici(deep); err == nil {
		t.Error("deep nesting: no error")
	}
	if _, err := MarshalVici((&ViciMessage{}).Add(string(make([]byte, 256)), "")); err == nil {
		t.Error("256-byte name: no error")
	}
	if _, err := MarshalVici((&ViciMessage{}).Add("k", string(make([]byte, 65536)))); err == nil {
		t.Error("65536-byte value: no error")
	}
}

// FuzzUnmarshalVici checks that decoding never panics and that whatever
// decodes re-encodes to the same bytes (the encoding has no alternatives).
func FuzzUnmarshalVici(f *testing.F) {
	f.Add(viciReadmeExample)
	if b, err := os.ReadFile("testdata/list-sa-psk.vici"); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{4, 0, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalVici(b)
		if err != nil {
			return
		}
		again, err := MarshalVici(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		for _, e := range m.Elems {
			if e.Kind == ViciSection {
				parseSA(e.Key, e.Section) // must not panic
			}
		}
	})
}
