package keys

import (
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/cygnet-ipsec/cygnet/internal/ike/algs"
	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// ErrIntegrity reports an Encrypted (SK) or Encrypted Fragment (SKF) payload
// whose integrity check failed, or one too short to carry an ICV. The caller
// drops the message without a reply and without changing any state (RFC
// 7296 2.21, 3.14; RFC 7383 2.6).
var ErrIntegrity = errors.New("keys: integrity check failed")

// Lengths of the generic payload header of SK and of SKF, which adds Fragment
// Number and Total Fragments (RFC 7296 3.14, RFC 7383 2.5).
const (
	skHeaderLen  = 4
	skfHeaderLen = 8
)

// maxFragments is the most fragments a message can have: Total Fragments is
// a 16-bit field (RFC 7383 2.5).
const maxFragments = 0xffff

// Protector encrypts and authenticates the messages of one IKE SA for one
// side: outbound messages with that side's SK_e and SK_a, inbound ones with
// the peer's. It handles both CBC with a separate HMAC (RFC 7296 3.14) and
// the AEADs of RFC 5282 and RFC 7634.
//
// A Protector is safe for concurrent use; each direction is serialized by its
// own lock.
type Protector struct {
	encr  *algs.Encr
	integ *algs.Integ // nil for AEADs

	ivLen  int // explicit IV in each payload
	icvLen int // integrity check value at the end of the message
	// block is the alignment of plaintext | padding | pad length: the cipher
	// block size for CBC, 1 for the AEADs, which need no alignment in IKE
	// (RFC 5282 3 and RFC 7634 3 leave padding to the sender).
	block int

	out, in direction
}

// direction holds the keyed primitives of one direction. mu guards the
// reusable HMAC state and scratch buffers, and the AEAD IV counter.
type direction struct {
	mu sync.Mutex

	// CBC + HMAC
	cbc cipher.Block
	mac hash.Hash
	sum []byte // HMAC output scratch

	// AEAD
	aead  cipher.AEAD
	nonce []byte // salt | IV scratch; the salt part is fixed
	// AEAD IVs are a counter masked with a random value drawn on the first
	// Seal, so that they never repeat under one key (RFC 5282 3, RFC 7634
	// 2: the IV MUST NOT repeat) and still do not reveal the message count.
	ivMask    uint64
	ivCounter uint64
	ivReady   bool
}

// NewProtector returns the Protector of an IKE SA with suite s and keys k.
// initiator says whether this side is the IKE SA's original initiator: its
// outbound messages then use SK_ei/SK_ai and inbound ones SK_er/SK_ar, and
// the other way round for the responder (RFC 7296 2.14). The Protector keeps
// its own copies of the keys, so k may be zeroed afterwards.
func NewProtector(s algs.Suite, k *IKEKeys, initiator bool) (*Protector, error) {
	if k == nil {
		return nil, errors.New("keys: no IKE SA keys")
	}
	_, integ, encr, keyLen, err := suiteAlgs(s, false)
	if err != nil {
		return nil, err
	}
	p := &Protector{encr: encr, integ: integ, ivLen: encr.IVLen}
	if encr.AEAD {
		p.icvLen = encr.ICVLen
		p.block = 1
	} else {
		p.icvLen = integ.ICVLen
		p.block = encr.BlockSize
		if p.block <= 0 || p.ivLen != p.block {
			return nil, fmt.Errorf("keys: %s: unusable block or IV size", encrName(encr, keyLen))
		}
	}
	outE, outA, inE, inA := k.SKei, k.SKai, k.SKer, k.SKar
	if !initiator {
		outE, outA, inE, inA = inE, inA, outE, outA
	}
	if err := p.out.init(encr, integ, encr.KeyMatLen(keyLen), outE, outA); err != nil {
		return nil, err
	}
	if err := p.in.init(encr, integ, encr.KeyMatLen(keyLen), inE, inA); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *direction) init(encr *algs.Encr, integ *algs.Integ, eLen int, ekey, akey []byte) error {
	if len(ekey) != eLen {
		return fmt.Errorf("keys: encryption key is %d octets, want %d", len(ekey), eLen)
	}
	if encr.AEAD {
		aead, salt, err := encr.NewAEAD(ekey)
		if err != nil {
			return err
		}
		if aead.NonceSize() != len(salt)+encr.IVLen {
			return fmt.Errorf("keys: %s nonce size %d does not match salt and IV", encr.Keyword, aead.NonceSize())
		}
		if aead.Overhead() != encr.ICVLen {
			return fmt.Errorf("keys: %s overhead %d does not match its ICV length", encr.Keyword, aead.Overhead())
		}
		d.aead = aead
		d.nonce = make([]byte, aead.NonceSize())
		copy(d.nonce, salt)
		return nil
	}
	if len(akey) != integ.KeyLen {
		return fmt.Errorf("keys: integrity key is %d octets, want %d", len(akey), integ.KeyLen)
	}
	block, err := encr.NewBlock(ekey)
	if err != nil {
		return err
	}
	d.cbc = block
	// hmac.New copies the key into its pads; the caller's slice may be
	// zeroed.
	d.mac = integ.New(akey)
	d.sum = make([]byte, 0, d.mac.Size())
	return nil
}

// SealedLen returns the length of the IKE message that Seal produces for
// inner payloads that marshal to plaintextLen octets: IKE header, SK payload
// header, IV, the plaintext with padding and pad length, and ICV.
func (p *Protector) SealedLen(plaintextLen int) int {
	return wire.HeaderLen + skHeaderLen + p.ivLen + p.paddedLen(plaintextLen) + p.icvLen
}

// paddedLen is the length of plaintext | padding | pad length with the
// minimal padding (RFC 7296 3.14: the sender SHOULD use the minimum).
func (p *Protector) paddedLen(n int) int {
	n++ // Pad Length
	return (n + p.block - 1) / p.block * p.block
}

// Seal builds the datagram of an encrypted IKE message: the IKE header h with
// Next Payload SK and Length set, then one Encrypted payload whose Next
// Payload is the type of the first inner payload and whose content is the
// marshalled payloads, encrypted and integrity protected (RFC 7296 3.14, RFC
// 5282, RFC 7634). rand supplies CBC IVs and the AEAD IV mask; padding is
// zeros (RFC 7296 3.14: it may contain any value).
func (p *Protector) Seal(h wire.Header, payloads []wire.Payload, rand io.Reader) ([]byte, error) {
	first, body, err := wire.MarshalPayloads(payloads)
	if err != nil {
		return nil, err
	}
	return p.seal(h, skParams{next: first}, body, rand, nil)
}

// skParams describe the SK or SKF payload header of one sealed message.
type skParams struct {
	next          wire.PayloadType
	frag          bool
	number, total uint16
}

// seal encrypts plaintext into a new datagram. pad, if not nil, is the exact
// padding to use (known-answer tests); otherwise the padding is minimal and
// zero.
func (p *Protector) seal(h wire.Header, sp skParams, plaintext []byte, rand io.Reader, pad []byte) ([]byte, error) {
	padLen := p.paddedLen(len(plaintext)) - len(plaintext) - 1
	if pad != nil {
		padLen = len(pad)
		if padLen > 255 || (len(plaintext)+padLen+1)%p.block != 0 {
			return nil, fmt.Errorf("keys: padding of %d octets does not align %d octets of plaintext", padLen, len(plaintext))
		}
	}
	return p.sealPadded(h, sp, len(plaintext)+padLen+1, rand, func(pt []byte) {
		copy(pt, plaintext)
		copy(pt[len(plaintext):], pad) // nil pad leaves zeros
		pt[len(pt)-1] = byte(padLen)
	})
}

// sealPadded lays out a datagram whose SK or SKF payload carries ctLen
// octets of plaintext (inner payloads, padding and Pad Length), lets fill
// write that plaintext in place, and encrypts and authenticates it.
func (p *Protector) sealPadded(h wire.Header, sp skParams, ctLen int, rand io.Reader, fill func(pt []byte)) ([]byte, error) {
	hdrLen := skHeaderLen
	typ := wire.PayloadSK
	if sp.frag {
		hdrLen = skfHeaderLen
		typ = wire.PayloadSKF
	}
	if ctLen < 1 || ctLen%p.block != 0 {
		return nil, fmt.Errorf("keys: %d octets of plaintext are not aligned to the %d-octet block", ctLen, p.block)
	}
	total := wire.HeaderLen + hdrLen + p.ivLen + ctLen + p.icvLen
	if total-wire.HeaderLen > 0xffff {
		// The SK payload's Length is 16 bits.
		return nil, fmt.Errorf("keys: encrypted payload of %d octets exceeds the 65535-octet payload limit", total-wire.HeaderLen)
	}

	out := make([]byte, total)
	h.NextPayload = typ
	h.Length = uint32(total)
	copy(out, h.AppendTo(out[:0])) // in place: out has the capacity
	sk := out[wire.HeaderLen:]
	sk[0] = byte(sp.next)
	sk[1] = 0 // Critical bit clear, RESERVED
	binary.BigEndian.PutUint16(sk[2:], uint16(total-wire.HeaderLen))
	if sp.frag {
		binary.BigEndian.PutUint16(sk[4:], sp.number)
		binary.BigEndian.PutUint16(sk[6:], sp.total)
	}
	ivStart := wire.HeaderLen + hdrLen
	ctStart := ivStart + p.ivLen
	iv := out[ivStart:ctStart]
	pt := out[ctStart : ctStart+ctLen]
	fill(pt)

	d := &p.out
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aead != nil {
		if err := d.nextIV(iv, rand); err != nil {
			return nil, err
		}
		copy(d.nonce[len(d.nonce)-p.ivLen:], iv)
		// RFC 5282 5, RFC 7383 2.5: the AAD is the IKE header and the SK
		// (or SKF) payload header, up to but not including the IV.
		d.aead.Seal(pt[:0], d.nonce, pt, out[:ivStart])
		return out, nil
	}
	// RFC 7296 3.14: the IV MUST be chosen at random and be unpredictable.
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, fmt.Errorf("keys: reading IV: %w", err)
	}
	cipher.NewCBCEncrypter(d.cbc, iv).CryptBlocks(pt, pt)
	// The ICV covers the whole message, IKE header through the end of the
	// ciphertext, with the final lengths already in place.
	icvStart := total - p.icvLen
	d.mac.Reset()
	d.mac.Write(out[:icvStart])
	d.sum = d.mac.Sum(d.sum[:0])
	copy(out[icvStart:], d.sum[:p.icvLen])
	return out, nil
}

