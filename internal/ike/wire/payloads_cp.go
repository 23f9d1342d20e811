package wire

import (
	"golang.org/x/crypto/cryptobyte"
)

// Config is the Configuration payload, CP (RFC 7296 3.15).
type Config struct {
	CfgType ConfigType
	Attrs   []ConfigAttr
}

// ConfigAttr is a configuration attribute (RFC 7296 3.15.1).
type ConfigAttr struct {
	Type  ConfigAttrType // 15 bits
	Value []byte         // empty in a request for "any value"
}

func (p *Config) Type() PayloadType { return PayloadCP }

// cfgReservedBit is the R bit in front of the attribute type (RFC 7296
// 3.15.1): sent as zero, ignored on receipt.
const cfgReservedBit = 0x8000

// checkConfigAttr returns a reason if the value length of an attribute
// defined by RFC 7296 3.15.1 (its table of lengths) is out of range. Other
// attributes are accepted as they are.
func checkConfigAttr(t ConfigAttrType, v []byte) string {
	var ok bool
	switch t {
	case INTERNAL_IP4_ADDRESS, INTERNAL_IP4_NETMASK, INTERNAL_IP4_DNS, INTERNAL_IP4_NBNS, INTERNAL_IP4_DHCP:
		ok = len(v) == 0 || len(v) == 4
	case INTERNAL_IP6_ADDRESS, INTERNAL_IP6_SUBNET: // address and prefix length
		ok = len(v) == 0 || len(v) == 17
	case INTERNAL_IP6_DNS, INTERNAL_IP6_DHCP:
		ok = len(v) == 0 || len(v) == 16
	case INTERNAL_IP4_SUBNET: // address and netmask
		ok = len(v) == 0 || len(v) == 8
	case SUPPORTED_ATTRIBUTES: // a list of 2-octet types
		ok = len(v)%2 == 0
	default:
		return ""
	}
	if ok {
		return ""
	}
	return sprintf("%v of %d octets", t, len(v))
}

func parseConfig(s cryptobyte.String) (*Config, error) {
	var t uint8
	if !s.ReadUint8(&t) || !s.Skip(3) {
		return nil, syntaxError("body truncated: want at least 4 octets")
	}
	p := &Config{CfgType: ConfigType(t)}
	for i := 1; len(s) > 0; i++ {
		var (
			typ   uint16
			value []byte
		)
		if !s.ReadUint16(&typ) || !s.ReadUint16LengthPrefixed((*cryptobyte.String)(&value)) {
			return nil, syntaxError("attribute %d runs past the end", i)
		}
		a := ConfigAttr{Type: ConfigAttrType(typ &^ cfgReservedBit), Value: clip(value)}
		if reason := checkConfigAttr(a.Type, a.Value); reason != "" {
			return nil, syntaxError("attribute %d: %s", i, reason)
		}
		p.Attrs = append(p.Attrs, a)
	}
	return p, nil
}

func (p *Config) marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.CfgType))
	b.AddBytes([]byte{0, 0, 0})
	for _, a := range p.Attrs {
		switch {
		case a.Type&cfgReservedBit != 0:
			b.SetError(marshalError("configuration attribute type %d does not fit in 15 bits", a.Type))
			return
		case len(a.Value) > 0xffff:
			b.SetError(marshalError("%v of %d octets", a.Type, len(a.Value)))
			return
		case checkConfigAttr(a.Type, a.Value) != "":
			b.SetError(marshalError("CP payload: %s", checkConfigAttr(a.Type, a.Value)))
			return
		}
		b.AddUint16(uint16(a.Type))
		b.AddUint16(uint16(len(a.Value)))
		b.AddBytes(a.Value)
	}
}
