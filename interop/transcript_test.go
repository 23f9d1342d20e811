package interop

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTranscripts replays the exchanges recorded with strongSwan in
// testdata/transcripts: a fresh engine with the recorded seed and clock,
// given strongSwan's datagrams, must send the recorded datagrams byte for
// byte and report the recorded events (SPIs, algorithms, selectors, key
// digests). It needs neither root nor strongSwan. With -update it first
// re-records them (root and strongSwan).
func TestTranscripts(t *testing.T) {
	if *update {
		recordTranscripts(t)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			b, err := os.ReadFile(sc.path())
			if err != nil {
				t.Fatalf("%v (record it with: go test ./interop/ -run Transcripts -update, as root with strongSwan)", err)
			}
			tr, err := ParseTranscript(b)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Name != sc.name {
				t.Fatalf("%s holds transcript %q", sc.path(), tr.Name)
			}
			if err := replayTranscript(sc, tr); err != nil {
				t.Fatalf("replaying %s: %v\n(if the change on the wire is intended, re-record: go test ./interop/ -run Transcripts -update)", sc.path(), err)
			}
		})
	}
}

// TestTranscriptReplayDetectsChanges is the replay's own check: a
// transcript with one octet of one of Cygnet's datagrams changed, a
// datagram missing, or another seed must not replay.
func TestTranscriptReplayDetectsChanges(t *testing.T) {
	sc := scenarios[0]
	b, err := os.ReadFile(sc.path())
	if err != nil {
		t.Skipf("no transcript yet: %v", err)
	}
	fresh := func() *Transcript {
		tr, err := ParseTranscript(b)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	firstOut := func(tr *Transcript) int {
		for i, r := range tr.Records {
			if r.Kind == RecOut {
				return i
			}
		}
		t.Fatal("no datagram out")
		return -1
	}
	for _, c := range []struct {
		name   string
		mutate func(tr *Transcript)
		want   string
	}{
		{"one octet of a datagram", func(tr *Transcript) {
			i := firstOut(tr)
			tr.Records[i].Data[len(tr.Records[i].Data)-1] ^= 1
		}, "differs from the recording"},
		{"another seed", func(tr *Transcript) { tr.Seed[0] ^= 1 }, "differs from the recording"},
		{"a datagram too many", func(tr *Transcript) {
			i := firstOut(tr)
			tr.Records = append(tr.Records[:i+1], tr.Records[i:]...)
		}, "did not send"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := fresh()
			c.mutate(tr)
			err := replayTranscript(sc, tr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("replay of a transcript with %s: %v, want an error with %q", c.name, err, c.want)
			}
		})
	}
}

// TestTranscriptClock: the engine checks certificates against its clock,
// so the certificate transcript replayed with a clock before the
// certificates were valid must not replay.
func TestTranscriptClock(t *testing.T) {
	var sc scenario
	for _, s := range scenarios {
		if s.auth != AuthPSK {
			sc = s
		}
	}
	b, err := os.ReadFile(sc.path())
	if err != nil {
		t.Skipf("no transcript yet: %v", err)
	}
	tr, err := ParseTranscript(b)
	if err != nil {
		t.Fatal(err)
	}
	tr.Start = tr.Start.Add(-24 * time.Hour)
	if err := replayTranscript(sc, tr); err == nil {
		t.Error("replay with a clock before the certificates' validity succeeded")
	} else {
		t.Logf("as it must, the replay with the clock a day earlier failed: %v", err)
	}
}

func TestTranscriptRoundTrip(t *testing.T) {
	for _, sc := range scenarios {
		b, err := os.ReadFile(sc.path())
		if err != nil {
			t.Skipf("no transcript yet: %v", err)
		}
		tr, err := ParseTranscript(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTranscript(tr.Marshal("a comment"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Marshal(), tr.Marshal()) {
			t.Errorf("%s: Marshal/ParseTranscript do not round-trip", sc.name)
		}
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	valid := "name x\nseed 00\nstart 2026-11-27T00:00:00Z\ncmd delete\nout 192.0.2.1:500 192.0.2.2:500 00\n"
	if _, err := ParseTranscript([]byte(valid)); err != nil {
		t.Fatalf("valid transcript: %v", err)
	}
	for _, bad := range []string{
		"",
		"seed 00\nstart 2026-11-27T00:00:00Z\n",
		"name x\nstart 2026-11-27T00:00:00Z\n",
		"name x\nseed 00\n",
		"name x\nseed zz\nstart 2026-11-27T00:00:00Z\n",
		"name x\nseed 00\nstart yesterday\n",
		valid + "out 192.0.2.1:500 00\n",
		valid + "in 192.0.2.1 192.0.2.2:500 00\n",
		valid + "in 192.0.2.1:500 192.0.2.2:500 0g\n",
		valid + "cmd\n",
		valid + "frobnicate\n",
		valid + "out 192.0.2.1:500 192.0.2.2:500 " + strings.Repeat("00", maxTranscriptLine) + "\n",
	} {
		if _, err := ParseTranscript([]byte(bad)); err == nil {
			t.Errorf("ParseTranscript(%.60q) accepted it", bad)
		} else if !strings.HasPrefix(err.Error(), "interop: ") {
			t.Errorf("error %q does not start with the package name", err)
		}
	}
}

func FuzzParseTranscript(f *testing.F) {
	f.Add([]byte("name x\nseed 00\nstart 2026-11-27T00:00:00Z\ncmd initiate net\nout 192.0.2.1:500 192.0.2.2:500 0001\nin [2001:db8::1]:4500 [2001:db8::2]:4500 02\nevent deleted\n"))
	for _, sc := range scenarios {
		if b, err := os.ReadFile(sc.path()); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTranscript(b)
		if err != nil {
			return
		}
		again, err := ParseTranscript(tr.Marshal())
		if err != nil {
			t.Fatalf("re-parsing a marshalled transcript: %v", err)
		}
		if !bytes.Equal(again.Marshal(), tr.Marshal()) {
			t.Fatal("Marshal is not stable")
		}
	})
}
