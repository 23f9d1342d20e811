package xfrm

import "testing"

func TestParseXfrmStat(t *testing.T) {
	m, err := parseXfrmStat([]byte("XfrmInError             \t0\nXfrmInNoStates          \t12\nbogus line here\nXfrmOutPolBlock 18446744073709551615\nXfrmX -1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"XfrmInError": 0, "XfrmInNoStates": 12, "XfrmOutPolBlock": 1<<64 - 1}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: got %d, want %d", k, m[k], v)
		}
	}
	if _, err := parseXfrmStat([]byte("nothing\n")); err == nil {
		t.Error("no counters: no error")
	}
}

func FuzzParseXfrmStat(f *testing.F) {
	f.Add([]byte("XfrmInError             \t0\nXfrmInNoStates          \t12\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseXfrmStat(b)
	})
}
