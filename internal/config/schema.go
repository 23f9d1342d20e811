package config

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// This file is the schema: which keys exist where, their defaults and their
// checks. docs/config.md describes the same for users; keep them in step.

var topLevelKeys = []string{"daemon", "secrets", "connections"}

func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{}
	o := d.object(value{node: deref(root), keyLine: 1}, topLevelKeys...)
	if o == nil {
		o = &object{fields: map[string]value{}}
	}
	// Sections are decoded in this order whatever their order in the file:
	// connections need the daemon's port and the secrets.
	cfg.Daemon = d.daemon(o.get("daemon"))
	var secretsOK bool
	cfg.Secrets, secretsOK = d.secrets(o.get("secrets"))
	for _, e := range d.entries(o.get("connections"), "connection") {
		if c := d.connection(e, cfg, secretsOK); c != nil {
			cfg.Connections = append(cfg.Connections, c)
		}
	}
	return cfg
}

func (d *decoder) daemon(v value) Daemon {
	dm := Daemon{
		Port:      500,
		NATPort:   4500,
		Socket:    DefaultSocket,
		Dataplane: "userspace",
		TUN:       "cygnet0",
		Log:       LogSettings{Level: slog.LevelInfo, Format: "text"},
	}
	o := d.object(v, "listen", "port", "nat_port", "socket", "dataplane", "tun", "keylog", "metrics", "pprof", "log")
	if o == nil {
		return dm
	}
	for _, it := range d.list(o.get("listen")) {
		if a, ok := d.addr(it); ok {
			dm.Listen = append(dm.Listen, a)
		}
	}
	dm.Port = d.intIn(o.get("port"), dm.Port, 1, 65535)
	dm.NATPort = d.intIn(o.get("nat_port"), dm.NATPort, 1, 65535)
	if dm.Port == dm.NATPort {
		// RFC 3948 2.2 / RFC 7296 2.23: the NAT-T port tells ESP-in-UDP and
		// IKE-with-marker apart from plain IKE, so it needs its own port.
		d.errAt(o.get("nat_port"), "must differ from port (%d)", dm.Port)
	}
	if s, ok := d.str(o.get("socket")); ok {
		if s == "" {
			d.errAt(o.get("socket"), "must not be empty")
		} else {
			dm.Socket = d.absPath(s)
		}
	}
	dm.Dataplane = d.enum(o.get("dataplane"), dm.Dataplane, []string{"userspace", "xfrm", "none"}, nil)
	if s, ok := d.str(o.get("tun")); ok {
		// Linux interface names: IFNAMSIZ (16) including the NUL.
		if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
			d.errAt(o.get("tun"), "invalid interface name %q (1 to 15 characters, no '/', ':' or spaces)", s)
		} else {
			dm.TUN = s
		}
	}
	if s, ok := d.str(o.get("keylog")); ok && s != "" {
		dm.Keylog = d.absPath(s)
	}
	dm.Metrics = d.hostPort(o.get("metrics"), "127.0.0.1:9100 or :9100")
	dm.Pprof = d.hostPort(o.get("pprof"), "127.0.0.1:6060")
	if lo := d.object(o.get("log"), "level", "format"); lo != nil {
		switch d.enum(lo.get("level"), "info", []string{"debug", "info", "warn", "error"}, map[string]string{"warning": "warn"}) {
		case "debug":
			dm.Log.Level = slog.LevelDebug
		case "info":
			dm.Log.Level = slog.LevelInfo
		case "warn":
			dm.Log.Level = slog.LevelWarn
		case "error":
			dm.Log.Level = slog.LevelError
		}
		dm.Log.Format = d.enum(lo.get("format"), "text", []string{"text", "json"}, nil)
	}
	return dm
}

// hostPort decodes an optional TCP listen address; "" (or absent) is off.
func (d *decoder) hostPort(v value, example string) string {
	s, ok := d.str(v)
	if !ok || s == "" {
		return ""
	}
	if !validHostPort(s) {
		d.errAt(v, "expected host:port (e.g. %s), got %q", example, s)
		return ""
	}
	return s
}

func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n >= 1 && n <= 65535
}

// CheckHostPort checks a listen address given outside the file (such as
// $CYGNET_PPROF) as the daemon section's metrics and pprof are checked.
func CheckHostPort(s string) error {
	if !validHostPort(s) {
		return fmt.Errorf("config: expected host:port (e.g. 127.0.0.1:6060), got %q", s)
	}
	return nil
}

