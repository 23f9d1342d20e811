package interop

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// The engine side of the transcripts: Cygnet's sans-IO engine with a seeded
// random source and a fake clock, driven by commands and received
// datagrams, the same way when recording (against charon, over UDP) and
// when replaying (from the file).

// scenario is one recorded exchange.
type scenario struct {
	name      string
	initiator bool // Cygnet initiates (else strongSwan does and Cygnet answers)
	auth      string
	ike       string // IKE proposal
	children  []scenarioChild
	// cygnet and swan are the outer addresses (each scenario has its own
	// pair, so charon picks its connection by address).
	cygnet, swan netip.Addr
	// script is what happens, in order: "initiate CHILD", "create-child
	// CHILD", "rekey-child CHILD" and "delete" are engine commands;
	// "swan-initiate CHILD", "swan-rekey CHILD" and "swan-terminate" ask
	// charon (recording only: in the file they are just the datagrams that
	// follow). Each step waits for the event named after "=>" ("child-up
	// CHILD", "child-down CHILD", "deleted") reported after it.
	script []string
}

type scenarioChild struct {
	name                  string
	local, remote, esp    string
	swanLocal, swanRemote string
}

// transcriptPSK is the pre-shared key of the PSK transcripts.
const transcriptPSK = "cygnet interop transcript key, recorded with strongSwan"

var scenarios = []scenario{
	{
		// PSK with X25519; a second CHILD_SA by CREATE_CHILD_SA with its own
		// X25519 exchange (PFS); Cygnet deletes.
		name: "psk-x25519-initiator", initiator: true, auth: AuthPSK,
		ike: "aes256gcm16-prfsha256-x25519",
		children: []scenarioChild{
			{name: "net", local: "10.1.0.0/16", remote: "10.2.0.0/16", esp: "aes256gcm16"},
			{name: "pfs", local: "10.3.0.0/16", remote: "10.4.0.0/16", esp: "aes256gcm16-x25519"},
		},
		cygnet: netip.MustParseAddr("192.0.2.11"), swan: netip.MustParseAddr("192.0.2.21"),
		script: []string{"initiate net => child-up net", "create-child pfs => child-up pfs",
			"rekey-child pfs => child-down pfs", "delete => deleted"},
	},
	{
		// Ed25519 certificates made by pki (RFC 8420 signatures are
		// deterministic, unlike ECDSA's, whose randomness Go no longer
		// takes from the caller), ChaCha20-Poly1305, P-256 key exchange.
		name: "ed25519-initiator", initiator: true, auth: AuthEd25519,
		ike: "chacha20poly1305-prfsha256-ecp256",
		children: []scenarioChild{
			{name: "net", local: "10.5.0.0/16", remote: "10.6.0.0/16", esp: "chacha20poly1305"},
		},
		cygnet: netip.MustParseAddr("192.0.2.12"), swan: netip.MustParseAddr("192.0.2.22"),
		script: []string{"initiate net => child-up net", "delete => deleted"},
	},
	{
		// strongSwan initiates, Cygnet answers through its Responder;
		// AES-CBC with HMAC, MODP-2048; strongSwan rekeys the CHILD_SA,
		// then deletes the IKE SA.
		name: "psk-modp2048-responder", initiator: false, auth: AuthPSK,
		ike: "aes128-sha256-modp2048",
		children: []scenarioChild{
			{name: "net", local: "10.7.0.0/16", remote: "10.8.0.0/16", esp: "aes128-sha256"},
		},
		cygnet: netip.MustParseAddr("192.0.2.13"), swan: netip.MustParseAddr("192.0.2.23"),
		script: []string{"swan-initiate net => child-up net", "swan-rekey net => child-down net", "swan-terminate => deleted"},
	},
}

// transcriptDir holds the recorded transcripts and, in pki/, the Ed25519
// certificates they use (made by pki when first recorded).
const transcriptDir = "testdata/transcripts"

func (sc scenario) path() string { return filepath.Join(transcriptDir, sc.name+".transcript") }