// nextIV fills iv with the next AEAD IV. With d.mu held.
func (d *direction) nextIV(iv []byte, rand io.Reader) error {
	if !d.ivReady {
		var m [8]byte
		if _, err := io.ReadFull(rand, m[:]); err != nil {
			return fmt.Errorf("keys: reading IV: %w", err)
		}
		d.ivMask = binary.BigEndian.Uint64(m[:])
		d.ivReady = true
	}
	if d.ivCounter == ^uint64(0) {
		return errors.New("keys: AEAD IVs exhausted; rekey the IKE SA")
	}
	binary.BigEndian.PutUint64(iv, d.ivMask^d.ivCounter)
	d.ivCounter++
	return nil
}

// Open verifies and decrypts the Encrypted payload of m, which must be its
// last payload (RFC 7296 3.14), and parses the inner payloads. The ICV is
// checked before anything is decrypted; a failure, or a payload too short to
// hold IV and ICV, returns ErrIntegrity. A decrypted plaintext with bad
// padding or bad payloads returns a wire syntax error (INVALID_SYNTAX).
func (p *Protector) Open(m *wire.Message) ([]wire.Payload, error) {
	sk, ok := lastPayload(m).(*wire.Encrypted)
	if !ok {
		return nil, errors.New("keys: message does not end with an Encrypted payload")
	}
	pt, err := p.open(m, skHeaderLen)
	if err != nil {
		return nil, err
	}
	return wire.ParsePayloads(sk.NextPayload, pt)
}

