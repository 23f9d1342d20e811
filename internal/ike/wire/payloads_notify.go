package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// Notify is the Notify payload (RFC 7296 3.10).
type Notify struct {
	// Protocol is the type of the SA the SPI names. RFC 7296 3.10: "If the
	// SPI field is empty, this field MUST be sent as zero and MUST be
	// ignored on receipt", so then Parse sets it to zero and Marshal sends
	// zero.
	Protocol   ProtocolID
	SPI        []byte // empty for notifications about the IKE SA
	NotifyType NotifyType
	Data       []byte
}

// Delete is the Delete payload (RFC 7296 3.11).
type Delete struct {
	Protocol ProtocolID // IKE (no SPIs), AH or ESP
	SPIs     [][]byte   // 4 octets each for AH and ESP
}

// VendorID is the Vendor ID payload (RFC 7296 3.12).
type VendorID struct {
	Data []byte
}

func (p *Notify) Type() PayloadType   { return PayloadNotify }
func (p *Delete) Type() PayloadType   { return PayloadDelete }
func (p *VendorID) Type() PayloadType { return PayloadVendorID }

// notifySPISizeOK reports whether a Notify's SPI of n octets fits protocol p.
// RFC 7296 3.10: the SPI Size is that of the protocol's SPI, or zero if no
// SPI applies (and for the IKE SA it MUST be zero, but IKE SPIs of 8 octets
// are tolerated as RFC 4306 implementations sent them). Notifies we do not
// understand must be ignorable, so other protocols keep any SPI.
func notifySPISizeOK(p ProtocolID, n int) bool {
	switch p {
	case ProtoIKE:
		return n == 0 || n == 8
	case ProtoAH, ProtoESP:
		return n == 0 || n == 4
	}
	return true
}

func parseNotify(s cryptobyte.String) (*Notify, error) {
	var (
		protocol, spiSize uint8
		typ               uint16
		spi               []byte
	)
	if !s.ReadUint8(&protocol) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&typ) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &Notify{Protocol: ProtocolID(protocol), NotifyType: NotifyType(typ)}
	if !notifySPISizeOK(p.Protocol, int(spiSize)) {
		return nil, syntaxError("%v: SPI Size %d for protocol %v", p.NotifyType, spiSize, p.Protocol)
	}
	if !s.ReadBytes(&spi, int(spiSize)) {
		return nil, syntaxError("%v: SPI of %d octets runs past the end", p.NotifyType, spiSize)
	}
	p.SPI, p.Data = clip(spi), clip(s)
	if len(p.SPI) == 0 {
		p.Protocol = ProtoNone
	}
	return p, nil
}

func (p *Notify) marshal(b *cryptobyte.Builder) {
	if !notifySPISizeOK(p.Protocol, len(p.SPI)) || len(p.SPI) > 0xff {
		b.SetError(marshalError("%v notify: SPI of %d octets for protocol %v", p.NotifyType, len(p.SPI), p.Protocol))
		return
	}
	protocol := p.Protocol
	if len(p.SPI) == 0 {
		protocol = ProtoNone
	}
	b.AddUint8(uint8(protocol))
	b.AddUint8(uint8(len(p.SPI)))
	b.AddUint16(uint16(p.NotifyType))
	b.AddBytes(p.SPI)
	b.AddBytes(p.Data)
}

// deleteSPISize is the SPI Size a Delete payload must carry for protocol p
// (RFC 7296 3.11: zero for IKE, whose SPIs are in the header; four for AH
// and ESP), or -1 if p cannot be deleted.
func deleteSPISize(p ProtocolID) int {
	switch p {
	case ProtoIKE:
		return 0
	case ProtoAH, ProtoESP:
		return 4
	}
	return -1
}

func parseDelete(s cryptobyte.String) (*Delete, error) {
	var (
		protocol, spiSize uint8
		n                 uint16
	)
	if !s.ReadUint8(&protocol) || !s.ReadUint8(&spiSize) || !s.ReadUint16(&n) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &Delete{Protocol: ProtocolID(protocol)}
	want := deleteSPISize(p.Protocol)
	switch {
	case want < 0:
		return nil, syntaxError("Protocol ID %v", p.Protocol)
	case int(spiSize) != want:
		return nil, syntaxError("SPI Size %d for protocol %v, want %d", spiSize, p.Protocol, want)
	case p.Protocol == ProtoIKE && n != 0:
		return nil, syntaxError("%d SPIs for protocol IKE, want none", n)
	case len(s) != int(n)*want:
		return nil, syntaxError("%d SPIs of %d octets, but %d octets follow", n, want, len(s))
	}
	for range int(n) {
		var spi []byte
		s.ReadBytes(&spi, want)
		p.SPIs = append(p.SPIs, clip(spi))
	}
	return p, nil
}

func (p *Delete) marshal(b *cryptobyte.Builder) {
	want := deleteSPISize(p.Protocol)
	switch {
	case want < 0:
		b.SetError(marshalError("Delete payload for protocol %v", p.Protocol))
		return
	case p.Protocol == ProtoIKE && len(p.SPIs) != 0:
		b.SetError(marshalError("Delete payload for IKE with SPIs"))
		return
	case len(p.SPIs) > 0xffff:
		b.SetError(marshalError("Delete payload with %d SPIs", len(p.SPIs)))
		return
	}
	b.AddUint8(uint8(p.Protocol))
	b.AddUint8(uint8(want))
	b.AddUint16(uint16(len(p.SPIs)))
	for _, spi := range p.SPIs {
		if len(spi) != want {
			b.SetError(marshalError("Delete payload: %v SPI of %d octets", p.Protocol, len(spi)))
			return
		}
		b.AddBytes(spi)
	}
}

func (p *VendorID) marshal(b *cryptobyte.Builder) { b.AddBytes(p.Data) }
