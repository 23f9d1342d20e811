package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// fuzzSeeds are valid encodings: the samples and some random messages.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, s := range samples {
		seeds = append(seeds, mustMarshal(s.msg()))
	}
	g := newGen(7)
	for range 20 {
		seeds = append(seeds, mustMarshal(g.message()))
	}
	return seeds
}

// FuzzParse parses arbitrary datagrams; whatever parses must marshal and
// parse back to an equal message. Each input is tried as it is and, so that
// the fuzzer gets past the header's Length check when it inserts or deletes
// octets, with the Length field set to the input's length.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b)
		if len(b) >= HeaderLen {
			checkParse(t, fixLength(bytes.Clone(b)))
		}
	})
}

func checkParse(t *testing.T, b []byte) {
	t.Helper()
	m, err := Parse(b)
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		return
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal of a parsed message: %v\n%#v", err, m.Payloads)
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal(Parse(b))): %v\n%x", err, out)
	}
	m.Raw, m2.Raw = nil, nil
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip changed the message:\n%#v\n%#v", m, m2)
	}
}

// FuzzParsePayloads parses arbitrary SK plaintexts.
func FuzzParsePayloads(f *testing.F) {
	for _, s := range samples {
		m := s.msg()
		if first, body, err := MarshalPayloads(m.Payloads); err == nil {
			f.Add(uint8(first), body)
		}
	}
	f.Fuzz(func(t *testing.T, first uint8, b []byte) {
		ps, err := ParsePayloads(PayloadType(first), b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		first2, out, err := MarshalPayloads(ps)
		if err != nil {
			t.Fatalf("MarshalPayloads of parsed payloads: %v", err)
		}
		if len(ps) > 0 && first2 != PayloadType(first) {
			t.Fatalf("first payload %v, want %v", first2, PayloadType(first))
		}
		ps2, err := ParsePayloads(first2, out)
		if err != nil {
			t.Fatalf("ParsePayloads(MarshalPayloads(...)): %v", err)
		}
		if !reflect.DeepEqual(ps, ps2) {
			t.Fatalf("round trip changed the payloads:\n%#v\n%#v", ps, ps2)
		}
	})
}