// lastPayload returns m's last payload, or nil.
func lastPayload(m *wire.Message) wire.Payload {
	if m == nil || len(m.Payloads) == 0 {
		return nil
	}
	return m.Payloads[len(m.Payloads)-1]
}

// Fragment is the decrypted content of one Encrypted Fragment payload (RFC
// 7383 2.5). Plaintext is a piece of the original message's inner payloads;
// NextPayload, the type of the first inner payload, is set only in fragment
// number 1.
type Fragment struct {
	Number, Total uint16
	NextPayload   wire.PayloadType
	Plaintext     []byte
}

// OpenFragment verifies and decrypts the Encrypted Fragment payload that is
// m's last payload. Errors are as for Open; in addition a Fragment Number of
// zero or above Total Fragments is a syntax error (RFC 7383 2.6). Collect
// the fragments of one message ID and pass them to ReassembleFragments.
func (p *Protector) OpenFragment(m *wire.Message) (Fragment, error) {
	skf, ok := lastPayload(m).(*wire.EncryptedFragment)
	if !ok {
		return Fragment{}, errors.New("keys: message does not end with an Encrypted Fragment payload")
	}
	pt, err := p.open(m, skfHeaderLen)
	if err != nil {
		return Fragment{}, err
	}
	if skf.Number == 0 || skf.Total == 0 || skf.Number > skf.Total {
		return Fragment{}, syntaxErrorf("fragment %d of %d", skf.Number, skf.Total)
	}
	f := Fragment{Number: skf.Number, Total: skf.Total, Plaintext: pt}
	if skf.Number == 1 {
		// RFC 7383 2.5: Next Payload is set in the first fragment only; in
		// the others it MUST be zero and is ignored here.
		f.NextPayload = skf.NextPayload
	}
	return f, nil
}

