// Package config reads Cygnet's YAML configuration file (CONTRACT.md, "Config
// file (YAML)"; every key is described in docs/config.md) into immutable,
// validated values.
//
// Names follow strongSwan's swanctl.conf where a concept is the same. Load and
// Parse report every problem they find, each as `file:line: key: message`,
// and they read the certificate and key files the configuration names, so a
// Config that loads is ready to use: its proposals are parsed, its
// credentials loaded and matched, and every pre-shared-key connection has a
// secret.
//
// The values a Config holds must not be modified; reload builds a new Config
// and compares connections with Connection.Equal.
package config

import (
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/cygnet/cygnet.yaml"

// DefaultSocket is the control socket's default path.
const DefaultSocket = "/run/cygnet/cygnet.sock"

// Config is a loaded configuration.
type Config struct {
	Path        string // the file it was read from, as given to Load or Parse
	Daemon      Daemon
	Secrets     []Secret
	Connections []*Connection // in file order
}

// Daemon holds the daemon-wide settings (the `daemon` section).
type Daemon struct {
	Listen    []netip.Addr // addresses to bind; empty: all
	Port      int          // IKE port (500)
	NATPort   int          // NAT-T port (4500)
	Socket    string       // control socket path (DefaultSocket)
	Dataplane string       // "userspace" (default), "xfrm" or "none"
	TUN       string       // TUN device of the userspace data plane ("cygnet0")
	Keylog    string       // directory for Wireshark key tables; "": off
	Metrics   string       // host:port of the Prometheus endpoint; "": off
	// Pprof is the host:port of Go's profiling endpoint (net/http/pprof,
	// under /debug/pprof/); "": off, the default. It shows the daemon's
	// internals to whoever reaches it: bind it to a loopback address.
	Pprof string
	Log   LogSettings
}

// LogSettings configures the daemon's logger.
type LogSettings struct {
	Level  slog.Level // debug, info (default), warn, error
	Format string     // "text" (default) or "json"
}

// Connection is an IKE connection: how to reach and authenticate a peer, and
// the CHILD_SAs to negotiate with it.
type Connection struct {
	Name string

	LocalAddrs  []netip.Addr // empty: any local address
	RemoteAddrs []netip.Addr // addresses to initiate to (and accept from)
	RemoteAny   bool         // "%any" in remote_addrs, or remote_addrs omitted: accept any peer address (responder)
	RemotePort  int          // port to initiate to; default: Daemon.Port

	Proposals     []algs.Proposal // IKE proposals in preference order
	Encap         bool            // force UDP encapsulation of ESP
	Fragmentation bool            // RFC 7383 IKE fragmentation (default true)
	FragmentSize  int             // largest IKE datagram we send, in bytes (1280)

	RekeyTime time.Duration // IKE SA rekey interval (4h); 0: never
	// RandTime is the largest random amount taken off RekeyTime for each
	// rekey (strongSwan's rand_time; RFC 7296 2.8.1), so that both ends do
	// not start at once: default RekeyTime/10; 0: no jitter. Less than
	// RekeyTime.
	RandTime    time.Duration
	ReauthTime  time.Duration // reauthentication interval (0: never)
	DPDDelay    time.Duration // liveness check interval (30s); 0: off
	DPDTimeout  time.Duration // declare the peer dead after this long without an answer (150s)
	Keyingtries int           // initiation attempts before giving up (1); 0: forever
	Unique      string        // strongSwan's uniqueness policy: "no" (default), "never", "replace", "keep"
	Mobike      bool          // RFC 4555 MOBIKE (default true; not implemented yet)
	// IfID puts the connection's CHILD_SAs in route-based mode: their
	// kernel states and policies carry this XFRM interface ID (if_id) and
	// apply only to traffic routed through the XFRM interface with it.
	// 0 (default): policy-based. Only with daemon.dataplane xfrm.
	IfID uint32

	Local    LocalAuth
	Remote   RemoteAuth
	Children []*Child // in file order
}

// LocalAuth is how we authenticate to the peer.
type LocalAuth struct {
	Auth      string           // "pubkey" or "psk"
	ID        auth.Identity    // our IKE identity
	Cred      *auth.Credential // certificate chain and key; nil unless Auth is "pubkey"
	CertPaths []string         // absolute paths Cred.Chain was read from
	KeyPath   string           // absolute path of Cred.Key
}

// RemoteAuth is how the peer must authenticate to us.
type RemoteAuth struct {
	Auth    string              // "pubkey" or "psk"
	ID      auth.Identity       // identity the peer must prove; may be %any
	CACerts []*x509.Certificate // trust anchors for the peer's certificate (pubkey)
	CAPaths []string            // absolute paths CACerts were read from
	Roots   *x509.CertPool      // CACerts as a pool for x509.VerifyOptions; nil unless Auth is "pubkey"
}

// Child is a CHILD_SA configuration.
type Child struct {
	Name string

	LocalTS, RemoteTS []TrafficSelector // default: [dynamic]
	ESPProposals      []algs.Proposal   // in preference order

	Mode        string // "tunnel" (default) or "transport"
	StartAction string // "none" (default), "start" (initiate at load) or "trap" (on first packet)
	CloseAction string // what to do when the peer closes the CHILD_SA: "none" (default), "start", "trap"
	DPDAction   string // what to do when DPD declares the peer dead: "none" (default), "start", "trap"

	RekeyTime time.Duration // 1h; 0: never
	// RandTime is the largest random amount taken off RekeyTime (strongSwan's
	// rand_time): default RekeyTime/10; 0: no jitter. Less than RekeyTime.
	RandTime     time.Duration
	LifeTime     time.Duration // hard lifetime; default RekeyTime + 10%; 0: none
	RekeyBytes   uint64        // 0: off
	LifeBytes    uint64        // default RekeyBytes + 10%; 0: off
	RekeyPackets uint64        // 0: off
	LifePackets  uint64        // default RekeyPackets + 10%; 0: off
	ReplayWindow int           // anti-replay window in packets (1024); 0: off
}

// Connection returns the connection called name, or nil.
func (c *Config) Connection(name string) *Connection {
	for _, conn := range c.Connections {
		if conn.Name == name {
			return conn
		}
	}
	return nil
}

// Child returns the child called name, or nil.
func (c *Connection) Child(name string) *Child {
	for _, ch := range c.Children {
		if ch.Name == name {
			return ch
		}
	}
	return nil
}

// maxFileSize bounds certificate, key and configuration files: they are
// small, and the limit keeps a misconfigured path (a device, a log file) from
// eating memory.
const maxFileSize = 1 << 20

// Load reads and parses the configuration file at path. Relative paths in
// it (certificates, keys, CA certificates, socket, keylog) are relative to
// the file's directory.
func Load(path string) (*Config, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses a configuration. path names the file in errors and anchors
// relative paths; the certificate and key files the configuration names are
// read from the file system.
func Parse(data []byte, path string) (*Config, error) {
	return parse(data, path, readRegular)
}

func parse(data []byte, path string, readFile func(string) ([]byte, error)) (*Config, error) {
	d := newDecoder(path, readFile)
	cfg := d.config(d.parseYAML(data))
	if err := d.err(); err != nil {
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

// LoadDaemon reads only the daemon section of the configuration file at
// path, checking it as Load does but reading no certificate or key: the
// command-line client needs the socket path and may not be allowed to read
// private keys.
func LoadDaemon(path string) (Daemon, error) {
	data, err := readRegular(path)
	if err != nil {
		return Daemon{}, fmt.Errorf("config: %w", err)
	}
	d := newDecoder(path, nil)
	o := d.object(value{node: deref(d.parseYAML(data)), keyLine: 1}, topLevelKeys...)
	var dm Daemon
	if o != nil {
		dm = d.daemon(o.get("daemon"))
	}
	if err := d.err(); err != nil {
		return Daemon{}, err
	}
	return dm, nil
}

func newDecoder(path string, readFile func(string) ([]byte, error)) *decoder {
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	d := &decoder{file: path, dir: dir, readFile: readFile, files: map[string]fileResult{}}
	if path == "" {
		d.file = "<config>"
	}
	return d
}

// readRegular reads a regular file of at most maxFileSize bytes.
func readRegular(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}
