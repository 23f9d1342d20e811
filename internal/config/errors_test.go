package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrors has one case per kind of error. want holds the exact error
// lines with $F for the configuration's path and $DIR for its directory.
// The YAML of each case starts at line 1 right after the backquote.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "yaml syntax",
			yaml: `daemon:
  port: 500
 nat_port: 4500
`,
			want: []string{`$F:3: did not find expected key`},
		},
		{
			name: "more than one document",
			yaml: `daemon: {port: 500}
---
daemon: {port: 501}
`,
			want: []string{`$F:2: more than one YAML document; a configuration is a single document`},
		},
		{
			name: "top level not a mapping",
			yaml: `- daemon
`,
			want: []string{`$F:1: expected a mapping, got a list`},
		},
		{
			name: "unknown top-level key",
			yaml: `deamon:
  port: 500
`,
			want: []string{`$F:1: unknown key "deamon" (did you mean "daemon"?)`},
		},
		{
			name: "unknown nested key",
			yaml: `daemon:
  log:
    level: info
    colour: true
`,
			want: []string{`$F:4: daemon.log: unknown key "colour"`},
		},
		{
			name: "duplicate key",
			yaml: `daemon:
  port: 500
  port: 501
`,
			want: []string{`$F:3: daemon: duplicate key "port" (first at line 2)`},
		},
		{
			name: "wrong type",
			yaml: `daemon:
  listen:
    a: b
  port: [500]
`,
			want: []string{
				`$F:3: daemon.listen: expected a list, got a mapping`,
				`$F:4: daemon.port: expected a single value, got a list`,
			},
		},
		{
			name: "integer out of range",
			yaml: `daemon:
  port: 70000
  nat_port: four
`,
			want: []string{
				`$F:2: daemon.port: expected an integer from 1 to 65535, got "70000"`,
				`$F:3: daemon.nat_port: expected an integer from 1 to 65535, got "four"`,
			},
		},
		{
			name: "same port twice",
			yaml: `daemon:
  port: 4500
`,
			want: []string{`$F:1: daemon.nat_port: must differ from port (4500)`},
		},
		{
			name: "dataplane",
			yaml: `daemon:
  dataplane: kernel
`,
			want: []string{`$F:2: daemon.dataplane: expected one of userspace, xfrm, none, got "kernel"`},
		},
		{
			name: "log level and format",
			yaml: `daemon:
  log: {level: verbose,
        format: xml}
`,
			want: []string{
				`$F:2: daemon.log.level: expected one of debug, info, warn, error, got "verbose"`,
				`$F:3: daemon.log.format: expected one of text, json, got "xml"`,
			},
		},
		{
			name: "bad listen address, tun, metrics and pprof",
			yaml: `daemon:
  listen: [192.0.2.1, gw.example]
  tun: a/b
  metrics: localhost
  pprof: 127.0.0.1:0
`,
			want: []string{
				`$F:2: daemon.listen[1]: invalid IP address "gw.example"`,
				`$F:3: daemon.tun: invalid interface name "a/b" (1 to 15 characters, no '/', ':' or spaces)`,
				`$F:4: daemon.metrics: expected host:port (e.g. 127.0.0.1:9100 or :9100), got "localhost"`,
				`$F:5: daemon.pprof: expected host:port (e.g. 127.0.0.1:6060), got "127.0.0.1:0"`,
			},
		},
		{
			name: "secret without psk, bad encodings, bad id",
			yaml: `secrets:
  - ids: [gw-a.example]
  - psk: 0xnothex
  - psk: "0s!!!"
  - ids: ["gw:b"]
    psk: ""
`,
			want: []string{
				`$F:2: secrets[0].psk: missing`,
				`$F:3: secrets[1].psk: invalid hex after 0x`,
				`$F:4: secrets[2].psk: invalid base64 after 0s`,
				`$F:5: secrets[3].ids[0]: identity "gw:b" is neither an IPv6 address nor a known type prefix (fqdn:, email:, keyid:, ...)`,
				`$F:6: secrets[3].psk: empty pre-shared key`,
			},
		},
		{
			name: "bad duration",
			yaml: `connections:
  site:
    remote_addrs: [192.0.2.2]
    rekey_time: 3600
    dpd_delay: -5s
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{
				`$F:4: connections.site.rekey_time: invalid duration "3600" (Go syntax, e.g. 90s, 30m, 4h; 0 for off)`,
				`$F:5: connections.site.dpd_delay: invalid duration "-5s" (Go syntax, e.g. 90s, 30m, 4h; 0 for off)`,
			},
		},
		{
			name: "bad addresses",
			yaml: `connections:
  site:
    local_addrs: ["%any", 192.0.2.1]
    remote_addrs: [192.0.2.300, "%any"]
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{
				`$F:3: connections.site.local_addrs: %any cannot be combined with addresses (leave local_addrs out to use any)`,
				`$F:4: connections.site.remote_addrs[0]: invalid IP address "192.0.2.300"`,
			},
		},
		{
			name: "bad proposals",
			yaml: `connections:
  site:
    remote_addrs: [192.0.2.2]
    proposals:
      - aes256gcm16-prfsha256-x25519
      - aes257-sha256-modp2048
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net:
        esp_proposals: [aes256gcm16, chacha30]
`,
			want: []string{
				`$F:6: connections.site.proposals[1]: unknown algorithm "aes257"`,
				`$F:11: connections.site.children.net.esp_proposals[1]: unknown algorithm "chacha30"`,
			},
		},
		{
			name: "empty lists",
			yaml: `connections:
  site:
    proposals: []
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net:
        local_ts: []
`,
			want: []string{
				`$F:3: connections.site.proposals: needs at least one proposal (leave the key out for the defaults)`,
				`$F:8: connections.site.children.net.local_ts: needs at least one traffic selector (leave the key out for dynamic)`,
			},
		},
		{
			name: "bool",
			yaml: `connections:
  site:
    encap: maybe
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{`$F:3: connections.site.encap: expected true or false, got "maybe"`},
		},
		{
			name: "if_id without the xfrm data plane",
			yaml: `connections:
  site:
    if_id: 7
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{`$F:3: connections.site.if_id: needs daemon.dataplane: xfrm (route-based mode uses the kernel's XFRM interfaces), not userspace`},
		},
		{
			name: "if_id out of range",
			yaml: `daemon: {dataplane: xfrm}
connections:
  site:
    if_id: 4294967296
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{`$F:4: connections.site.if_id: expected an integer from 0 to 4294967295, got 4294967296`},
		},
		{
			name: "psk without a secret",
			yaml: `secrets:
  - ids: [gw-a.example, gw-c.example]
    psk: not for b
  - ids: [gw-c.example]
    psk: not for a or b
connections:
  site:
    remote_addrs: [192.0.2.2]
    local:
      auth: psk
      id: gw-b.example
    remote:
      auth: psk
      id: gw-d.example
`,
			want: []string{`$F:10: connections.site.local.auth: no secret for ids "gw-b.example" and "gw-d.example" (add one to secrets)`},
		},
		{
			name: "psk needs a local id and takes no certificates",
			yaml: `connections:
  site:
    local:
      auth: psk
      key: a.key
    remote:
      auth: psk
      cacerts: [ca.crt]
`,
			want: []string{
				`$F:3: connections.site.local: missing id (required with auth: psk)`,
				`$F:5: connections.site.local.key: only used with auth: pubkey`,
				`$F:8: connections.site.remote.cacerts: only used with auth: pubkey`,
			},
		},
		{
			name: "pubkey needs certs, key and cacerts",
			yaml: `connections:
  site:
    local:
      auth: pubkey
    remote:
      auth: pubkey
      id: gw-b.example
`,
			want: []string{
				`$F:3: connections.site.local: missing certs (required with auth: pubkey)`,
				`$F:3: connections.site.local: missing key (required with auth: pubkey)`,
				`$F:5: connections.site.remote: missing cacerts (required with auth: pubkey)`,
			},
		},
		{
			name: "missing files",
			yaml: `connections:
  site:
    local:
      certs: [a.crt, missing.crt]
      key: /nonexistent/a.key
    remote:
      cacerts: [sub/ca.crt]
`,
			want: []string{
				`$F:4: connections.site.local.certs[1]: open $DIR/missing.crt: no such file or directory`,
				`$F:5: connections.site.local.key: open /nonexistent/a.key: no such file or directory`,
				`$F:7: connections.site.remote.cacerts[0]: open $DIR/sub/ca.crt: no such file or directory`,
			},
		},
		{
			name: "key does not match certificate",
			yaml: `connections:
  site:
    local:
      certs: [a.crt]
      key: b.key
    remote:
      cacerts: [ca.crt]
`,
			want: []string{`$F:5: connections.site.local.key: $DIR/b.key: the private key does not belong to certificate "C=CH, O=Example, CN=gw-a"`},
		},
		{
			name: "not a certificate",
			yaml: `connections:
  site:
    local:
      certs: [a.key]
      key: a.key
    remote:
      cacerts: [a.key]
`,
			want: []string{
				`$F:4: connections.site.local.certs[0]: $DIR/a.key: no certificate found`,
				`$F:7: connections.site.remote.cacerts[0]: $DIR/a.key: no certificate found`,
			},
		},
		{
			name: "duplicate connection and child names",
			yaml: `connections:
  site:
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net: {}
      net: {mode: transport}
  site: {}
`,
			want: []string{
				`$F:7: connections.site.children: duplicate child name "net" (first defined at line 6)`,
				`$F:8: connections: duplicate connection name "site" (first defined at line 2)`,
			},
		},
		{
			name: "invalid names",
			yaml: `connections:
  "my site":
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      "net/1": {}
`,
			want: []string{
				`$F:2: connections: invalid connection name "my site": use up to 64 letters, digits, '.', '-' and '_'`,
				`$F:6: connections."my site".children: invalid child name "net/1": use up to 64 letters, digits, '.', '-' and '_'`,
			},
		},
		{
			name: "rekey after expiry",
			yaml: `connections:
  site:
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      a:
        life_time: 30m
      b:
        rekey_time: 2h
        life_time: 1h
      c:
        rekey_bytes: 1000
        life_bytes: 999
`,
			want: []string{
				`$F:7: connections.site.children.a.life_time: rekey_time (1h0m0s) exceeds life_time (30m0s): the CHILD_SA would expire before it is rekeyed`,
				`$F:9: connections.site.children.b.rekey_time: rekey_time (2h0m0s) exceeds life_time (1h0m0s): the CHILD_SA would expire before it is rekeyed`,
				`$F:12: connections.site.children.c.rekey_bytes: rekey_bytes (1000) exceeds life_bytes (999)`,
			},
		},
		{
			name: "rand_time not below rekey_time",
			yaml: `connections:
  site:
    rekey_time: 1h
    rand_time: 1h
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      a:
        rand_time: 2h
      b:
        rekey_time: 10m
        rand_time: -1s
`,
			want: []string{
				`$F:4: connections.site.rand_time: rand_time (1h0m0s) must be less than rekey_time (1h0m0s): it is the largest random amount taken off rekey_time`,
				`$F:9: connections.site.children.a.rand_time: rand_time (2h0m0s) must be less than rekey_time (1h0m0s): it is the largest random amount taken off rekey_time`,
				`$F:12: connections.site.children.b.rand_time: invalid duration "-1s" (Go syntax, e.g. 90s, 30m, 4h; 0 for off)`,
			},
		},
		{
			name: "traffic selectors",
			yaml: `connections:
  site:
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net:
        local_ts: [10.1.0.1/16, "10.0.0.0/8[tcp/99999]"]
        remote_ts: ["10.2.0.0/16[/80]", 10.0.0.1-10.0.0.9, "dynamic[any/53]"]
`,
			want: []string{
				`$F:7: connections.site.children.net.local_ts[0]: traffic selector "10.1.0.1/16": host bits set (did you mean 10.1.0.0/16?)`,
				`$F:7: connections.site.children.net.local_ts[1]: traffic selector "10.0.0.0/8[tcp/99999]": invalid port "99999" (a number or a range like 1000-2000)`,
				`$F:8: connections.site.children.net.remote_ts[0]: traffic selector "10.2.0.0/16[/80]": unknown protocol "" (a name like tcp, udp, icmp, or a number 0-255)`,
				`$F:8: connections.site.children.net.remote_ts[1]: traffic selector "10.0.0.1-10.0.0.9": address ranges are not supported; use CIDR prefixes`,
				`$F:8: connections.site.children.net.remote_ts[2]: traffic selector "dynamic[any/53]": a port needs a protocol, e.g. [tcp/80]`,
			},
		},
		{
			name: "child enums and replay window",
			yaml: `connections:
  site:
    remote_addrs: [192.0.2.2]
    unique: sometimes
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net:
        mode: beet
        start_action: hold
        replay_window: 16
`,
			want: []string{
				`$F:4: connections.site.unique: expected one of no, never, replace, keep, got "sometimes"`,
				`$F:9: connections.site.children.net.mode: expected one of tunnel, transport, got "beet"`,
				`$F:10: connections.site.children.net.start_action: expected one of none, start, trap, got "hold"`,
				`$F:11: connections.site.children.net.replay_window: must be 0 (off) or at least 32 (RFC 4303 3.4.3)`,
			},
		},
		{
			name: "initiating without a remote address",
			yaml: `connections:
  road:
    remote_addrs: ["%any"]
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
    children:
      net:
        start_action: start
        dpd_action: restart
`,
			want: []string{
				`$F:8: connections.road.children.net.start_action: start initiates, but the connection has no remote address to initiate to (remote_addrs)`,
				`$F:9: connections.road.children.net.dpd_action: start initiates, but the connection has no remote address to initiate to (remote_addrs)`,
			},
		},
		{
			name: "own identity a pattern",
			yaml: `connections:
  site:
    local: {auth: psk, id: "%any"}
    remote: {auth: psk}
  other:
    local: {auth: psk, id: "*.example"}
    remote: {auth: psk}
`,
			want: []string{
				`$F:3: connections.site.local.id: our own identity cannot be a pattern (%any or *)`,
				`$F:6: connections.other.local.id: our own identity cannot be a pattern (%any or *)`,
			},
		},
		{
			name: "merge key of a scalar",
			yaml: `connections:
  site:
    <<: 5
    local: {auth: psk, id: gw-a.example}
    remote: {auth: psk}
`,
			want: []string{`$F:3: connections.site: the value of a merge key (<<) must be a mapping or a list of mappings`},
		},
		{
			name: "several errors all reported, in line order",
			yaml: `connections:
  site:
    remote_addrs: [192.0.2.2]
    proposals: [aes257]
    rekey_time: soon
    local:
      auth: psk
      id: gw-a.example
    remote:
      auth: psk
      id: gw-b.example
    children:
      net:
        mode: tunel
daemon:
  port: 0
`,
			want: []string{
				`$F:4: connections.site.proposals[0]: unknown algorithm "aes257"`,
				`$F:5: connections.site.rekey_time: invalid duration "soon" (Go syntax, e.g. 90s, 30m, 4h; 0 for off)`,
				`$F:7: connections.site.local.auth: no secret for ids "gw-a.example" and "gw-b.example" (add one to secrets)`,
				`$F:14: connections.site.children.net.mode: expected one of tunnel, transport, got "tunel"`,
				`$F:16: daemon.port: expected an integer from 1 to 65535, got "0"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := setup(t, tc.yaml)
			dir := filepath.Dir(path)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded, want errors")
			}
			r := strings.NewReplacer("$F", path, "$DIR", dir)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = r.Replace(w)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Each line is an *Error.
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
				t.Fatalf("error is not a join of %d errors", len(want))
			}
			for _, e := range joined.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != path || ce.Line == 0 {
					t.Errorf("%v: not an *Error with file and line", e)
				}
			}
		})
	}
}