// seed is the scenario's fixed random seed.
func (sc scenario) seed() []byte {
	s := sha256.Sum256([]byte("cygnet interop transcript " + sc.name))
	return s[:]
}

// engineConfig builds the engine's configuration of the scenario. Files
// come from transcriptDir/pki.
func (sc scenario) engineConfig() (*sa.Config, error) {
	ikeProps, err := algs.ParseProposals([]string{sc.ike}, wire.ProtoIKE)
	if err != nil {
		return nil, err
	}
	localID, err := auth.ParseIdentity("cygnet." + sc.name + ".test")
	if err != nil {
		return nil, err
	}
	remoteID, err := auth.ParseIdentity("swan." + sc.name + ".test")
	if err != nil {
		return nil, err
	}
	cfg := &sa.Config{
		Name:           sc.name,
		IKEProposals:   ikeProps,
		Local:          sa.LocalAuth{Method: sa.AuthPSK, ID: localID},
		Remote:         sa.RemoteAuth{Method: sa.AuthPSK, ID: remoteID},
		Fragmentation:  true,
		NATPort:        4500,
		RemoteNATPort:  4500,
		SendCertReq:    true,
		InitialContact: true,
	}
	if sc.auth == AuthPSK {
		cfg.PSK = func(local, remote auth.Identity) ([]byte, bool) { return []byte(transcriptPSK), true }
	} else {
		read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(transcriptDir, "pki", name)) }
		crt, err1 := read("cygnet.crt")
		key, err2 := read("cygnet.key")
		ca, err3 := read("ca.crt")
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("interop: transcript certificates: %v %v %v", err1, err2, err3)
		}
		cred, err := auth.LoadCredential([][]byte{crt}, key)
		if err != nil {
			return nil, err
		}
		roots, err := auth.LoadCertificates(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, c := range roots {
			pool.AddCert(c)
		}
		cfg.Local = sa.LocalAuth{Method: sa.AuthPubKey, ID: localID, Cred: cred}
		cfg.Remote = sa.RemoteAuth{Method: sa.AuthPubKey, ID: remoteID, Roots: pool, CACerts: roots}
	}
	for _, ch := range sc.children {
		esp, err := algs.ParseProposals([]string{ch.esp}, wire.ProtoESP)
		if err != nil {
			return nil, err
		}
		cfg.Children = append(cfg.Children, &sa.ChildConfig{
			Name:      ch.name,
			ReqID:     uint32(len(cfg.Children) + 1),
			LocalTS:   []sa.TrafficSelector{sa.PrefixTS(netip.MustParsePrefix(ch.local))},
			RemoteTS:  []sa.TrafficSelector{sa.PrefixTS(netip.MustParsePrefix(ch.remote))},
			Proposals: esp,
		})
	}
	return cfg, nil
}

// oneConfig is a ConfigSelector with one connection.
type oneConfig struct{ cfg *sa.Config }

func (o oneConfig) ForInit(local, remote netip.AddrPort) []*sa.Config { return []*sa.Config{o.cfg} }
func (o oneConfig) ForAuth(local, remote netip.AddrPort, peer auth.Identity, hint *auth.Identity, suite algs.Suite) (*sa.Config, error) {
	return o.cfg, nil
}

// engineHost runs the engine for one scenario: it owns the IKE SA (and the
// Responder when Cygnet answers), the fake clock, and what the engine
// produced and nobody consumed yet.
type engineHost struct {
	sc   scenario
	cfg  *sa.Config
	env  *sa.Env
	resp *sa.Responder
	ike  *sa.IKESA
	now  time.Time

	packets []sa.Packet
	events  []string
	// children maps each CHILD_SA name to the inbound SPI of its newest SA.
	children map[string]uint32
}

// chachaReader is a deterministic io.Reader.
type chachaReader struct{ c *rand.ChaCha8 }

func (r chachaReader) Read(p []byte) (int, error) { return r.c.Read(p) }

