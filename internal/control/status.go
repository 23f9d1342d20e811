package control

import (
	"bytes"
	"encoding/json"
	"time"
)

// Status is a snapshot of the daemon's SAs, exactly CONTRACT.md's status JSON
// ("Status JSON"). Fields marked "extension" are Cygnet additions, listed in
// docs/control-api.md; each is omitted when it has its zero value, so a
// Status that leaves them zero encodes to the contract's shape key for key.
type Status struct {
	IKESAs []IKESA `json:"ike_sas"` // encoded as [] when empty, never null
}

// IKE SA states (CONTRACT.md).
const (
	IKEConnecting  = "CONNECTING"
	IKEEstablished = "ESTABLISHED"
	IKERekeying    = "REKEYING"
	IKEDeleting    = "DELETING"
)

// CHILD_SA states (CONTRACT.md).
const (
	ChildInstalling = "INSTALLING"
	ChildInstalled  = "INSTALLED"
	ChildRekeying   = "REKEYING"
	ChildDeleting   = "DELETING"
)

// IKESA describes one IKE SA. SPIs are 16 lowercase hex digits without 0x
// (FormatIKESPI); addresses are "ip:port".
type IKESA struct {
	Connection string `json:"connection"`
	State      string `json:"state"` // IKEConnecting, IKEEstablished, ...
	Initiator  bool   `json:"initiator"`
	Local      string `json:"local"`
	Remote     string `json:"remote"`
	LocalID    string `json:"local_id"`
	RemoteID   string `json:"remote_id"`
	SPIi       string `json:"spi_i"`
	SPIr       string `json:"spi_r"` // "0000000000000000" until the responder's SPI is known
	Proposal   string `json:"proposal"`
	NATLocal   bool   `json:"nat_local"`  // this end is behind a NAT
	NATRemote  bool   `json:"nat_remote"` // the peer is behind a NAT

	// EstablishedAt is when the SA was established; it is encoded as an
	// RFC 3339 UTC time in whole seconds, or null while the zero time.
	EstablishedAt time.Time `json:"established_at"`

	ChildSAs []ChildSA `json:"child_sas"` // encoded as [] when empty, never null

	// Extensions.
	RekeyAt time.Time `json:"rekey_at"` // when the next IKE SA rekey is due; omitted while zero
	// Lifecycle counts of this IKE SA and of the ones it replaced by
	// rekeys (its line), each omitted while zero.
	Rekeys         uint64 `json:"rekeys"`             // times the IKE SA was rekeyed: it is the (Rekeys+1)-th of its line
	ChildRekeys    uint64 `json:"child_rekeys"`       // CHILD_SA rekeys, either side initiating
	CollisionsWon  uint64 `json:"collisions_won"`     // rekey collisions (CHILD or IKE SA) our new SA survived
	CollisionsLost uint64 `json:"collisions_lost"`    // rekey collisions the peer's new SA survived
	ChildDeletes   uint64 `json:"child_deletes"`      // CHILD_SAs deleted other than by a rekey, by either side
	TempFailures   uint64 `json:"temporary_failures"` // TEMPORARY_FAILURE answers the peer sent us (RFC 7296 2.25)
}

// ChildSA describes one CHILD_SA. SPIs are 8 lowercase hex digits without 0x
// (FormatChildSPI); SPIIn is the one we chose, which the peer puts on ESP
// packets to us.
type ChildSA struct {
	Name       string   `json:"name"`
	State      string   `json:"state"` // ChildInstalling, ChildInstalled, ...
	Mode       string   `json:"mode"`  // "tunnel" or "transport"
	Encap      bool     `json:"encap"` // ESP in UDP (RFC 3948)
	SPIIn      string   `json:"spi_in"`
	SPIOut     string   `json:"spi_out"`
	Proposal   string   `json:"proposal"`
	LocalTS    []string `json:"local_ts"`  // encoded as [] when empty, never null
	RemoteTS   []string `json:"remote_ts"` // encoded as [] when empty, never null
	BytesIn    uint64   `json:"bytes_in"`
	BytesOut   uint64   `json:"bytes_out"`
	PacketsIn  uint64   `json:"packets_in"`
	PacketsOut uint64   `json:"packets_out"`

	// Extensions.
	Rekeys  uint64    `json:"rekeys,omitempty"` // times this CHILD_SA has been rekeyed
	Drops   uint64    `json:"drops,omitempty"`  // inbound packets dropped (replay, ICV, padding)
	RekeyAt time.Time `json:"rekey_at"`         // when the next rekey is due; omitted while zero
	// InboundOnly: this SA does not carry its child's outbound traffic
	// (during a rekey: the responder's new SA until the initiator deletes
	// the old one, or the old SA until its delete). Omitted while false.
	InboundOnly bool `json:"inbound_only,omitempty"`
}

