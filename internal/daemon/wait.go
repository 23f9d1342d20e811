package daemon

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/keys"
	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

var cryptoRand = rand.Reader

// upWaiter is an `up` caller waiting for an IKE SA and some of its
// CHILD_SAs. Its methods run on the worker that owns the SA; the caller only
// reads ch.
type upWaiter struct {
	pending  map[string]bool // children not up yet
	ike      bool            // the IKE SA is established
	finished bool
	ch       chan error // buffered: the worker never blocks on it
}

func newUpWaiter(children []string, ikeUp bool) *upWaiter {
	u := &upWaiter{pending: make(map[string]bool), ike: ikeUp, ch: make(chan error, 1)}
	for _, c := range children {
		u.pending[c] = true
	}
	return u
}

func (u *upWaiter) ikeUp() {
	u.ike = true
	u.check()
}

func (u *upWaiter) childUp(name string) {
	delete(u.pending, name)
	u.check()
}

func (u *upWaiter) childFailed(name string, err error) {
	if u.pending[name] {
		u.finish(fmt.Errorf("CHILD_SA %s: %w", name, err))
	}
}

func (u *upWaiter) check() {
	if u.ike && len(u.pending) == 0 {
		u.finish(nil)
	}
}

func (u *upWaiter) finish(err error) {
	if u.finished {
		return
	}
	u.finished = true
	u.ch <- err
}

func (u *upWaiter) done() bool { return u.finished }

// peekHeader reads the IKE header of a datagram for routing. A header whose
// Length or version is wrong still routes (the worker's full parse rejects
// it, and the Responder may answer INVALID_MAJOR_VERSION).
func peekHeader(b []byte) (wire.Header, bool) {
	const ikeHeaderLen = 28
	if len(b) < ikeHeaderLen {
		return wire.Header{}, false
	}
	h, _ := wire.ParseHeader(b)
	return h, true
}

// espRecords are the Wireshark esp_sa lines of a CHILD_SA, one per direction.
func espRecords(c *sa.ChildSA) []string {
	family := "IPv4"
	if c.Local.Addr().Unmap().Is6() {
		family = "IPv6"
	}
	l, r := c.Local.Addr().Unmap(), c.Remote.Addr().Unmap()
	return []string{
		keys.ESPSARecord(family, r, l, c.InSPI, c.Suite, c.InEncr, c.InInteg),
		keys.ESPSARecord(family, l, r, c.OutSPI, c.Suite, c.OutEncr, c.OutInteg),
	}
}

// tsList prints negotiated selectors for a log line, as status shows them.
func tsList(list []wire.TrafficSelector) string {
	s := make([]string, 0, len(list))
	for _, t := range list {
		s = append(s, sa.TSString(t))
	}
	return strings.Join(s, ",")
}
