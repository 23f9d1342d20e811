package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// setup writes the test PKI and the configuration text into a temporary
// directory and returns the configuration's path.
func setup(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, getPKI(t, true).files())
	path := filepath.Join(dir, "cygnet.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Load(setup(t, yaml))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func mustID(t *testing.T, s string) auth.Identity {
	t.Helper()
	id, err := auth.ParseIdentity(s)
	if err != nil {
		t.Fatalf("ParseIdentity(%q): %v", s, err)
	}
	return id
}

func proposalStrings(ps []algs.Proposal) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func tsStrings(ts []TrafficSelector) []string {
	out := make([]string, len(ts))
	for i, x := range ts {
		out[i] = x.String()
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// canonical returns the proposal strings as algs prints them.
func canonical(t *testing.T, proto wire.ProtocolID, ss ...string) []string {
	t.Helper()
	out := make([]string, len(ss))
	for i, s := range ss {
		p, err := algs.ParseProposal(s, proto)
		if err != nil {
			t.Fatalf("ParseProposal(%q): %v", s, err)
		}
		out[i] = p.String()
	}
	return out
}

func TestContractExample(t *testing.T) {
	example, err := os.ReadFile("testdata/contract-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := setup(t, string(example))
	dir := filepath.Dir(path)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Path != path {
		t.Errorf("Path = %q, want %q", cfg.Path, path)
	}

	wantDaemon := Daemon{
		Listen:    addrs("192.0.2.1"),
		Port:      500,
		NATPort:   4500,
		Socket:    "/run/cygnet/cygnet.sock",
		Dataplane: "userspace",
		TUN:       "cygnet0",
		Log:       LogSettings{Level: slog.LevelInfo, Format: "text"},
	}
	if !daemonEqual(cfg.Daemon, wantDaemon) {
		t.Errorf("Daemon = %+v, want %+v", cfg.Daemon, wantDaemon)
	}

	if len(cfg.Secrets) != 1 {
		t.Fatalf("%d secrets, want 1", len(cfg.Secrets))
	}
	s := cfg.Secrets[0]
	if len(s.IDs) != 2 || !s.IDs[0].Equal(mustID(t, "gw-a.example")) || !s.IDs[1].Equal(mustID(t, "gw-b.example")) {
		t.Errorf("secret ids = %v", s.IDs)
	}
	if string(s.PSK) != "a long random secret" {
		t.Errorf("secret psk wrong (length %d)", len(s.PSK))
	}

	if len(cfg.Connections) != 1 {
		t.Fatalf("%d connections, want 1", len(cfg.Connections))
	}
	c := cfg.Connections[0]
	if c.Name != "site" || cfg.Connection("site") != c || cfg.Connection("nope") != nil {
		t.Errorf("connection name %q / lookup broken", c.Name)
	}
	if !slices.Equal(c.LocalAddrs, addrs("192.0.2.1")) || !slices.Equal(c.RemoteAddrs, addrs("192.0.2.2")) || c.RemoteAny {
		t.Errorf("addrs: local %v remote %v any %v", c.LocalAddrs, c.RemoteAddrs, c.RemoteAny)
	}
	if c.RemotePort != 500 {
		t.Errorf("RemotePort = %d, want 500 (the daemon's port)", c.RemotePort)
	}
	if got, want := proposalStrings(c.Proposals), canonical(t, wire.ProtoIKE, "aes256gcm16-prfsha256-x25519"); !slices.Equal(got, want) {
		t.Errorf("Proposals = %v, want %v", got, want)
	}
	if c.Encap || !c.Fragmentation || c.FragmentSize != 1280 || c.RekeyTime != 4*time.Hour || c.RandTime != 24*time.Minute || c.ReauthTime != 0 ||
		c.DPDDelay != 30*time.Second || c.DPDTimeout != 150*time.Second || c.Keyingtries != 1 || c.Unique != "no" || !c.Mobike || c.IfID != 0 {
		t.Errorf("connection settings: %+v", c)
	}

	if c.Local.Auth != "pubkey" || !c.Local.ID.Equal(mustID(t, "gw-a.example")) {
		t.Errorf("local auth %q id %v", c.Local.Auth, c.Local.ID)
	}
	if c.Local.Cred == nil || len(c.Local.Cred.Chain) != 1 || c.Local.Cred.Key == nil ||
		!c.Local.Cred.Chain[0].Equal(getPKI(t).aParsed) {
		t.Errorf("local credential not loaded: %+v", c.Local.Cred)
	}
	if !slices.Equal(c.Local.CertPaths, []string{filepath.Join(dir, "a.crt")}) || c.Local.KeyPath != filepath.Join(dir, "a.key") {
		t.Errorf("local paths %v %q not resolved against %s", c.Local.CertPaths, c.Local.KeyPath, dir)
	}
	if c.Remote.Auth != "pubkey" || !c.Remote.ID.Equal(mustID(t, "gw-b.example")) {
		t.Errorf("remote auth %q id %v", c.Remote.Auth, c.Remote.ID)
	}
	if len(c.Remote.CACerts) != 1 || !c.Remote.CACerts[0].Equal(getPKI(t).ca) || c.Remote.Roots == nil ||
		!slices.Equal(c.Remote.CAPaths, []string{filepath.Join(dir, "ca.crt")}) {
		t.Errorf("remote CA not loaded: %v %v", c.Remote.CACerts, c.Remote.CAPaths)
	}

	if len(c.Children) != 1 {
		t.Fatalf("%d children, want 1", len(c.Children))
	}
	ch := c.Children[0]
	if ch.Name != "net" || c.Child("net") != ch || c.Child("nope") != nil {
		t.Errorf("child name %q / lookup broken", ch.Name)
	}
	if got := tsStrings(ch.LocalTS); !slices.Equal(got, []string{"10.1.0.0/16"}) {
		t.Errorf("LocalTS = %v", got)
	}
	if got := tsStrings(ch.RemoteTS); !slices.Equal(got, []string{"10.2.0.0/16"}) {
		t.Errorf("RemoteTS = %v", got)
	}
	if got, want := proposalStrings(ch.ESPProposals), canonical(t, wire.ProtoESP, "aes256gcm16"); !slices.Equal(got, want) {
		t.Errorf("ESPProposals = %v, want %v", got, want)
	}
	want := Child{
		Name: "net", Mode: "tunnel", StartAction: "none", CloseAction: "none", DPDAction: "none",
		RekeyTime: time.Hour, LifeTime: 66 * time.Minute, ReplayWindow: 1024,
	}
	if ch.Mode != want.Mode || ch.StartAction != want.StartAction || ch.CloseAction != want.CloseAction ||
		ch.DPDAction != want.DPDAction || ch.RekeyTime != want.RekeyTime || ch.LifeTime != want.LifeTime ||
		ch.ReplayWindow != want.ReplayWindow || ch.RekeyBytes != 0 || ch.LifeBytes != 0 || ch.RekeyPackets != 0 || ch.LifePackets != 0 {
		t.Errorf("child = %+v, want %+v", *ch, want)
	}
}

func daemonEqual(a, b Daemon) bool {
	return slices.Equal(a.Listen, b.Listen) && a.Port == b.Port && a.NATPort == b.NATPort && a.Socket == b.Socket &&
		a.Dataplane == b.Dataplane && a.TUN == b.TUN && a.Keylog == b.Keylog && a.Metrics == b.Metrics && a.Pprof == b.Pprof && a.Log == b.Log
}

// The contract's example with PSK authentication instead of certificates.
func TestContractExamplePSK(t *testing.T) {
	example, err := os.ReadFile("testdata/contract-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := string(example)
	for old, repl := range map[string]string{
		"      auth: pubkey             # pubkey | psk\n":                                   "      auth: psk\n",
		"      certs: [a.crt]           # PEM; ours first, then intermediates\n":            "",
		"      key: a.key               # PEM private key: PKCS#8, SEC1 EC or PKCS#1 RSA\n": "",
		"      auth: pubkey\n": "      auth: psk\n",
		"      cacerts: [ca.crt]        # trust anchors for the peer's chain\n": "",
	} {
		if !strings.Contains(y, old) {
			t.Fatalf("example lacks %q", old)
		}
		y = strings.Replace(y, old, repl, 1)
	}
	cfg := mustLoad(t, y)
	c := cfg.Connections[0]
	if c.Local.Auth != "psk" || c.Remote.Auth != "psk" || c.Local.Cred != nil || c.Remote.Roots != nil || c.Remote.CACerts != nil {
		t.Errorf("psk connection: local %+v remote %+v", c.Local, c.Remote)
	}
	psk, ok := cfg.PSK(c.Local.ID, c.Remote.ID)
	if !ok || string(psk) != "a long random secret" {
		t.Errorf("PSK(local, remote) = %v", ok)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, `
connections:
  road:
    local:
      auth: psk
      id: gw-a.example
    remote:
      auth: psk
    children:
      host: {}
`)
	d := cfg.Daemon
	if len(d.Listen) != 0 || d.Port != 500 || d.NATPort != 4500 || d.Socket != DefaultSocket || d.Dataplane != "userspace" ||
		d.TUN != "cygnet0" || d.Keylog != "" || d.Metrics != "" || d.Pprof != "" || d.Log.Level != slog.LevelInfo || d.Log.Format != "text" {
		t.Errorf("daemon defaults: %+v", d)
	}
	c := cfg.Connections[0]
	if len(c.LocalAddrs) != 0 || len(c.RemoteAddrs) != 0 || !c.RemoteAny || c.RemotePort != 500 {
		t.Errorf("address defaults: %v %v %v %d", c.LocalAddrs, c.RemoteAddrs, c.RemoteAny, c.RemotePort)
	}
	if got, want := proposalStrings(c.Proposals), proposalStrings(algs.DefaultProposals(wire.ProtoIKE)); !slices.Equal(got, want) {
		t.Errorf("default IKE proposals = %v, want %v", got, want)
	}
	if c.Encap || !c.Fragmentation || c.FragmentSize != 1280 || c.RekeyTime != 4*time.Hour || c.RandTime != 24*time.Minute || c.ReauthTime != 0 ||
		c.DPDDelay != 30*time.Second || c.DPDTimeout != 150*time.Second || c.Keyingtries != 1 || c.Unique != "no" || !c.Mobike || c.IfID != 0 {
		t.Errorf("connection defaults: %+v", c)
	}
	if !c.Remote.ID.Any() {
		t.Errorf("remote id default = %v, want %%any", c.Remote.ID)
	}
	ch := c.Children[0]
	if got := tsStrings(ch.LocalTS); !slices.Equal(got, []string{"dynamic"}) || !ch.LocalTS[0].Dynamic {
		t.Errorf("LocalTS default = %v", got)
	}
	if got := tsStrings(ch.RemoteTS); !slices.Equal(got, []string{"dynamic"}) {
		t.Errorf("RemoteTS default = %v", got)
	}
	if got, want := proposalStrings(ch.ESPProposals), proposalStrings(algs.DefaultProposals(wire.ProtoESP)); !slices.Equal(got, want) {
		t.Errorf("default ESP proposals = %v, want %v", got, want)
	}
	if ch.Mode != "tunnel" || ch.StartAction != "none" || ch.CloseAction != "none" || ch.DPDAction != "none" ||
		ch.RekeyTime != time.Hour || ch.RandTime != 6*time.Minute || ch.LifeTime != 66*time.Minute || ch.ReplayWindow != 1024 {
		t.Errorf("child defaults: %+v", ch)
	}
}

// An empty file is a valid configuration: a daemon with nothing to do.
func TestEmpty(t *testing.T) {
	for _, y := range []string{"", "# nothing\n", "---\n", "{}\n", "daemon:\nconnections:\n"} {
		cfg, err := Parse([]byte(y), "empty.yaml")
		if err != nil {
			t.Errorf("Parse(%q): %v", y, err)
			continue
		}
		if len(cfg.Connections) != 0 || cfg.Daemon.Port != 500 {
			t.Errorf("Parse(%q) = %+v", y, cfg)
		}
	}
}

func TestEverySetting(t *testing.T) {
	cfg := mustLoad(t, `
daemon:
  listen: [192.0.2.1, "2001:db8::1"]
  port: 1500
  nat_port: 14500
  socket: run/cygnet.sock
  dataplane: xfrm
  tun: vpn0
  keylog: keys
  metrics: 127.0.0.1:9100
  pprof: "[::1]:6060"
  log: {level: debug, format: json}
secrets:
  - psk: 0x00ff10
  - ids: ["C=CH, O=Example, CN=gw-r"]
    psk: 0sAAEC
connections:
  c1:
    local_addrs: "%any"
    remote_addrs: [192.0.2.2, "%any", "2001:db8::2"]
    remote_port: 4501
    proposals: [aes128-sha256-modp2048, default]
    encap: yes
    fragmentation: no
    fragment_size: 1400
    rekey_time: 0
    rand_time: 1h
    reauth_time: 24h
    dpd_delay: 0s
    dpd_timeout: 1m
    keyingtries: 0
    unique: replace
    mobike: false
    if_id: 0x2a
    local:
      auth: pubkey
      certs: r.crt
      key: r-rsa.key
    remote:
      auth: psk
      id: gw-b.example
    children:
      web:
        local_ts: [10.1.0.0/24, 10.1.1.1]
        remote_ts: ["0.0.0.0/0[tcp/443]", "dynamic[udp/1000-2000]"]
        esp_proposals: [aes256gcm16-x25519, aes128-sha256-noesn]
        mode: transport
        start_action: trap
        close_action: restart
        dpd_action: clear
        rekey_time: 20m
        rand_time: 90s
        life_time: 30m
        rekey_bytes: 1000
        life_bytes: 2000
        rekey_packets: 100
        replay_window: 0
`)
	dir := filepath.Dir(cfg.Path)
	d := cfg.Daemon
	if !slices.Equal(d.Listen, addrs("192.0.2.1", "2001:db8::1")) || d.Port != 1500 || d.NATPort != 14500 ||
		d.Socket != filepath.Join(dir, "run/cygnet.sock") || d.Dataplane != "xfrm" || d.TUN != "vpn0" ||
		d.Keylog != filepath.Join(dir, "keys") || d.Metrics != "127.0.0.1:9100" || d.Pprof != "[::1]:6060" || d.Log.Level != slog.LevelDebug || d.Log.Format != "json" {
		t.Errorf("daemon: %+v", d)
	}
	if string(cfg.Secrets[0].PSK) != "\x00\xff\x10" || len(cfg.Secrets[0].IDs) != 0 {
		t.Errorf("hex secret decoded wrong")
	}
	if string(cfg.Secrets[1].PSK) != "\x00\x01\x02" {
		t.Errorf("base64 secret decoded wrong")
	}
	c := cfg.Connections[0]
	if len(c.LocalAddrs) != 0 || !slices.Equal(c.RemoteAddrs, addrs("192.0.2.2", "2001:db8::2")) || !c.RemoteAny || c.RemotePort != 4501 {
		t.Errorf("addresses: %v %v %v %d", c.LocalAddrs, c.RemoteAddrs, c.RemoteAny, c.RemotePort)
	}
	wantProps := append(canonical(t, wire.ProtoIKE, "aes128-sha256-modp2048"), proposalStrings(algs.DefaultProposals(wire.ProtoIKE))...)
	if got := proposalStrings(c.Proposals); !slices.Equal(got, wantProps) {
		t.Errorf("proposals = %v, want %v", got, wantProps)
	}
	if !c.Encap || c.Fragmentation || c.FragmentSize != 1400 || c.RekeyTime != 0 || c.RandTime != time.Hour || c.ReauthTime != 24*time.Hour ||
		c.DPDDelay != 0 || c.DPDTimeout != time.Minute || c.Keyingtries != 0 || c.Unique != "replace" || c.Mobike || c.IfID != 42 {
		t.Errorf("connection: %+v", c)
	}
	// No local id with a certificate: the certificate's subject DN.
	if !c.Local.ID.Equal(mustID(t, "C=CH, O=Example, CN=gw-r")) {
		t.Errorf("local id from certificate = %v", c.Local.ID)
	}
	if c.Local.Cred == nil || c.Remote.Auth != "psk" {
		t.Errorf("auth: %+v %+v", c.Local, c.Remote)
	}
	ch := c.Children[0]
	if got := tsStrings(ch.LocalTS); !slices.Equal(got, []string{"10.1.0.0/24", "10.1.1.1/32"}) {
		t.Errorf("LocalTS = %v", got)
	}
	if got := tsStrings(ch.RemoteTS); !slices.Equal(got, []string{"0.0.0.0/0[tcp/443]", "dynamic[udp/1000-2000]"}) {
		t.Errorf("RemoteTS = %v", got)
	}
	if got, want := proposalStrings(ch.ESPProposals), canonical(t, wire.ProtoESP, "aes256gcm16-x25519", "aes128-sha256-noesn"); !slices.Equal(got, want) {
		t.Errorf("ESPProposals = %v, want %v", got, want)
	}
	if ch.Mode != "transport" || ch.StartAction != "trap" || ch.CloseAction != "start" || ch.DPDAction != "none" ||
		ch.RekeyTime != 20*time.Minute || ch.RandTime != 90*time.Second || ch.LifeTime != 30*time.Minute || ch.RekeyBytes != 1000 || ch.LifeBytes != 2000 ||
		ch.RekeyPackets != 100 || ch.LifePackets != 110 || ch.ReplayWindow != 0 {
		t.Errorf("child: %+v", ch)
	}
}

// Key formats: PKCS#8 (above), SEC1 and PKCS#1.
func TestKeyFormats(t *testing.T) {
	for _, tc := range []struct{ cert, key string }{{"a.crt", "a.key"}, {"a.crt", "a-ec.key"}, {"r.crt", "r-rsa.key"}} {
		cfg := mustLoad(t, `
connections:
  c:
    local: {certs: [`+tc.cert+`], key: `+tc.key+`}
    remote: {cacerts: [ca.crt]}
`)
		if cfg.Connections[0].Local.Cred == nil {
			t.Errorf("%s/%s: no credential", tc.cert, tc.key)
		}
	}
}

// Relative paths are relative to the configuration file's directory, not
// to the working directory; absolute paths stay as they are.
func TestRelativePaths(t *testing.T) {
	pki := getPKI(t)
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"etc/cygnet/x509/a.crt":    pki.aCert,
		"etc/cygnet/private/a.key": pki.aKey,
		"ca/ca.crt":                pki.caPEM,
	})
	abs := filepath.Join(root, "ca/ca.crt")
	path := filepath.Join(root, "etc/cygnet/cygnet.yaml")
	writeFiles(t, root, map[string][]byte{"etc/cygnet/cygnet.yaml": []byte(`
connections:
  c:
    local: {certs: [x509/a.crt], key: ./private/../private/a.key}
    remote: {cacerts: [` + abs + `, ../../ca/ca.crt]}
`)})
	t.Chdir(t.TempDir()) // somewhere else entirely
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connections[0]
	etc := filepath.Join(root, "etc/cygnet")
	if !slices.Equal(c.Local.CertPaths, []string{filepath.Join(etc, "x509/a.crt")}) || c.Local.KeyPath != filepath.Join(etc, "private/a.key") {
		t.Errorf("local paths: %v %q", c.Local.CertPaths, c.Local.KeyPath)
	}
	if !slices.Equal(c.Remote.CAPaths, []string{abs, abs}) || len(c.Remote.CACerts) != 2 {
		t.Errorf("CA paths: %v", c.Remote.CAPaths)
	}

	// A relative path to the configuration itself works too.
	t.Chdir(filepath.Join(root, "etc"))
	cfg, err = Load("cygnet/cygnet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Connections[0].Local.KeyPath; got != filepath.Join(etc, "private/a.key") {
		t.Errorf("KeyPath via relative config path = %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load(dir) = %v", err)
	}
}

// YAML anchors, aliases and merge keys let connections share settings;
// top-level keys starting with "x-" hold the anchors and are otherwise ignored.
func TestAliasesAndMergeKeys(t *testing.T) {
	cfg := mustLoad(t, `
x-common: &common
  remote_addrs: [192.0.2.2]
  proposals: &props [aes128gcm16-prfsha256-ecp256]
  dpd_delay: 10s
  local: {auth: psk, id: gw-a.example}
  remote: {auth: psk, id: gw-b.example}
x-child: &child
  esp_proposals: [aes128gcm16]
secrets:
  - {ids: [gw-a.example, gw-b.example], psk: s3cret}
connections:
  one:
    <<: *common
    children:
      net: *child
  two:
    <<: [*common, {rekey_time: 1h, dpd_delay: 1s}]
    dpd_delay: 20s
    remote_addrs: [192.0.2.3]
    children:
      net:
        <<: *child
        mode: transport
`)
	one, two := cfg.Connection("one"), cfg.Connection("two")
	if one == nil || two == nil {
		t.Fatalf("connections: %v", cfg.Connections)
	}
	if !slices.Equal(one.RemoteAddrs, addrs("192.0.2.2")) || one.DPDDelay != 10*time.Second || one.RekeyTime != 4*time.Hour {
		t.Errorf("one: %+v", one)
	}
	// Explicit keys beat merged ones; the first merged mapping beats later ones.
	if !slices.Equal(two.RemoteAddrs, addrs("192.0.2.3")) || two.DPDDelay != 20*time.Second || two.RekeyTime != time.Hour {
		t.Errorf("two: %+v", two)
	}
	want := canonical(t, wire.ProtoIKE, "aes128gcm16-prfsha256-ecp256")
	if !slices.Equal(proposalStrings(one.Proposals), want) || !slices.Equal(proposalStrings(two.Proposals), want) {
		t.Errorf("proposals: %v %v", one.Proposals, two.Proposals)
	}
	if one.Children[0].Mode != "tunnel" || two.Children[0].Mode != "transport" ||
		!slices.Equal(proposalStrings(two.Children[0].ESPProposals), canonical(t, wire.ProtoESP, "aes128gcm16")) {
		t.Errorf("children: %+v %+v", one.Children[0], two.Children[0])
	}
}

// The +10% life defaults saturate instead of overflowing.
func TestLifeDefaultsSaturate(t *testing.T) {
	cfg, err := Parse([]byte(`
connections:
  c:
    local: {auth: psk, id: a.example}
    remote: {auth: psk}
    children:
      n: {rekey_time: 2562047h, rekey_bytes: 18446744073709551615}
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Connections[0].Children[0]
	if ch.LifeTime < ch.RekeyTime || ch.LifeBytes != ch.RekeyBytes {
		t.Errorf("life %v/%d, rekey %v/%d", ch.LifeTime, ch.LifeBytes, ch.RekeyTime, ch.RekeyBytes)
	}
}

// rand_time defaults to a tenth of rekey_time, whatever life_time is; 0
// turns the jitter off.
func TestRandTime(t *testing.T) {
	for _, tc := range []struct {
		conn, child string // YAML: lines of the connection, a flow mapping's contents for the child
		ike, ch     time.Duration
	}{
		{"", "", 24 * time.Minute, 6 * time.Minute},
		{"rekey_time: 1h", "rekey_time: 10m", 6 * time.Minute, time.Minute},
		{"rand_time: 0", "rand_time: 0s", 0, 0},
		{"rand_time: 1m", "rand_time: 59m", time.Minute, 59 * time.Minute},
		{"rekey_time: 0", "rekey_time: 0", 0, 0},
		{"rekey_time: 0\n    rand_time: 5h", "rekey_time: 0, rand_time: 5h", 5 * time.Hour, 5 * time.Hour}, // no rekey: no effect
		{"", "life_time: 3h", 24 * time.Minute, 6 * time.Minute},
		{"", "life_time: 0", 24 * time.Minute, 6 * time.Minute},
	} {
		cfg, err := Parse([]byte(`
connections:
  c:
    `+tc.conn+`
    local: {auth: psk, id: a.example}
    remote: {auth: psk}
    children:
      n: {`+tc.child+`}
`), "c.yaml")
		if err != nil {
			t.Errorf("{%s} {%s}: %v", tc.conn, tc.child, err)
			continue
		}
		c := cfg.Connections[0]
		if c.RandTime != tc.ike || c.Children[0].RandTime != tc.ch {
			t.Errorf("{%s} {%s}: rand_time %v and %v, want %v and %v", tc.conn, tc.child, c.RandTime, c.Children[0].RandTime, tc.ike, tc.ch)
		}
	}
}

// LoadDaemon needs no readable certificates or keys.
func TestLoadDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cygnet.yaml")
	writeFiles(t, filepath.Dir(path), map[string][]byte{"cygnet.yaml": []byte(`
daemon: {socket: ctl.sock, port: 1500}
connections:
  c:
    local: {certs: [unreadable.crt], key: unreadable.key}
    remote: {cacerts: [unreadable.crt]}
`)})
	d, err := LoadDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Socket != filepath.Join(filepath.Dir(path), "ctl.sock") || d.Port != 1500 || d.NATPort != 4500 {
		t.Errorf("LoadDaemon = %+v", d)
	}
	if _, err := Load(path); err == nil {
		t.Error("Load succeeded without the certificate files")
	}
	writeFiles(t, filepath.Dir(path), map[string][]byte{"cygnet.yaml": []byte("daemon: {dataplane: kernel}\n")})
	if _, err := LoadDaemon(path); err == nil || err.Error() != path+`:1: daemon.dataplane: expected one of userspace, xfrm, none, got "kernel"` {
		t.Errorf("LoadDaemon(bad) = %v", err)
	}
}