// Secrets never appear in errors, whatever is wrong around them.
func TestErrorsDoNotEchoSecrets(t *testing.T) {
	const secret = "Sup3rS3cretValue"
	for _, y := range []string{
		"secrets:\n  - psk: 0x" + secret + "\n",
		"secrets:\n  - psk: 0s" + secret + "!\n",
		"secrets:\n  - psk: [" + secret + "]\n",
		"secrets:\n  - psk: {" + secret + ": 1}\n",
		"secrets:\n  - psk: " + secret + "\n    pks: " + secret + "\n",
		"secrets:\n  - psk: " + secret + "\n    psk: " + secret + "\n",
		"secrets:\n  psk: " + secret + "\n",
		"secrets:\n  - psk: \"" + secret + "\n",
	} {
		_, err := Parse([]byte(y), "s.yaml")
		if err == nil {
			t.Errorf("Parse(%q) succeeded", y)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

// yaml.v3 reports some syntax errors one line early (see yamlParserProblems);
// the errors must name the line an editor shows.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{"daemon:\n  port: 500\n nat_port: 4500\n", "y.yaml:3: did not find expected key"},
		{"a: 1\nb: 2\nc: [1, 2\nd: 3\n", "y.yaml:3: did not find expected ',' or ']'"},
		{"a: 1\nb: 2\nc: {x: 1\n", "y.yaml:3: did not find expected ',' or '}'"},
		{"a: 1\nb: 2\nc: d: e\n", "y.yaml:3: mapping values are not allowed in this context"},
		{"a: 1\nb: 2\nc: \"abc\nd: 3\n", "y.yaml:3: found unexpected end of stream"},
		{"a: 1\nb: 2\nc:\n  - x\n  y: 1\n", "y.yaml:4: did not find expected '-' indicator"},
		{"a: 1\nb: *nope\n", "y.yaml:2: unknown anchor 'nope' referenced"},
		{"a: 1\nb: @x\n", "y.yaml:2: found character that cannot start any token"},
	} {
		_, err := Parse([]byte(tc.yaml), "y.yaml")
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q) = %v, want %s", tc.yaml, err, tc.want)
		}
	}
}

// Aliases cannot multiply the work beyond a budget ("billion laughs").
func TestAliasExpansionBudget(t *testing.T) {
	defer func(n int) { maxVisits = n }(maxVisits)
	maxVisits = 5000
	var b strings.Builder
	b.WriteString("x-ts: &ts [10.0.0.0/8, 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16]\n")
	b.WriteString("x-child: &child {local_ts: *ts, remote_ts: *ts}\n")
	b.WriteString("x-children: &children\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  c%d: *child\n", i)
	}
	b.WriteString("x-conn: &conn {local: {auth: psk, id: a.example}, remote: {auth: psk}, children: *children}\n")
	b.WriteString("connections:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  k%d: *conn\n", i) // 100 x 100 children x 8 selectors
	}
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "document too large (more than 5000 values after alias expansion)") {
		t.Fatalf("Parse = %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n != 0 {
		t.Errorf("%d extra error lines:\n%s", n, err)
	}
}