// FormatIKESPI formats an IKE SPI as the status JSON has it.
func FormatIKESPI(spi uint64) string { return hexDigits(spi, 16) }

// FormatChildSPI formats an ESP SPI as the status JSON has it.
func FormatChildSPI(spi uint32) string { return hexDigits(uint64(spi), 8) }

func hexDigits(v uint64, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// The JSON encoding goes through mirror types that differ from the public
// ones only where the contract's form needs it (times, [] for empty lists),
// and that have no MarshalJSON methods of their own: encoding/json re-scans
// the output of every MarshalJSON it calls, which made a status of many SAs
// several times slower to encode when each level had one.
type (
	plainIKESA   IKESA
	plainChildSA ChildSA

	statusJSON struct {
		IKESAs []ikeSAJSON `json:"ike_sas"`
	}
	ikeSAJSON struct {
		plainIKESA
		// These hide the embedded fields of the same JSON names, and
		// encoding/json places them after the embedded fields, which is
		// where they are declared in IKESA: the key order stays.
		EstablishedAt  *jsonTime     `json:"established_at"` // nil: null
		ChildSAs       []childSAJSON `json:"child_sas"`
		RekeyAt        *jsonTime     `json:"rekey_at,omitempty"`
		Rekeys         uint64        `json:"rekeys,omitempty"`
		ChildRekeys    uint64        `json:"child_rekeys,omitempty"`
		CollisionsWon  uint64        `json:"collisions_won,omitempty"`
		CollisionsLost uint64        `json:"collisions_lost,omitempty"`
		ChildDeletes   uint64        `json:"child_deletes,omitempty"`
		TempFailures   uint64        `json:"temporary_failures,omitempty"`
	}
	childSAJSON struct {
		plainChildSA
		RekeyAt *jsonTime `json:"rekey_at,omitempty"`
	}
)

// jsonTime is a time in the form CONTRACT.md uses: RFC 3339, UTC, whole
// seconds. It is a TextMarshaler, which encoding/json quotes without
// re-scanning.
type jsonTime time.Time

func (t *jsonTime) MarshalText() ([]byte, error) {
	return time.Time(*t).UTC().Truncate(time.Second).AppendFormat(nil, time.RFC3339), nil
}

func newJSONTime(t time.Time) *jsonTime {
	if t.IsZero() {
		return nil
	}
	return (*jsonTime)(&t)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (sa *IKESA) toJSON() ikeSAJSON {
	children := make([]childSAJSON, len(sa.ChildSAs))
	for i := range sa.ChildSAs {
		children[i] = sa.ChildSAs[i].toJSON()
	}
	return ikeSAJSON{
		plainIKESA:     plainIKESA(*sa),
		EstablishedAt:  newJSONTime(sa.EstablishedAt),
		ChildSAs:       children,
		RekeyAt:        newJSONTime(sa.RekeyAt),
		Rekeys:         sa.Rekeys,
		ChildRekeys:    sa.ChildRekeys,
		CollisionsWon:  sa.CollisionsWon,
		CollisionsLost: sa.CollisionsLost,
		ChildDeletes:   sa.ChildDeletes,
		TempFailures:   sa.TempFailures,
	}
}

func (c *ChildSA) toJSON() childSAJSON {
	v := childSAJSON{plainChildSA: plainChildSA(*c), RekeyAt: newJSONTime(c.RekeyAt)}
	v.LocalTS = nonNil(v.LocalTS)
	v.RemoteTS = nonNil(v.RemoteTS)
	return v
}

// marshalJSON encodes v compactly, without escaping <, > and & (identities
// hold them), and without a trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// MarshalJSON encodes the status in CONTRACT.md's form: [] for an empty list,
// times in RFC 3339 UTC, null for the time of an SA not yet established.
func (s Status) MarshalJSON() ([]byte, error) {
	v := statusJSON{IKESAs: make([]ikeSAJSON, len(s.IKESAs))}
	for i := range s.IKESAs {
		v.IKESAs[i] = s.IKESAs[i].toJSON()
	}
	return marshalJSON(v)
}

// MarshalJSON encodes the IKE SA as Status.MarshalJSON does.
func (sa IKESA) MarshalJSON() ([]byte, error) { return marshalJSON(sa.toJSON()) }

// MarshalJSON encodes the CHILD_SA as Status.MarshalJSON does.
func (c ChildSA) MarshalJSON() ([]byte, error) { return marshalJSON(c.toJSON()) }