// secrets decodes the secrets list; ok is false if any secret had an error,
// so that "no secret for these ids" is not reported on top of it.
func (d *decoder) secrets(v value) (out []Secret, ok bool) {
	nerr := len(d.errs)
	if v.present() && v.node.Kind != yaml.SequenceNode {
		d.errAt(v, "expected a list of secrets, got %s", kindName(v.node))
		return nil, false
	}
	for _, it := range d.list(v) {
		o := d.object(it, "ids", "psk")
		if o == nil {
			continue
		}
		var s Secret
		for _, idv := range d.list(o.get("ids")) {
			if id, ok := d.identity(idv); ok {
				s.IDs = append(s.IDs, id)
			}
		}
		if raw, ok := d.required(o.get("psk"), ""); ok {
			psk, err := decodePSK(raw)
			if err != nil {
				d.errAt(o.get("psk"), "%v", err) // the error never contains the secret
			}
			s.PSK = psk
		}
		out = append(out, s)
	}
	return out, len(d.errs) == nerr
}

func (d *decoder) identity(v value) (auth.Identity, bool) {
	s, ok := d.str(v)
	if !ok {
		return auth.Identity{}, false
	}
	id, err := auth.ParseIdentity(s)
	if err != nil {
		d.errAt(v, "%s", stripPrefix(err))
		return auth.Identity{}, false
	}
	return id, true
}

// validName reports whether s can name a connection or child: it is used
// on the command line and in status output, so keep it to a safe alphabet.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

var actionAliases = map[string]string{"clear": "none", "restart": "start", "route": "trap"}

func (d *decoder) connection(e entry, cfg *Config, secretsOK bool) *Connection {
	if !validName(e.name) {
		d.errorf(e.keyLine, e.parent, "invalid connection name %q: use up to 64 letters, digits, '.', '-' and '_'", e.name)
	}
	o := d.object(e.val,
		"local_addrs", "remote_addrs", "remote_port", "proposals", "encap", "fragmentation", "fragment_size",
		"rekey_time", "rand_time", "reauth_time", "dpd_delay", "dpd_timeout", "keyingtries", "unique", "mobike",
		"if_id", "local", "remote", "children")
	if o == nil {
		return nil
	}
	c := &Connection{Name: e.name}

	anyLocal := false
	for _, it := range d.list(o.get("local_addrs")) {
		a, isAny, ok := d.addrOrAny(it)
		switch {
		case isAny:
			anyLocal = true
		case ok:
			c.LocalAddrs = append(c.LocalAddrs, a)
		}
	}
	if anyLocal && len(c.LocalAddrs) > 0 {
		d.errAt(o.get("local_addrs"), "%%any cannot be combined with addresses (leave local_addrs out to use any)")
	}
	remote := o.get("remote_addrs")
	c.RemoteAny = !remote.present() // strongSwan's default remote_addrs is %any
	for _, it := range d.list(remote) {
		a, isAny, ok := d.addrOrAny(it)
		switch {
		case isAny:
			c.RemoteAny = true
		case ok:
			c.RemoteAddrs = append(c.RemoteAddrs, a)
		}
	}
	if remote.present() && !c.RemoteAny && len(c.RemoteAddrs) == 0 {
		d.errAt(remote, "needs at least one address or %%any")
	}
	c.RemotePort = d.intIn(o.get("remote_port"), cfg.Daemon.Port, 1, 65535)

	c.Proposals = d.proposals(o.get("proposals"), wire.ProtoIKE)
	c.Encap = d.boolean(o.get("encap"), false)
	c.Fragmentation = d.boolean(o.get("fragmentation"), true)
	// RFC 7383 2.5.1 sizes fragments from the path MTU; below 576 (the IPv4
	// datagram size every host accepts, RFC 791) nothing useful fits.
	c.FragmentSize = d.intIn(o.get("fragment_size"), 1280, 576, 65535)
	c.RekeyTime = d.duration(o.get("rekey_time"), 4*time.Hour)
	// strongSwan's default: over_time, a tenth of rekey_time (at most half
	// of it, which a tenth always is).
	c.RandTime = d.randTime(o.get("rand_time"), c.RekeyTime, c.RekeyTime/10)
	c.ReauthTime = d.duration(o.get("reauth_time"), 0)
	c.DPDDelay = d.duration(o.get("dpd_delay"), 30*time.Second)
	c.DPDTimeout = d.duration(o.get("dpd_timeout"), 150*time.Second)
	c.Keyingtries = d.intIn(o.get("keyingtries"), 1, 0, 1<<20)
	c.Unique = d.enum(o.get("unique"), "no", []string{"no", "never", "replace", "keep"}, nil)
	c.Mobike = d.boolean(o.get("mobike"), true)
	if v := o.get("if_id"); v.present() {
		if n, ok := d.uint64(v); ok && n > math.MaxUint32 {
			d.errAt(v, "expected an integer from 0 to %d, got %d", uint32(math.MaxUint32), n)
		} else if ok {
			c.IfID = uint32(n)
		}
		if c.IfID != 0 && cfg.Daemon.Dataplane != "xfrm" {
			// XFRM interfaces are the kernel's; strongSwan's if_id_in/out.
			d.errAt(v, "needs daemon.dataplane: xfrm (route-based mode uses the kernel's XFRM interfaces), not %s", cfg.Daemon.Dataplane)
		}
	}

	localAuth, localIDOK := d.localAuth(o.get("local"), c)
	remoteAuth := d.remoteAuth(o.get("remote"), c)
	if secretsOK && localIDOK {
		switch {
		case c.Local.Auth == "psk":
			d.checkPSK(localAuth, c, cfg)
		case c.Remote.Auth == "psk":
			d.checkPSK(remoteAuth, c, cfg)
		}
	}

	for _, ce := range d.entries(o.get("children"), "child") {
		if ch := d.child(ce, c); ch != nil {
			c.Children = append(c.Children, ch)
		}
	}
	return c
}

