package control

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return out.String()
}

// The contract's example is exactly what a Status encodes to, and decoding it
// loses nothing.
func TestStatusJSONContract(t *testing.T) {
	example, err := os.ReadFile("testdata/contract-status.json")
	if err != nil {
		t.Fatal(err)
	}
	want := compact(t, example)

	got, err := json.Marshal(contractStatus())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("Marshal:\n got %s\nwant %s", got, want)
	}

	var st Status
	if err := json.Unmarshal(example, &st); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != want {
		t.Errorf("round trip:\n got %s\nwant %s", again, want)
	}
}

func TestStatusJSONShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   any
		want string
	}{
		{"empty", &Status{}, `{"ike_sas":[]}`},
		{"empty value", Status{IKESAs: []IKESA{}}, `{"ike_sas":[]}`},
		{"connecting", &Status{IKESAs: []IKESA{{
			Connection: "site", State: IKEConnecting, Initiator: true,
			SPIi: FormatIKESPI(1), SPIr: FormatIKESPI(0),
		}}}, `{"ike_sas":[{"connection":"site","state":"CONNECTING","initiator":true,"local":"","remote":"",` +
			`"local_id":"","remote_id":"","spi_i":"0000000000000001","spi_r":"0000000000000000","proposal":"",` +
			`"nat_local":false,"nat_remote":false,"established_at":null,"child_sas":[]}]}`},
		{"child without selectors", ChildSA{Name: "net", SPIIn: FormatChildSPI(0xa), SPIOut: FormatChildSPI(0xffffffff)},
			`{"name":"net","state":"","mode":"","encap":false,"spi_in":"0000000a","spi_out":"ffffffff","proposal":"",` +
				`"local_ts":[],"remote_ts":[],"bytes_in":0,"bytes_out":0,"packets_in":0,"packets_out":0}`},
		{"extensions", ChildSA{Name: "net", LocalTS: []string{"10.1.0.0/16", "10.3.0.0/16"}, RemoteTS: []string{"0.0.0.0/0"},
			Rekeys: 2, Drops: 3, RekeyAt: time.Date(2026, 11, 27, 11, 0, 0, 999, time.UTC), InboundOnly: true},
			`{"name":"net","state":"","mode":"","encap":false,"spi_in":"","spi_out":"","proposal":"",` +
				`"local_ts":["10.1.0.0/16","10.3.0.0/16"],"remote_ts":["0.0.0.0/0"],"bytes_in":0,"bytes_out":0,` +
				`"packets_in":0,"packets_out":0,"rekeys":2,"drops":3,"inbound_only":true,"rekey_at":"2026-11-27T11:00:00Z"}`},
		{"ike extension", IKESA{RekeyAt: time.Date(2026, 11, 27, 15, 0, 0, 0, time.FixedZone("", -3600)),
			EstablishedAt: time.Date(2026, 11, 27, 10, 0, 0, 5e8, time.UTC)},
			`{"connection":"","state":"","initiator":false,"local":"","remote":"","local_id":"","remote_id":"",` +
				`"spi_i":"","spi_r":"","proposal":"","nat_local":false,"nat_remote":false,` +
				`"established_at":"2026-11-27T10:00:00Z","child_sas":[],"rekey_at":"2026-11-27T16:00:00Z"}`},
		{"ike lifecycle extensions", IKESA{Rekeys: 1, ChildRekeys: 2, CollisionsWon: 3, CollisionsLost: 4, ChildDeletes: 5, TempFailures: 6},
			`{"connection":"","state":"","initiator":false,"local":"","remote":"","local_id":"","remote_id":"",` +
				`"spi_i":"","spi_r":"","proposal":"","nat_local":false,"nat_remote":false,` +
				`"established_at":null,"child_sas":[],"rekeys":1,"child_rekeys":2,"collisions_won":3,"collisions_lost":4,` +
				`"child_deletes":5,"temporary_failures":6}`},
	} {
		got, err := json.Marshal(tc.st)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// The extensions survive a decode (what Client.Status does) and encode.
func TestStatusJSONExtensionsRoundTrip(t *testing.T) {
	st := contractStatus()
	ike := &st.IKESAs[0]
	ike.Rekeys, ike.ChildRekeys, ike.CollisionsWon, ike.CollisionsLost, ike.ChildDeletes, ike.TempFailures = 1, 2, 3, 4, 5, 6
	ike.ChildSAs[0].InboundOnly, ike.ChildSAs[0].Rekeys = true, 7
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) {
		t.Errorf("round trip:\n got %s\nwant %s", again, b)
	}
}

func TestFormatSPI(t *testing.T) {
	if got := FormatIKESPI(0xfedcba9876543210); got != "fedcba9876543210" {
		t.Errorf("FormatIKESPI = %q", got)
	}
	if got := FormatChildSPI(0xc1); got != "000000c1" {
		t.Errorf("FormatChildSPI = %q", got)
	}
}

func BenchmarkStatusJSON(b *testing.B) {
	st := &Status{}
	for range 1000 {
		st.IKESAs = append(st.IKESAs, contractStatus().IKESAs[0])
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
