package daemon

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/cygnet-ipsec/cygnet/internal/ike/sa"
)

// Why the runtime dropped a received IKE datagram (the transport and the
// data plane count their own).
type dropReason int

const (
	dropMalformed dropReason = iota // not a parseable IKE message
	dropNoSA                        // for no IKE SA of ours
	dropInboxFull                   // the owning worker was flooded
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropMalformed:
		return "malformed"
	case dropNoSA:
		return "unknown_spi"
	case dropInboxFull:
		return "inbox_full"
	}
	return "other"
}

// stats are the runtime's counters, updated atomically on the workers and
// read by the metrics endpoint. Gauges are kept as differences of counters so
// that no worker waits for another.
type stats struct {
	ikeCreatedN, ikeEstablishedN, ikeRemovedConnecting, ikeRemovedEstablished atomic.Uint64
	childInstalledN, childRemovedN, childFailedN                              atomic.Uint64
	deletesN, keepalivesN, sendErrorsN, retransmitsN                          atomic.Uint64
	drops                                                                     [numDropReasons]atomic.Uint64

	mu       sync.Mutex
	failures map[string]uint64 // handshake failures by reason
}

func newStats() *stats { return &stats{failures: make(map[string]uint64)} }

func (s *stats) drop(r dropReason)         { s.drops[r].Add(1) }
func (s *stats) dropN(r dropReason, n int) { s.drops[r].Add(uint64(n)) }
func (s *stats) ikeCreated()               { s.ikeCreatedN.Add(1) }
func (s *stats) ikeEstablished()           { s.ikeEstablishedN.Add(1) }
func (s *stats) ikeDeleted()               { s.deletesN.Add(1) }
func (s *stats) childInstalled()           { s.childInstalledN.Add(1) }
func (s *stats) childRemoved()             { s.childRemovedN.Add(1) }
func (s *stats) childFailed()              { s.childFailedN.Add(1) }
func (s *stats) keepalive()                { s.keepalivesN.Add(1) }
func (s *stats) sendError()                { s.sendErrorsN.Add(1) }
func (s *stats) retransmit(n int)          { s.retransmitsN.Add(uint64(n)) }

func (s *stats) ikeRemoved(established bool) {
	if established {
		s.ikeRemovedEstablished.Add(1)
	} else {
		s.ikeRemovedConnecting.Add(1)
	}
}

// ikeFailed counts a failed IKE SA under a reason of bounded cardinality:
// the notify that failed it, "timeout" for a silent peer, else "other".
func (s *stats) ikeFailed(err error) {
	reason := "other"
	var ne *sa.NotifyError
	switch {
	case errors.As(err, &ne):
		reason = ne.Type.String()
	case errors.Is(err, sa.ErrNoAnswer):
		reason = "timeout"
	}
	s.mu.Lock()
	s.failures[reason]++
	s.mu.Unlock()
}

// snapshot is a consistent-enough reading for the metrics endpoint.
type statsSnapshot struct {
	ikeConnecting, ikeEstablished, childInstalled int64
	handshakesOK                                  uint64
	failures                                      map[string]uint64
	childFailed, deletes, keepalives              uint64
	sendErrors, retransmits                       uint64
	drops                                         map[string]uint64
}

func (s *stats) snapshot() statsSnapshot {
	est := s.ikeEstablishedN.Load()
	snap := statsSnapshot{
		ikeConnecting:  int64(s.ikeCreatedN.Load()) - int64(est) - int64(s.ikeRemovedConnecting.Load()),
		ikeEstablished: int64(est) - int64(s.ikeRemovedEstablished.Load()),
		childInstalled: int64(s.childInstalledN.Load()) - int64(s.childRemovedN.Load()),
		handshakesOK:   est,
		childFailed:    s.childFailedN.Load(),
		deletes:        s.deletesN.Load(),
		keepalives:     s.keepalivesN.Load(),
		sendErrors:     s.sendErrorsN.Load(),
		retransmits:    s.retransmitsN.Load(),
		failures:       make(map[string]uint64),
		drops:          make(map[string]uint64),
	}
	s.mu.Lock()
	for k, v := range s.failures {
		snap.failures[k] = v
	}
	s.mu.Unlock()
	for r := range numDropReasons {
		snap.drops[r.String()] = s.drops[r].Load()
	}
	return snap
}