// proposals parses a proposal list. Without the key, and for the keyword
// "default" in it, it gives algs.DefaultProposals.
func (d *decoder) proposals(v value, proto wire.ProtocolID) []algs.Proposal {
	if !v.present() {
		return algs.DefaultProposals(proto)
	}
	items := d.list(v)
	if len(items) == 0 && v.node.Kind == yaml.SequenceNode {
		d.errAt(v, "needs at least one proposal (leave the key out for the defaults)")
	}
	var out []algs.Proposal
	for _, it := range items {
		s, ok := d.str(it)
		if !ok {
			continue
		}
		if strings.TrimSpace(s) == "default" {
			out = append(out, algs.DefaultProposals(proto)...)
			continue
		}
		p, err := algs.ParseProposal(s, proto)
		if err != nil {
			// The key path and line say which proposal; algs repeats it.
			msg, _ := strings.CutPrefix(stripPrefix(err), fmt.Sprintf("proposal %q: ", strings.TrimSpace(s)))
			d.errAt(it, "%s", msg)
			continue
		}
		out = append(out, p)
	}
	return out
}

var authMethods = []string{"pubkey", "psk"}

// localAuth decodes the local section. It returns the auth value, where a
// missing secret is reported, and whether c.Local.ID is set.
func (d *decoder) localAuth(v value, c *Connection) (authValue value, idOK bool) {
	o := d.object(v, "auth", "id", "certs", "key")
	if o == nil {
		return v, false
	}
	la := &c.Local
	la.Auth = d.enum(o.get("auth"), "pubkey", authMethods, nil)
	idv := o.get("id")
	if idv.present() {
		if id, ok := d.identity(idv); ok {
			if id.HasWildcards() {
				d.errAt(idv, "our own identity cannot be a pattern (%%any or *)")
			} else {
				la.ID, idOK = id, true
			}
		}
	}
	switch la.Auth {
	case "psk":
		if !idv.present() {
			d.errorf(o.line, o.path, "missing id (required with auth: psk)")
		}
		for _, k := range []string{"certs", "key"} {
			if v := o.get(k); v.present() {
				d.errAt(v, "only used with auth: pubkey")
			}
		}
	case "pubkey":
		d.loadCredential(o, la)
		if !idv.present() && la.Cred != nil {
			// strongSwan's default: the certificate's subject DN.
			la.ID, idOK = la.Cred.DefaultIdentity(), true
		}
	}
	return firstPresent(o.get("auth"), v), idOK
}

func (d *decoder) loadCredential(o *object, la *LocalAuth) {
	certs := d.list(o.get("certs"))
	if !o.get("certs").present() {
		d.errorf(o.line, o.path, "missing certs (required with auth: pubkey)")
	}
	if !o.get("key").present() {
		d.errorf(o.line, o.path, "missing key (required with auth: pubkey)")
	}
	var pems [][]byte
	ok := len(certs) > 0
	for _, cv := range certs {
		path, data, good := d.readPath(cv)
		if !good {
			ok = false
			continue
		}
		if _, err := auth.LoadCertificates(data); err != nil {
			d.errAt(cv, "%s: %s", path, stripPrefix(err))
			ok = false
			continue
		}
		la.CertPaths = append(la.CertPaths, path)
		pems = append(pems, data)
	}
	keyPath, key, good := d.readPath(o.get("key"))
	if !good || !ok {
		return
	}
	la.KeyPath = keyPath
	cred, err := auth.LoadCredential(pems, key)
	if err != nil {
		d.errAt(o.get("key"), "%s: %s", keyPath, stripPrefix(err))
		return
	}
	la.Cred = cred
}