func newEngineHost(sc scenario, seed []byte, start time.Time) (*engineHost, error) {
	cfg, err := sc.engineConfig()
	if err != nil {
		return nil, err
	}
	if len(seed) != 32 {
		return nil, fmt.Errorf("interop: transcript seed of %d bytes, want 32", len(seed))
	}
	h := &engineHost{sc: sc, cfg: cfg, now: start, children: map[string]uint32{},
		env: &sa.Env{Rand: chachaReader{rand.NewChaCha8([32]byte(seed))}}}
	if sc.initiator {
		h.ike = sa.NewInitiator(h.env, cfg, netip.AddrPortFrom(sc.cygnet, 500), netip.AddrPortFrom(sc.swan, 500))
	} else {
		h.resp = sa.NewResponder(h.env, oneConfig{cfg}, sa.ResponderOptions{})
	}
	return h, nil
}

func (h *engineHost) tick() time.Time {
	h.now = h.now.Add(time.Millisecond)
	return h.now
}

func (h *engineHost) take(out sa.Output) {
	for _, ev := range out.Events {
		if up, ok := ev.(sa.ChildUp); ok {
			h.children[up.Child.Name] = up.Child.InSPI
		}
		h.events = append(h.events, eventString(ev))
	}
	h.packets = append(h.packets, out.Packets...)
}

// command runs an engine command of the script ("initiate net",
// "create-child pfs", "delete"); charon's commands do nothing here.
func (h *engineHost) command(text string) error {
	f := strings.Fields(text)
	now := h.tick()
	switch {
	case len(f) == 2 && f[0] == "initiate" && h.ike != nil:
		h.take(h.ike.Initiate(now, f[1]))
	case len(f) == 2 && f[0] == "create-child" && h.ike != nil:
		h.take(h.ike.CreateChild(now, f[1]))
	case len(f) == 2 && f[0] == "rekey-child" && h.ike != nil:
		h.take(h.ike.RekeyChild(now, h.children[f[1]]))
	case len(f) == 1 && f[0] == "delete" && h.ike != nil:
		h.take(h.ike.Delete(now))
	case len(f) >= 1 && strings.HasPrefix(f[0], "swan-"):
	default:
		return fmt.Errorf("interop: bad transcript command %q", text)
	}
	return nil
}

// receive hands the engine a datagram from remote to local (without the
// non-ESP marker).
func (h *engineHost) receive(remote, local netip.AddrPort, data []byte) error {
	now := h.tick()
	m, err := wire.Parse(data)
	if err != nil {
		return fmt.Errorf("interop: strongSwan's datagram does not parse: %w", err)
	}
	if h.ike == nil {
		ike, out := h.resp.HandleInit(now, m, local, remote)
		h.take(out)
		if ike == nil {
			return fmt.Errorf("interop: the Responder kept no IKE SA for %s", m.Exchange)
		}
		h.ike = ike
		return nil
	}
	h.take(h.ike.Handle(now, m, local, remote))
	return nil
}

func digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// eventString formats an event for a transcript: the SPIs, algorithms,
// selectors and a digest of the keys, which a replay must reproduce; no
// free-text reasons, which may change without the wire changing.
func eventString(ev sa.Event) string {
	switch e := ev.(type) {
	case sa.Established:
		s := e.SA
		return fmt.Sprintf("established spi_i=%016x spi_r=%016x proposal=%s local_id=%s remote_id=%s keys=%s",
			s.SPIi, s.SPIr, s.Proposal, s.LocalID, s.RemoteID, digest([]byte(e.KeyLog)))
	case sa.ChildUp:
		c := e.Child
		s := fmt.Sprintf("child-up %s mode=%s encap=%v spi_in=%08x spi_out=%08x suite=%s ts=%s===%s keys=%s",
			c.Name, c.Mode, c.Encap, c.InSPI, c.OutSPI, c.Suite, tsList(c.LocalTS), tsList(c.RemoteTS),
			digest(c.InEncr, c.InInteg, c.OutEncr, c.OutInteg))
		if e.Replaces != nil {
			s += fmt.Sprintf(" replaces=%08x", e.Replaces.InSPI)
		}
		if e.OutboundDeferred {
			s += " outbound=deferred"
		}
		return s
	case sa.ChildOutbound:
		return fmt.Sprintf("child-outbound %s spi_in=%08x", e.Child.Name, e.Child.InSPI)
	case sa.ChildDown:
		return fmt.Sprintf("child-down %s spi_in=%08x", e.Child.Name, e.Child.InSPI)
	case sa.ChildFailed:
		return fmt.Sprintf("child-failed %s", e.Name)
	case sa.Failed:
		return "failed"
	case sa.Deleted:
		return "deleted"
	case sa.NATDetected:
		return fmt.Sprintf("nat local=%v remote=%v", e.Local, e.Remote)
	}
	return fmt.Sprintf("%T", ev)
}

