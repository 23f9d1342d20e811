package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

// Secret is a pre-shared key and the identities it is for.
//
// Printing a Secret (fmt, slog) shows its identities, never the key.
type Secret struct {
	IDs []auth.Identity // empty: any identity
	PSK []byte
}

func (s Secret) String() string {
	ids := make([]string, len(s.IDs))
	for i, id := range s.IDs {
		ids[i] = id.String()
	}
	return fmt.Sprintf("Secret{IDs: [%s], PSK: <redacted>}", strings.Join(ids, ", "))
}

// GoString keeps %#v from printing the key.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the key.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// decodePSK decodes a psk value the way strongSwan does: "0x" introduces
// hex, "0s" base64, anything else is the key's bytes as written. Its errors
// never quote the value.
func decodePSK(s string) ([]byte, error) {
	var psk []byte
	var err error
	switch {
	case strings.HasPrefix(s, "0x"):
		if psk, err = hex.DecodeString(s[2:]); err != nil {
			return nil, errors.New("invalid hex after 0x")
		}
	case strings.HasPrefix(s, "0s"):
		if psk, err = base64.StdEncoding.DecodeString(s[2:]); err != nil {
			return nil, errors.New("invalid base64 after 0s")
		}
	default:
		psk = []byte(s)
	}
	if len(psk) == 0 {
		return nil, errors.New("empty pre-shared key")
	}
	return psk, nil
}

// How well a secret's identities match an identity, as strongSwan ranks
// them (its id_match_t): the identity itself beats a pattern that matches
// it ("*.example", a DN with a "*" value), which beats %any, which beats
// nothing.
const (
	matchNone = iota
	matchAny
	matchPattern
	matchPerfect
)

func matchIDs(ids []auth.Identity, id auth.Identity) int {
	if len(ids) == 0 {
		return matchAny
	}
	best := matchNone
	for _, x := range ids {
		switch {
		case x.Equal(id):
			return matchPerfect
		case x.Any():
			best = max(best, matchAny)
		case x.Matches(id):
			best = matchPattern
		}
	}
	return best
}

// PSK returns the pre-shared key for an IKE SA between the identities local
// and remote, choosing among the secrets as strongSwan's credential manager
// does:
//
//   - A secret applies if it lists local or remote (or both), or a pattern
//     that matches one of them ("*.example"), or if it lists no identity
//     or %any (it then matches any identity, weakly).
//   - Of the secrets that apply, the best match for the remote identity
//     wins; among equals, the best match for the local identity; among
//     equals still, the first in the file.
//
// A match is, from best to worst: the identity itself, a pattern, %any or
// no identities. So a secret listing both identities beats one listing only
// one of them, and a secret listing the remote identity beats one listing
// only ours.
// The returned slice is a copy the caller may zero after use.
func (c *Config) PSK(local, remote auth.Identity) ([]byte, bool) {
	var best *Secret
	bestLocal, bestRemote := matchNone, matchNone
	for i := range c.Secrets {
		s := &c.Secrets[i]
		l, r := matchIDs(s.IDs, local), matchIDs(s.IDs, remote)
		if l == matchNone && r == matchNone {
			continue
		}
		if r > bestRemote || (r == bestRemote && l > bestLocal) {
			best, bestLocal, bestRemote = s, l, r
		}
	}
	if best == nil || len(best.PSK) == 0 {
		return nil, false
	}
	return slices.Clone(best.PSK), true
}
