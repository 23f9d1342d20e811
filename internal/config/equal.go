package config

import (
	"crypto"
	"crypto/x509"
	"slices"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/auth"
)

// Equal reports whether c and o configure the same connection, so that a
// reload can keep its established SAs. It compares every setting, children
// included (in order), and certificates and keys by content: a certificate
// renewed under the same file name makes the connection different, the same
// certificate moved to another file does not. Secrets are not part of a
// connection: a changed PSK applies to the next authentication, as in
// strongSwan.
func (c *Connection) Equal(o *Connection) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Name == o.Name &&
		slices.Equal(c.LocalAddrs, o.LocalAddrs) &&
		slices.Equal(c.RemoteAddrs, o.RemoteAddrs) &&
		c.RemoteAny == o.RemoteAny &&
		c.RemotePort == o.RemotePort &&
		proposalsEqual(c.Proposals, o.Proposals) &&
		c.Encap == o.Encap &&
		c.Fragmentation == o.Fragmentation &&
		c.FragmentSize == o.FragmentSize &&
		c.RekeyTime == o.RekeyTime &&
		c.RandTime == o.RandTime &&
		c.ReauthTime == o.ReauthTime &&
		c.DPDDelay == o.DPDDelay &&
		c.DPDTimeout == o.DPDTimeout &&
		c.Keyingtries == o.Keyingtries &&
		c.Unique == o.Unique &&
		c.Mobike == o.Mobike &&
		c.IfID == o.IfID &&
		c.Local.Auth == o.Local.Auth &&
		c.Local.ID.Equal(o.Local.ID) &&
		credentialEqual(c.Local.Cred, o.Local.Cred) &&
		c.Remote.Auth == o.Remote.Auth &&
		c.Remote.ID.Equal(o.Remote.ID) &&
		certsEqual(c.Remote.CACerts, o.Remote.CACerts) &&
		slices.EqualFunc(c.Children, o.Children, (*Child).Equal)
}

// Equal reports whether c and o configure the same CHILD_SA.
func (c *Child) Equal(o *Child) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Name == o.Name &&
		slices.Equal(c.LocalTS, o.LocalTS) &&
		slices.Equal(c.RemoteTS, o.RemoteTS) &&
		proposalsEqual(c.ESPProposals, o.ESPProposals) &&
		c.Mode == o.Mode &&
		c.StartAction == o.StartAction &&
		c.CloseAction == o.CloseAction &&
		c.DPDAction == o.DPDAction &&
		c.RekeyTime == o.RekeyTime &&
		c.RandTime == o.RandTime &&
		c.LifeTime == o.LifeTime &&
		c.RekeyBytes == o.RekeyBytes &&
		c.LifeBytes == o.LifeBytes &&
		c.RekeyPackets == o.RekeyPackets &&
		c.LifePackets == o.LifePackets &&
		c.ReplayWindow == o.ReplayWindow
}

// proposalsEqual compares proposals by their canonical strings.
func proposalsEqual(a, b []algs.Proposal) bool {
	return slices.EqualFunc(a, b, func(x, y algs.Proposal) bool { return x.String() == y.String() })
}

func certsEqual(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}

func credentialEqual(a, b *auth.Credential) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !certsEqual(a.Chain, b.Chain) {
		return false
	}
	if a.Key == nil || b.Key == nil {
		return a.Key == b.Key
	}
	// Two private keys with the same public key are the same key.
	pub, ok := a.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(b.Key.Public())
}
