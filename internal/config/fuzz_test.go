package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and
// each error must be one line naming the file.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/contract-example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	dist, err := os.ReadFile("../../dist/cygnet.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dist)
	for _, s := range []string{
		equalBase,
		"x-c: &c {remote_addrs: [192.0.2.2], local: {auth: psk, id: a.example}, remote: {auth: psk}}\n" +
			"secrets: [{psk: 0x0102}]\nconnections: {a: {<<: *c}, b: {<<: [*c], children: {n: {local_ts: [\"dynamic[tcp/80]\"]}}}}\n",
		"daemon: {port: 500, listen: [\"::1\"], log: {level: debug}}\n",
		"connections:\n  c:\n    children:\n      n: {rekey_bytes: 10, life_bytes: 5}\n",
		"daemon: {pprof: \"127.0.0.1:6060\"}\nconnections:\n  c:\n    rekey_time: 1h\n    rand_time: 5m\n    children:\n      n: {rekey_time: 10m, rand_time: 0}\n",
		"a: &a [*a]\n",
		"connections: &c {x: *c}\n",
		"- [\n",
	} {
		f.Add([]byte(s))
	}

	const path = "/fuzz/cygnet.yaml"
	files := map[string][]byte{}
	for name, data := range getPKI(f).files() {
		files[filepath.Join("/fuzz", name)] = data
	}
	readFile := func(p string) ([]byte, error) {
		if data, ok := files[p]; ok {
			return data, nil
		}
		return nil, fmt.Errorf("open %q: no such file", p)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, path, readFile)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Fatalf("error line without file:line: %q", line)
				}
			}
			return
		}
		for _, c := range cfg.Connections {
			if !validName(c.Name) || len(c.Proposals) == 0 {
				t.Fatalf("connection %q accepted with %d proposals", c.Name, len(c.Proposals))
			}
			for _, ch := range c.Children {
				if len(ch.LocalTS) == 0 || len(ch.RemoteTS) == 0 || len(ch.ESPProposals) == 0 {
					t.Fatalf("child %q accepted without selectors or proposals", ch.Name)
				}
				if ch.LifeTime != 0 && ch.RekeyTime > ch.LifeTime {
					t.Fatalf("child %q: rekey after expiry accepted", ch.Name)
				}
			}
			if !c.Equal(c) {
				t.Fatalf("connection %q not Equal to itself", c.Name)
			}
		}
	})
}
