// Package cookie makes and checks the stateless cookies with which an IKEv2
// responder under load makes an initiator prove that it receives packets at
// its address before any state is kept (RFC 7296 2.6).
//
// A cookie is
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// as RFC 7296 2.6 suggests: one octet naming the secret, then HMAC-SHA-256
// keyed with the secret over the initiator's nonce, IP address (not port: a
// NAT may change it) and SPI. The secret changes every rotation interval;
// cookies made with the previous secret are still accepted, so a cookie lives
// between one and two intervals.
package cookie

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"
)

// Len is the length of the cookies Jar makes: a version octet and a
// SHA-256 HMAC. RFC 7296 3.10.1 allows 1 to 64 octets.
const Len = 1 + sha256.Size

// MaxLen is the longest cookie RFC 7296 3.10.1 allows.
const MaxLen = 64

// DefaultRotate is how often the secret changes when New is given zero.
const DefaultRotate = time.Minute

// Jar makes and verifies cookies. It is safe for concurrent use.
type Jar struct {
	rand   io.Reader
	rotate time.Duration

	mu      sync.Mutex
	cur     secret
	prev    secret
	changed time.Time // when cur became current
	started bool
}

type secret struct {
	version byte
	key     [32]byte
	valid   bool
}

// New returns a Jar whose secrets come from rand (crypto/rand.Reader if nil)
// and change every rotate (DefaultRotate if zero or negative). The first
// secret is drawn on first use, so New does no I/O.
func New(rand io.Reader, rotate time.Duration) *Jar {
	if rotate <= 0 {
		rotate = DefaultRotate
	}
	return &Jar{rand: rand, rotate: rotate}
}

// Make returns the cookie for an IKE_SA_INIT request with nonce ni from
// address ipi with SPIi spii, made with the current secret.
func (j *Jar) Make(now time.Time, ni []byte, ipi netip.Addr, spii uint64) ([]byte, error) {
	j.mu.Lock()
	if err := j.refresh(now); err != nil {
		j.mu.Unlock()
		return nil, err
	}
	s := j.cur
	j.mu.Unlock()
	return s.cookie(ni, ipi, spii), nil
}

// Verify reports whether c is a cookie that Make gave for the same ni, ipi
// and spii with the current or the previous secret.
func (j *Jar) Verify(now time.Time, c, ni []byte, ipi netip.Addr, spii uint64) bool {
	if len(c) != Len {
		return false
	}
	j.mu.Lock()
	if err := j.refresh(now); err != nil {
		j.mu.Unlock()
		return false
	}
	var s secret
	switch c[0] {
	case j.cur.version:
		s = j.cur
	case j.prev.version:
		s = j.prev
	}
	j.mu.Unlock()
	if !s.valid {
		return false
	}
	return hmac.Equal(c, s.cookie(ni, ipi, spii))
}

// refresh draws the first secret, and a new one once the current one is
// older than the rotation interval. With j.mu held.
func (j *Jar) refresh(now time.Time) error {
	if j.started && now.Sub(j.changed) < j.rotate {
		return nil
	}
	var key [32]byte
	r := j.rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return fmt.Errorf("cookie: reading a secret: %w", err)
	}
	if j.started && now.Sub(j.changed) < 2*j.rotate {
		j.prev = j.cur
	} else {
		// Idle for two intervals: the old secret has expired as well.
		j.prev = secret{}
	}
	j.cur = secret{version: j.cur.version + 1, key: key, valid: true}
	if j.prev.valid && j.prev.version == j.cur.version {
		j.prev = secret{}
	}
	j.changed = now
	j.started = true
	return nil
}

// cookie computes the cookie of s for the given request.
func (s *secret) cookie(ni []byte, ipi netip.Addr, spii uint64) []byte {
	m := hmac.New(sha256.New, s.key[:])
	m.Write(ni)
	ip := ipi.Unmap().AsSlice()
	m.Write(ip)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	m.Write(b[:])
	out := make([]byte, 1, Len)
	out[0] = s.version
	return m.Sum(out)
}