// remoteAuth decodes the remote section; it returns the auth value, where a
// missing secret is reported.
func (d *decoder) remoteAuth(v value, c *Connection) value {
	o := d.object(v, "auth", "id", "cacerts")
	if o == nil {
		return v
	}
	ra := &c.Remote
	ra.Auth = d.enum(o.get("auth"), "pubkey", authMethods, nil)
	ra.ID, _ = auth.ParseIdentity("%any")
	if idv := o.get("id"); idv.present() {
		if id, ok := d.identity(idv); ok {
			ra.ID = id
		}
	}
	cav := o.get("cacerts")
	switch ra.Auth {
	case "psk":
		if cav.present() {
			d.errAt(cav, "only used with auth: pubkey")
		}
	case "pubkey":
		if !cav.present() {
			d.errorf(o.line, o.path, "missing cacerts (required with auth: pubkey)")
			break
		}
		for _, it := range d.list(cav) {
			path, data, ok := d.readPath(it)
			if !ok {
				continue
			}
			certs, err := auth.LoadCertificates(data)
			if err != nil {
				d.errAt(it, "%s: %s", path, stripPrefix(err))
				continue
			}
			ra.CAPaths = append(ra.CAPaths, path)
			ra.CACerts = append(ra.CACerts, certs...)
		}
		if len(ra.CACerts) > 0 {
			ra.Roots = x509.NewCertPool()
			for _, ca := range ra.CACerts {
				ra.Roots.AddCert(ca)
			}
		}
	}
	return firstPresent(o.get("auth"), v)
}

// checkPSK reports a psk connection that no secret covers. With a %any
// or pattern remote identity the secret is looked up per peer at run time
// instead.
func (d *decoder) checkPSK(at value, c *Connection, cfg *Config) {
	if c.Remote.ID.HasWildcards() {
		return
	}
	if _, ok := cfg.PSK(c.Local.ID, c.Remote.ID); !ok {
		d.errAt(at, "no secret for ids %q and %q (add one to secrets)", c.Local.ID.String(), c.Remote.ID.String())
	}
}

// readPath reads the file a path value names, relative to the configuration's
// directory.
func (d *decoder) readPath(v value) (path string, data []byte, ok bool) {
	s, ok := d.str(v)
	if !ok {
		return "", nil, false
	}
	if s == "" {
		d.errAt(v, "empty path")
		return "", nil, false
	}
	path = d.absPath(s)
	r, cached := d.files[path]
	if !cached {
		r.data, r.err = d.readFile(path)
		d.files[path] = r
	}
	if r.err != nil {
		msg := r.err.Error()
		if strings.ContainsAny(msg, "\n\r") {
			msg = strconv.Quote(msg) // one line per error, even for odd file names
		}
		d.errAt(v, "%s", msg)
		return path, nil, false
	}
	return path, r.data, true
}

func (d *decoder) absPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

