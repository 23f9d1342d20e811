package wire

import "testing"

// Benchmarks on a realistic IKE_AUTH request (sampleBenchAuth): IDi, CERT (an
// 859-octet RSA certificate), CERTREQ, AUTH, SA with two ESP proposals, TSi, TSr and four
// notifies. The *Payloads variants are the SK plaintext path.

func BenchmarkParseIKEAuth(b *testing.B) {
	raw := mustMarshal(sampleBenchAuth())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalIKEAuth(b *testing.B) {
	m := sampleBenchAuth()
	b.SetBytes(int64(len(mustMarshal(m))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayloadsIKEAuth(b *testing.B) {
	first, body, err := MarshalPayloads(sampleBenchAuth().Payloads)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayloads(first, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalPayloadsIKEAuth(b *testing.B) {
	ps := sampleBenchAuth().Payloads
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := MarshalPayloads(ps); err != nil {
			b.Fatal(err)
		}
	}
}