// ReassembleFragments joins the fragments of one message, in any order, and
// parses the inner payloads (RFC 7383 2.6). It requires exactly one fragment
// for each number from 1 to Total Fragments, all agreeing on the total.
func ReassembleFragments(frags []Fragment) ([]wire.Payload, error) {
	if len(frags) == 0 {
		return nil, errors.New("keys: no fragments")
	}
	total := int(frags[0].Total)
	if len(frags) != total {
		return nil, fmt.Errorf("keys: %d fragments of a %d-fragment message", len(frags), total)
	}
	ordered := make([]*Fragment, total)
	n := 0
	for i := range frags {
		f := &frags[i]
		if int(f.Total) != total {
			return nil, fmt.Errorf("keys: fragment %d says %d fragments, fragment %d says %d", f.Number, f.Total, frags[0].Number, total)
		}
		if f.Number == 0 || int(f.Number) > total {
			return nil, fmt.Errorf("keys: fragment %d of %d", f.Number, total)
		}
		if ordered[f.Number-1] != nil {
			return nil, fmt.Errorf("keys: duplicate fragment %d", f.Number)
		}
		ordered[f.Number-1] = f
		n += len(f.Plaintext)
	}
	body := make([]byte, 0, n)
	for _, f := range ordered {
		body = append(body, f.Plaintext...)
	}
	return wire.ParsePayloads(ordered[0].NextPayload, body)
}

