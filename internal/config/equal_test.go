package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const equalBase = `
secrets:
  - {ids: [gw-a.example, gw-b.example], psk: one}
connections:
  site:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {certs: [a.crt], key: a.key, id: gw-a.example}
    remote: {cacerts: [ca.crt], id: gw-b.example}
    children:
      net:
        local_ts: [10.1.0.0/16]
        remote_ts: [10.2.0.0/16]
      web:
        remote_ts: [10.3.0.0/16]
`

// loadIn loads yaml from a configuration file in dir.
func loadIn(t *testing.T, dir, yaml string) *Config {
	t.Helper()
	path := filepath.Join(dir, "cygnet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConnectionEqual(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, getPKI(t).files())
	base := loadIn(t, dir, equalBase).Connections[0]

	// Loading the same file again gives an equal (not identical) connection.
	again := loadIn(t, dir, equalBase).Connections[0]
	if again == base || !base.Equal(again) || !again.Equal(base) {
		t.Fatal("the same configuration loaded twice is not Equal")
	}

	same := map[string]func(string) string{
		"secret changed": func(y string) string { return strings.Replace(y, "psk: one", "psk: two", 1) },
		"comment and layout": func(y string) string {
			return "# reloaded\n" + strings.Replace(y, "[192.0.2.2]", "\n      - 192.0.2.2", 1)
		},
		"explicit defaults": func(y string) string {
			return strings.Replace(strings.Replace(y, "    children:", "    rekey_time: 4h\n    rand_time: 24m\n    mobike: true\n    children:", 1),
				"      web:\n", "      web:\n        rand_time: 6m\n", 1)
		},
		"certificate moved": func(y string) string { return strings.Replace(y, "certs: [a.crt]", "certs: [moved/a.crt]", 1) },
		"other connection add": func(y string) string {
			return y + "  other: {local: {auth: psk, id: x.example}, remote: {auth: psk}}\n"
		},
	}
	writeFiles(t, dir, map[string][]byte{"moved/a.crt": getPKI(t).aCert})
	for name, edit := range same {
		c := loadIn(t, dir, edit(equalBase)).Connection("site")
		if !base.Equal(c) {
			t.Errorf("%s: not Equal, want Equal", name)
		}
	}

	different := map[string]string{
		"local_addrs":   "local_addrs: [192.0.2.9]",
		"remote_addrs":  "remote_addrs: [192.0.2.2, \"%any\"]",
		"remote_port":   "remote_port: 4501",
		"proposals":     "proposals: [aes128gcm16-prfsha256-x25519]",
		"encap":         "encap: true",
		"fragmentation": "fragmentation: false",
		"fragment_size": "fragment_size: 1400",
		"rekey_time":    "rekey_time: 1h",
		"rand_time":     "rand_time: 0s",
		"reauth_time":   "reauth_time: 1h",
		"dpd_delay":     "dpd_delay: 5s",
		"dpd_timeout":   "dpd_timeout: 5s",
		"keyingtries":   "keyingtries: 3",
		"unique":        "unique: replace",
		"mobike":        "mobike: false",
	}
	for key, line := range different {
		y := strings.Replace(equalBase, "    children:", "    "+line+"\n    children:", 1)
		if strings.Contains(equalBase, "\n    "+key+":") {
			y = replaceLine(equalBase, "    "+key+":", "    "+line)
		}
		if c := loadIn(t, dir, y).Connection("site"); base.Equal(c) {
			t.Errorf("%s changed: still Equal", key)
		}
	}

	childChanges := map[string]string{
		"local_ts":      "local_ts: [10.1.0.0/24]",
		"esp_proposals": "esp_proposals: [aes128gcm16]",
		"mode":          "mode: transport",
		"start_action":  "start_action: trap",
		"close_action":  "close_action: start",
		"dpd_action":    "dpd_action: start",
		"rekey_time":    "rekey_time: 2h",
		"rand_time":     "rand_time: 1m",
		"life_time":     "life_time: 2h",
		"rekey_bytes":   "rekey_bytes: 100",
		"life_bytes":    "life_bytes: 100",
		"rekey_packets": "rekey_packets: 100",
		"life_packets":  "life_packets: 100",
		"replay_window": "replay_window: 64",
	}
	for key, line := range childChanges {
		y := strings.Replace(equalBase, "      web:\n", "      web:\n        "+line+"\n", 1)
		if c := loadIn(t, dir, y).Connection("site"); base.Equal(c) {
			t.Errorf("child %s changed: still Equal", key)
		}
	}

	for name, y := range map[string]string{
		"child renamed":      strings.Replace(equalBase, "      web:", "      www:", 1),
		"children reordered": strings.Replace(strings.Replace(equalBase, "      web:\n        remote_ts: [10.3.0.0/16]\n", "", 1), "    children:\n", "    children:\n      web:\n        remote_ts: [10.3.0.0/16]\n", 1),
		"child removed":      strings.Replace(equalBase, "      web:\n        remote_ts: [10.3.0.0/16]\n", "", 1),
		"local id":           strings.Replace(equalBase, "id: gw-a.example}", "id: \"C=CH, O=Example, CN=gw-a\"}", 1),
		"remote id":          strings.Replace(equalBase, "id: gw-b.example}", "id: \"%any\"}", 1),
		"other CA file":      strings.Replace(equalBase, "cacerts: [ca.crt]", "cacerts: [ca.crt, ca.crt]", 1),
		"other key format":   strings.Replace(equalBase, "key: a.key", "key: a-ec.key", 1), // same key: Equal
	} {
		c := loadIn(t, dir, y).Connection("site")
		if want := name == "other key format"; base.Equal(c) != want {
			t.Errorf("%s: Equal = %v, want %v", name, !want, want)
		}
	}

	// if_id needs the xfrm data plane.
	xfrmBase := "daemon: {dataplane: xfrm}\n" + equalBase
	xfrmSite := loadIn(t, dir, xfrmBase).Connection("site")
	if c := loadIn(t, dir, strings.Replace(xfrmBase, "    children:", "    if_id: 42\n    children:", 1)).Connection("site"); xfrmSite.Equal(c) {
		t.Error("if_id changed: still Equal")
	}

	// A certificate renewed in place (same file name, same key) is a change.
	renewed := getPKI(t).issue(t, "gw-a", "gw-a.example", getPKI(t).aSigner.Public())
	writeFiles(t, dir, map[string][]byte{"a.crt": renewed})
	if c := loadIn(t, dir, equalBase).Connection("site"); base.Equal(c) {
		t.Error("renewed certificate: still Equal")
	}

	if !(*Connection)(nil).Equal(nil) || base.Equal(nil) || (*Connection)(nil).Equal(base) {
		t.Error("nil handling")
	}
}

// replaceLine replaces the lines of s that start with prefix by repl.
func replaceLine(s, prefix, repl string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = repl
		}
	}
	return strings.Join(lines, "\n")
}

// Equal must compare every field; this notices a field added to Connection
// or Child without a thought for Equal.
func TestEqualCoversAllFields(t *testing.T) {
	for typ, want := range map[reflect.Type]int{
		reflect.TypeFor[Connection](): 21,
		reflect.TypeFor[LocalAuth]():  5,
		reflect.TypeFor[RemoteAuth](): 5,
		reflect.TypeFor[Child]():      16,
	} {
		if typ.NumField() != want {
			t.Errorf("%v has %d fields, not %d: update Equal (and this test)", typ, typ.NumField(), want)
		}
	}
}