func (d *decoder) child(e entry, c *Connection) *Child {
	if !validName(e.name) {
		d.errorf(e.keyLine, e.parent, "invalid child name %q: use up to 64 letters, digits, '.', '-' and '_'", e.name)
	}
	o := d.object(e.val,
		"local_ts", "remote_ts", "esp_proposals", "mode", "start_action", "close_action", "dpd_action",
		"rekey_time", "rand_time", "life_time", "rekey_bytes", "life_bytes", "rekey_packets", "life_packets", "replay_window")
	if o == nil {
		return nil
	}
	ch := &Child{Name: e.name}
	ch.LocalTS = d.trafficSelectors(o.get("local_ts"))
	ch.RemoteTS = d.trafficSelectors(o.get("remote_ts"))
	ch.ESPProposals = d.proposals(o.get("esp_proposals"), wire.ProtoESP)
	ch.Mode = d.enum(o.get("mode"), "tunnel", []string{"tunnel", "transport"}, nil)

	for _, a := range []struct {
		key string
		dst *string
	}{{"start_action", &ch.StartAction}, {"close_action", &ch.CloseAction}, {"dpd_action", &ch.DPDAction}} {
		v := o.get(a.key)
		*a.dst = d.enum(v, "none", []string{"none", "start", "trap"}, actionAliases)
		if *a.dst != "none" && len(c.RemoteAddrs) == 0 {
			d.errAt(v, "%s initiates, but the connection has no remote address to initiate to (remote_addrs)", *a.dst)
		}
	}

	ch.RekeyTime = d.duration(o.get("rekey_time"), time.Hour)
	ch.LifeTime = ch.RekeyTime + min(ch.RekeyTime/10, math.MaxInt64-ch.RekeyTime) // +10%, saturating
	if v := o.get("life_time"); v.present() {
		ch.LifeTime = d.duration(v, ch.LifeTime)
	}
	if ch.LifeTime != 0 && ch.RekeyTime > ch.LifeTime {
		d.errAt(firstPresent(o.get("rekey_time"), o.get("life_time")),
			"rekey_time (%v) exceeds life_time (%v): the CHILD_SA would expire before it is rekeyed", ch.RekeyTime, ch.LifeTime)
	}
	// A tenth of rekey_time: strongSwan's default (life_time - rekey_time)
	// with the default life_time. Not the gap to an explicit life_time:
	// one set far above rekey_time, to keep a CHILD_SA from expiring,
	// would then make its rekeys come at almost any moment.
	ch.RandTime = d.randTime(o.get("rand_time"), ch.RekeyTime, ch.RekeyTime/10)
	ch.RekeyBytes, ch.LifeBytes = d.volume(o, "rekey_bytes", "life_bytes")
	ch.RekeyPackets, ch.LifePackets = d.volume(o, "rekey_packets", "life_packets")

	// RFC 4303 3.4.3: a receiver MUST support a window of at least 32 if it
	// checks for replay at all; 0 turns the check off.
	rw := o.get("replay_window")
	ch.ReplayWindow = d.intIn(rw, 1024, 0, 1<<16)
	if ch.ReplayWindow > 0 && ch.ReplayWindow < 32 {
		d.errAt(rw, "must be 0 (off) or at least 32 (RFC 4303 3.4.3)")
	}
	return ch
}

// randTime decodes a rand_time: the largest random amount taken off
// rekey for each rekey (RFC 7296 2.8.1: jitter, so that both ends do not
// rekey at once), def if absent; 0 turns the jitter off. It must be less
// than rekey, or a rekey could be due at once; with rekey 0 (never) it does
// nothing.
func (d *decoder) randTime(v value, rekey, def time.Duration) time.Duration {
	if !v.present() {
		return def
	}
	r := d.duration(v, def)
	if rekey > 0 && r >= rekey {
		d.errAt(v, "rand_time (%v) must be less than rekey_time (%v): it is the largest random amount taken off rekey_time", r, rekey)
		return def
	}
	return r
}

// volume decodes a rekey/life pair of counters; the life limit defaults to
// the rekey limit plus 10%, as strongSwan's does.
func (d *decoder) volume(o *object, rekeyKey, lifeKey string) (rekey, life uint64) {
	rekey, _ = d.uint64(o.get(rekeyKey))
	life = rekey + min(rekey/10, math.MaxUint64-rekey) // +10%, saturating
	if n, ok := d.uint64(o.get(lifeKey)); ok {
		life = n
	}
	if life != 0 && rekey > life {
		d.errAt(firstPresent(o.get(rekeyKey), o.get(lifeKey)), "%s (%d) exceeds %s (%d)", rekeyKey, rekey, lifeKey, life)
	}
	return rekey, life
}

func firstPresent(vs ...value) value {
	for _, v := range vs {
		if v.present() {
			return v
		}
	}
	return vs[0]
}

func (d *decoder) trafficSelectors(v value) []TrafficSelector {
	if !v.present() {
		return []TrafficSelector{{Dynamic: true, EndPort: 65535}}
	}
	items := d.list(v)
	if len(items) == 0 && v.node.Kind == yaml.SequenceNode {
		d.errAt(v, "needs at least one traffic selector (leave the key out for dynamic)")
	}
	var out []TrafficSelector
	for _, it := range items {
		s, ok := d.str(it)
		if !ok {
			continue
		}
		ts, err := ParseTrafficSelector(s)
		if err != nil {
			d.errAt(it, "%s", strings.TrimPrefix(err.Error(), "config: "))
			continue
		}
		out = append(out, ts)
	}
	return out
}