// SealFragments seals the message like Seal if the result is at most maxLen
// octets, and returns that one datagram. Otherwise it splits the marshalled
// inner payloads into Encrypted Fragment payloads (RFC 7383 2.5), each
// protected on its own and each datagram at most maxLen octets, numbered from
// 1, with Next Payload set in the first only. All share h's Message ID.
// maxLen is the IKE message length: the caller subtracts the IP and UDP
// headers and the non-ESP marker from the path MTU (RFC 7383 2.5.1).
func (p *Protector) SealFragments(h wire.Header, payloads []wire.Payload, rand io.Reader, maxLen int) ([][]byte, error) {
	first, body, err := wire.MarshalPayloads(payloads)
	if err != nil {
		return nil, err
	}
	// No payload may exceed 65535 octets: a larger maxLen cannot help.
	maxLen = min(maxLen, wire.HeaderLen+0xffff)
	if p.SealedLen(len(body)) <= maxLen {
		b, err := p.seal(h, skParams{next: first}, body, rand, nil)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	chunk := p.fragmentCapacity(maxLen)
	if chunk < 1 {
		return nil, fmt.Errorf("keys: maximum fragment length %d leaves no room for data", maxLen)
	}
	count := (len(body) + chunk - 1) / chunk
	if count > maxFragments {
		return nil, fmt.Errorf("keys: message of %d octets needs %d fragments of %d (at most %d)", len(body), count, chunk, maxFragments)
	}
	out := make([][]byte, 0, count)
	for i := 0; i < count; i++ {
		piece := body[i*chunk : min((i+1)*chunk, len(body))]
		sp := skParams{frag: true, number: uint16(i + 1), total: uint16(count)}
		if i == 0 {
			sp.next = first
		}
		b, err := p.seal(h, sp, piece, rand, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// fragmentCapacity returns how many plaintext octets fit in one SKF
// datagram of at most maxLen octets.
func (p *Protector) fragmentCapacity(maxLen int) int {
	room := maxLen - wire.HeaderLen - skfHeaderLen - p.ivLen - p.icvLen
	if room < p.block {
		return 0
	}
	return room/p.block*p.block - 1 // less the Pad Length octet
}

// open checks and decrypts the SK or SKF payload (with a generic header of
// hdrLen octets) that ends m, and returns the inner plaintext without
// padding.
func (p *Protector) open(m *wire.Message, hdrLen int) ([]byte, error) {
	raw := m.Raw
	// Everything before the IV: the AEAD's associated data (RFC 5282 5,
	// RFC 7383 2.5), and with the ciphertext what the ICV covers.
	ivStart := len(m.EncryptedPrefix())
	ctStart := ivStart + p.ivLen
	icvStart := len(raw) - p.icvLen
	// The shortest valid content is one block (CBC) or the Pad Length octet
	// (AEAD). Anything shorter cannot carry a valid ICV.
	if ivStart < wire.HeaderLen+hdrLen || icvStart-ctStart < p.block {
		return nil, ErrIntegrity
	}
	d := &p.in
	d.mu.Lock()
	defer d.mu.Unlock()
	var pt []byte
	if d.aead != nil {
		copy(d.nonce[len(d.nonce)-p.ivLen:], raw[ivStart:ctStart])
		var err error
		// The AEAD authenticates before it releases any plaintext.
		pt, err = d.aead.Open(make([]byte, 0, icvStart-ctStart), d.nonce, raw[ctStart:], raw[:ivStart])
		if err != nil {
			return nil, ErrIntegrity
		}
	} else {
		d.mac.Reset()
		d.mac.Write(raw[:icvStart])
		d.sum = d.mac.Sum(d.sum[:0])
		if !hmac.Equal(d.sum[:p.icvLen], raw[icvStart:]) {
			return nil, ErrIntegrity
		}
		ct := raw[ctStart:icvStart]
		if len(ct)%p.block != 0 {
			return nil, syntaxErrorf("ciphertext of %d octets is not a multiple of the %d-octet block", len(ct), p.block)
		}
		pt = make([]byte, len(ct))
		cipher.NewCBCDecrypter(d.cbc, raw[ivStart:ctStart]).CryptBlocks(pt, ct)
	}
	// RFC 7296 3.14: the receiver MUST accept any Pad Length that leaves the
	// plaintext aligned; the padding's content is not checked.
	padLen := int(pt[len(pt)-1])
	if padLen+1 > len(pt) {
		return nil, syntaxErrorf("pad length %d exceeds the %d-octet plaintext", padLen, len(pt))
	}
	return pt[:len(pt)-padLen-1], nil
}

// syntaxErrorf reports an authenticated SK or SKF payload whose plaintext is
// malformed: the peer is answered with INVALID_SYNTAX (RFC 7296 3.10.1).
// Callers find the *wire.Error with errors.As or errors.Is.
func syntaxErrorf(format string, args ...any) error {
	return fmt.Errorf("keys: %w", &wire.Error{Notify: wire.INVALID_SYNTAX, Reason: fmt.Sprintf(format, args...)})
}
