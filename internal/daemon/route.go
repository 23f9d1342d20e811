package daemon

import (
	"encoding/binary"
	"hash/maphash"
	"io"
	"net/netip"
	"sync"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// Routing inbound IKE messages to the worker that owns their IKE SA, without
// a shared table: every IKE SPI we choose encodes its worker (spi mod the
// number of workers). A worker hands its own SPI generator to the engine, so
// every IKE SA created on it — responder, initiator, and later the successor
// of a rekeyed IKE SA — gets an SPI that routes back to it: the shard key a
// successor inherits. The reader goroutine only parses the 28-octet header.

// route says where an inbound IKE message goes.
type route struct {
	worker int
	// spi is our SPI of the IKE SA (the worker's table key); zero for an
	// IKE_SA_INIT request that opens a new SA (initReq).
	spi     uint64
	initReq bool
}

// routeMessage decides which worker gets the IKE message with header h from
// remote, or ok false to drop it.
//
// RFC 7296 3.1 (and 2.6): the I(nitiator) flag is set in messages sent by the
// original initiator of the IKE SA, so when it is set our SPI is the
// responder's (SPIr); otherwise we are the original initiator and our SPI is
// SPIi. An IKE_SA_INIT request has SPIr zero: it goes to the worker chosen by
// (remote address, SPIi), where the IKE SA that request created may already
// exist (a retransmission, answered from that SA's cache, or a late
// duplicate) or the Responder creates one. Whatever else carries a zero SPI of ours belongs to no SA.
func (d *runtimeShards) routeMessage(h wire.Header, remote netip.AddrPort) (r route, ok bool) {
	if h.IsInitiator() {
		if h.SPIr == 0 {
			if h.Exchange != wire.IKE_SA_INIT || h.IsResponse() || h.MessageID != 0 || h.SPIi == 0 {
				return route{}, false
			}
			return route{worker: d.initWorker(remote.Addr(), h.SPIi), initReq: true}, true
		}
		return route{worker: d.spiWorker(h.SPIr), spi: h.SPIr}, true
	}
	if h.SPIi == 0 {
		return route{}, false
	}
	return route{worker: d.spiWorker(h.SPIi), spi: h.SPIi}, true
}

// runtimeShards holds what routing needs; it is immutable after creation.
type runtimeShards struct {
	n    int
	seed maphash.Seed
}

func newShards(n int) *runtimeShards {
	if n < 1 {
		n = 1
	}
	return &runtimeShards{n: n, seed: maphash.MakeSeed()}
}

// spiWorker is the worker that owns our IKE SPI spi.
func (d *runtimeShards) spiWorker(spi uint64) int { return int(spi % uint64(d.n)) }

// initWorker is the worker for a new IKE SA that the peer at addr opens with
// SPIi. The key is the one RFC 7296 2.1 suggests for recognizing
// retransmitted IKE_SA_INIT requests (the initiator's SPI and address), so a
// retransmission, and a retry with a COOKIE or another KE group, reach the
// same worker.
func (d *runtimeShards) initWorker(addr netip.Addr, spii uint64) int {
	var h maphash.Hash
	h.SetSeed(d.seed)
	a := addr.Unmap().As16()
	h.Write(a[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	h.Write(b[:])
	return int(h.Sum64() % uint64(d.n))
}

// connWorker is the worker on which we initiate connection name.
func (d *runtimeShards) connWorker(name string) int {
	return int(maphash.String(d.seed, name) % uint64(d.n))
}

// newSPI returns a random non-zero IKE SPI that routes to worker w, drawing
// from rand; taken reports SPIs already in use on w. RFC 7296 2.6: SPIs
// must be unique to us and "a random eight octets" is how to get there.
func (d *runtimeShards) newSPI(rand io.Reader, w int, taken func(uint64) bool) (uint64, error) {
	n := uint64(d.n)
	var b [8]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, err
		}
		r := binary.BigEndian.Uint64(b[:])
		base := r - r%n
		spi := base + uint64(w)
		if spi < base || spi == 0 || taken(spi) { // wrapped around, zero, or in use
			continue
		}
		return spi, nil
	}
}

// initRequestKey names a responder IKE SA by the peer's address and SPI, the
// pair RFC 7296 2.1 uses to recognize a retransmitted IKE_SA_INIT.
type initRequestKey struct {
	addr netip.Addr
	spii uint64
}

// lockedReader makes a random source safe for the workers to share (test
// sources are often plain deterministic streams).
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(b)
}