func tsList(ts []wire.TrafficSelector) string {
	var s []string
	for _, t := range ts {
		s = append(s, sa.TSString(t))
	}
	return strings.Join(s, ",")
}

// describeDatagram names an IKE datagram for a failure message.
func describeDatagram(b []byte) string {
	hd, err := wire.ParseHeader(b)
	if err != nil {
		return fmt.Sprintf("%d octets (%v)", len(b), err)
	}
	kind := "request"
	if hd.IsResponse() {
		kind = "response"
	}
	return fmt.Sprintf("%v %s message ID %d, SPIi %016x SPIr %016x, %d octets", hd.Exchange, kind, hd.MessageID, hd.SPIi, hd.SPIr, len(b))
}

// firstDiff returns the offset of the first differing octet, or -1.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// replayTranscript feeds tr to a fresh engine and returns the first
// difference between what it does and what the transcript recorded.
func replayTranscript(sc scenario, tr *Transcript) error {
	h, err := newEngineHost(sc, tr.Seed, tr.Start)
	if err != nil {
		return err
	}
	outs, ins := 0, 0
	for i, r := range tr.Records {
		switch r.Kind {
		case RecCmd:
			if err := h.command(r.Text); err != nil {
				return err
			}
		case RecIn:
			ins++
			if err := h.receive(r.From, r.To, r.Data); err != nil {
				return fmt.Errorf("record %d (datagram %d from strongSwan, %s): %w", i+1, ins, describeDatagram(r.Data), err)
			}
		case RecOut:
			outs++
			if len(h.packets) == 0 {
				return fmt.Errorf("record %d: the engine did not send datagram %d (%s) after %d recorded records", i+1, outs, describeDatagram(r.Data), i)
			}
			p := h.packets[0]
			h.packets = h.packets[1:]
			if p.Local != r.From || p.Remote != r.To {
				return fmt.Errorf("record %d: datagram %d goes %v -> %v, recorded %v -> %v", i+1, outs, p.Local, p.Remote, r.From, r.To)
			}
			if !bytes.Equal(p.Data, r.Data) {
				return fmt.Errorf("record %d: datagram %d differs from the recording at octet %d: sent %s, recorded %s",
					i+1, outs, firstDiff(p.Data, r.Data), describeDatagram(p.Data), describeDatagram(r.Data))
			}
		case RecEvent:
			if len(h.events) == 0 {
				return fmt.Errorf("record %d: the engine did not report %q", i+1, r.Text)
			}
			ev := h.events[0]
			h.events = h.events[1:]
			if ev != r.Text {
				return fmt.Errorf("record %d: event\n\t%s\nrecorded\n\t%s", i+1, ev, r.Text)
			}
		}
	}
	if len(h.packets) > 0 || len(h.events) > 0 {
		return fmt.Errorf("after the transcript the engine sent %d more datagrams and reported %d more events (first: %v)", len(h.packets), len(h.events), h.events)
	}
	if outs == 0 || ins == 0 {
		return fmt.Errorf("transcript has %d datagrams out and %d in", outs, ins)
	}
	return nil
}
