package interop

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// A Transcript is an exchange between Cygnet's engine and strongSwan as it
// happened, in order: the commands given to the engine, every datagram it
// sent and received, and the events it reported. Replaying it — the same
// commands and received datagrams, fed to a fresh engine with the same seed
// and clock — must reproduce every sent datagram byte for byte and every
// event (which carry SPIs and digests of the keys), so that a change to
// what Cygnet puts on the wire shows up without strongSwan.
//
// The file is text, one record per line, '#' starts a comment:
//
//	name psk-x25519
//	seed 0123...                       the engine's random source (hex)
//	start 2026-11-27T08:00:00Z         the fake clock's start; each command and datagram in advances it 1 ms
//	cmd initiate net                   a command to the engine
//	out 192.0.2.1:500 192.0.2.2:500 <hex>   a datagram the engine sent (local, remote; no non-ESP marker)
//	in 192.0.2.2:500 192.0.2.1:500 <hex>    a datagram strongSwan sent (remote, local)
//	event child-up name=net ...        an event, as eventString formats it
type Transcript struct {
	Name    string
	Seed    []byte
	Start   time.Time
	Records []Record
}

// RecordKind is the kind of a transcript line.
type RecordKind uint8

const (
	RecCmd RecordKind = iota + 1
	RecOut
	RecIn
	RecEvent
)

var recordWords = map[RecordKind]string{RecCmd: "cmd", RecOut: "out", RecIn: "in", RecEvent: "event"}

// Record is one step of a transcript. For RecOut, From is the engine's
// address and To strongSwan's; for RecIn the other way round.
type Record struct {
	Kind     RecordKind
	Text     string // RecCmd: the command and its arguments; RecEvent: the event
	From, To netip.AddrPort
	Data     []byte // RecOut, RecIn
}

// maxTranscriptLine bounds one line (a datagram of at most 64 KiB in hex).
const maxTranscriptLine = 256 << 10

// ParseTranscript decodes a transcript file.
func ParseTranscript(b []byte) (*Transcript, error) {
	tr := &Transcript{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxTranscriptLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		fail := func(format string, args ...any) error {
			return fmt.Errorf("interop: transcript line %d: %s", n, fmt.Sprintf(format, args...))
		}
		switch word {
		case "name":
			tr.Name = rest
		case "seed":
			s, err := hex.DecodeString(rest)
			if err != nil || len(s) == 0 {
				return nil, fail("bad seed")
			}
			tr.Seed = s
		case "start":
			t, err := time.Parse(time.RFC3339Nano, rest)
			if err != nil {
				return nil, fail("bad start time: %v", err)
			}
			tr.Start = t
		case "cmd", "event":
			if rest == "" {
				return nil, fail("empty %s", word)
			}
			kind := RecCmd
			if word == "event" {
				kind = RecEvent
			}
			tr.Records = append(tr.Records, Record{Kind: kind, Text: rest})
		case "out", "in":
			f := strings.Fields(rest)
			if len(f) != 3 {
				return nil, fail("%s wants: FROM TO HEX", word)
			}
			from, err1 := netip.ParseAddrPort(f[0])
			to, err2 := netip.ParseAddrPort(f[1])
			data, err3 := hex.DecodeString(f[2])
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fail("%v", err)
			}
			kind := RecOut
			if word == "in" {
				kind = RecIn
			}
			tr.Records = append(tr.Records, Record{Kind: kind, From: from, To: to, Data: data})
		default:
			return nil, fail("unknown record %q", word)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("interop: transcript: %w", err)
	}
	switch {
	case tr.Name == "":
		return nil, errors.New("interop: transcript has no name")
	case tr.Seed == nil:
		return nil, errors.New("interop: transcript has no seed")
	case tr.Start.IsZero():
		return nil, errors.New("interop: transcript has no start time")
	}
	return tr, nil
}

// Marshal encodes the transcript; ParseTranscript(tr.Marshal(header))
// returns an equal transcript. header lines are written as comments first.
func (tr *Transcript) Marshal(header ...string) []byte {
	var b bytes.Buffer
	for _, h := range header {
		for _, l := range strings.Split(h, "\n") {
			b.WriteString("# " + l + "\n")
		}
	}
	fmt.Fprintf(&b, "name %s\nseed %x\nstart %s\n", tr.Name, tr.Seed, tr.Start.UTC().Format(time.RFC3339Nano))
	for _, r := range tr.Records {
		switch r.Kind {
		case RecCmd, RecEvent:
			fmt.Fprintf(&b, "%s %s\n", recordWords[r.Kind], r.Text)
		case RecOut, RecIn:
			fmt.Fprintf(&b, "%s %s %s %x\n", recordWords[r.Kind], r.From, r.To, r.Data)
		}
	}
	return b.Bytes()
}
