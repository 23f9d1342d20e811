package testbed

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// A minimal client of strongSwan's VICI protocol (src/libcharon/plugins/vici/README.md
// in strongSwan's tree): a 32-bit length-prefixed byte stream carrying packets of a
// type byte, an optional name and a message tree of sections, key/values and lists.
// Tests use it instead of parsing `swanctl --raw` output, which prints values with
// spaces (identities such as "C=CH, O=Cygnet, CN=x") unquoted and so is ambiguous.

// VICI packet types.
const (
	viciCmdRequest      = 0
	viciCmdResponse     = 1
	viciCmdUnknown      = 2
	viciEventRegister   = 3
	viciEventUnregister = 4
	viciEventConfirm    = 5
	viciEventUnknown    = 6
	viciEvent           = 7
)

// VICI message element types.
const (
	viciSectionStart = 1
	viciSectionEnd   = 2
	viciKeyValue     = 3
	viciListStart    = 4
	viciListItem     = 5
	viciListEnd      = 6
)

const (
	// viciMaxSegment is the server's limit on one transport segment (512 KiB).
	viciMaxSegment = 512 * 1024
	// viciMaxDepth bounds section nesting when decoding (charon's trees are shallow).
	viciMaxDepth = 64
)

// ViciKind says what a ViciElem holds.
type ViciKind uint8

const (
	ViciValue   ViciKind = iota // a key/value pair: Value
	ViciList                    // a named list: List
	ViciSection                 // a named sub-section: Section
)

func (k ViciKind) String() string {
	switch k {
	case ViciValue:
		return "value"
	case ViciList:
		return "list"
	case ViciSection:
		return "section"
	}
	return fmt.Sprintf("ViciKind(%d)", uint8(k))
}

// ViciElem is one named element of a VICI message, in wire order.
type ViciElem struct {
	Kind    ViciKind
	Key     string
	Value   string
	List    []string
	Section *ViciMessage
}

// ViciMessage is a VICI message tree; element order is kept, because charon
// gives it meaning in places (proposals, auth rounds).
type ViciMessage struct {
	Elems []ViciElem
}

// Add appends a key/value pair and returns m, for chaining.
func (m *ViciMessage) Add(key, value string) *ViciMessage {
	m.Elems = append(m.Elems, ViciElem{Kind: ViciValue, Key: key, Value: value})
	return m
}

// AddList appends a list.
func (m *ViciMessage) AddList(key string, items ...string) *ViciMessage {
	m.Elems = append(m.Elems, ViciElem{Kind: ViciList, Key: key, List: append([]string{}, items...)})
	return m
}

// AddSection appends a sub-section.
func (m *ViciMessage) AddSection(key string, s *ViciMessage) *ViciMessage {
	if s == nil {
		s = &ViciMessage{}
	}
	m.Elems = append(m.Elems, ViciElem{Kind: ViciSection, Key: key, Section: s})
	return m
}

func (m *ViciMessage) find(key string, kind ViciKind) *ViciElem {
	if m == nil {
		return nil
	}
	for i := range m.Elems {
		if m.Elems[i].Key == key && m.Elems[i].Kind == kind {
			return &m.Elems[i]
		}
	}
	return nil
}

// Get returns the value of key, or "" if m has no such key/value.
func (m *ViciMessage) Get(key string) string {
	if e := m.find(key, ViciValue); e != nil {
		return e.Value
	}
	return ""
}

// GetList returns the items of the list key, or nil.
func (m *ViciMessage) GetList(key string) []string {
	if e := m.find(key, ViciList); e != nil {
		return e.List
	}
	return nil
}

// GetSection returns the sub-section key, or nil.
func (m *ViciMessage) GetSection(key string) *ViciMessage {
	if e := m.find(key, ViciSection); e != nil {
		return e.Section
	}
	return nil
}

// String renders m in swanctl.conf-like syntax, for logs and errors.
func (m *ViciMessage) String() string {
	var b strings.Builder
	m.format(&b, 0)
	return b.String()
}

func (m *ViciMessage) format(b *strings.Builder, depth int) {
	if m == nil {
		return
	}
	ind := strings.Repeat("  ", depth)
	for _, e := range m.Elems {
		switch e.Kind {
		case ViciValue:
			fmt.Fprintf(b, "%s%s = %s\n", ind, e.Key, e.Value)
		case ViciList:
			fmt.Fprintf(b, "%s%s = [%s]\n", ind, e.Key, strings.Join(e.List, ", "))
		case ViciSection:
			fmt.Fprintf(b, "%s%s {\n", ind, e.Key)
			e.Section.format(b, depth+1)
			fmt.Fprintf(b, "%s}\n", ind)
		}
	}
}

// ViciError is a malformed VICI message or packet.
type ViciError struct{ Msg string }

func (e *ViciError) Error() string { return "testbed: vici: " + e.Msg }

func viciErrorf(format string, args ...any) error {
	return &ViciError{Msg: fmt.Sprintf(format, args...)}
}

// MarshalVici encodes m. Names longer than 255 bytes and values longer than
// 65535 bytes cannot be encoded and give an error.
func MarshalVici(m *ViciMessage) ([]byte, error) {
	return m.appendTo(nil, 0)
}

func (m *ViciMessage) appendTo(b []byte, depth int) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	if depth > viciMaxDepth {
		return nil, viciErrorf("sections nested deeper than %d", viciMaxDepth)
	}
	var err error
	for _, e := range m.Elems {
		if len(e.Key) > 255 {
			return nil, viciErrorf("name of %d bytes exceeds 255", len(e.Key))
		}
		switch e.Kind {
		case ViciValue:
			b = append(b, viciKeyValue, byte(len(e.Key)))
			b = append(b, e.Key...)
			if b, err = appendViciValue(b, e.Value); err != nil {
				return nil, err
			}
		case ViciList:
			b = append(b, viciListStart, byte(len(e.Key)))
			b = append(b, e.Key...)
			for _, it := range e.List {
				b = append(b, viciListItem)
				if b, err = appendViciValue(b, it); err != nil {
					return nil, err
				}
			}
			b = append(b, viciListEnd)
		case ViciSection:
			b = append(b, viciSectionStart, byte(len(e.Key)))
			b = append(b, e.Key...)
			if b, err = e.Section.appendTo(b, depth+1); err != nil {
				return nil, err
			}
			b = append(b, viciSectionEnd)
		default:
			return nil, viciErrorf("element %q has unknown kind %d", e.Key, e.Kind)
		}
	}
	return b, nil
}

func appendViciValue(b []byte, v string) ([]byte, error) {
	if len(v) > 0xffff {
		return nil, viciErrorf("value of %d bytes exceeds 65535", len(v))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...), nil
}

// viciReader walks an encoded message; every read checks the remaining length first.
type viciReader struct{ b []byte }

func (r *viciReader) byte() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *viciReader) name() (string, bool) {
	n, ok := r.byte()
	if !ok || len(r.b) < int(n) {
		return "", false
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s, true
}

func (r *viciReader) value() (string, bool) {
	if len(r.b) < 2 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(r.b))
	if len(r.b)-2 < n {
		return "", false
	}
	s := string(r.b[2 : 2+n])
	r.b = r.b[2+n:]
	return s, true
}

// UnmarshalVici decodes a VICI message. It rejects truncated elements,
// unbalanced sections and lists, and elements out of place.
func UnmarshalVici(b []byte) (*ViciMessage, error) {
	r := &viciReader{b: b}
	root := &ViciMessage{}
	stack := []*ViciMessage{root}
	var list *ViciElem // the open list, if any
	for len(r.b) > 0 {
		typ, _ := r.byte()
		cur := stack[len(stack)-1]
		if list != nil && typ != viciListItem && typ != viciListEnd {
			return nil, viciErrorf("element type %d inside list %q", typ, list.Key)
		}
		switch typ {
		case viciSectionStart:
			name, ok := r.name()
			if !ok {
				return nil, viciErrorf("truncated section name")
			}
			if len(stack) > viciMaxDepth {
				return nil, viciErrorf("sections nested deeper than %d", viciMaxDepth)
			}
			s := &ViciMessage{}
			cur.Elems = append(cur.Elems, ViciElem{Kind: ViciSection, Key: name, Section: s})
			stack = append(stack, s)
		case viciSectionEnd:
			if len(stack) == 1 {
				return nil, viciErrorf("section end without section start")
			}
			stack = stack[:len(stack)-1]
		case viciKeyValue:
			name, ok := r.name()
			if !ok {
				return nil, viciErrorf("truncated key name")
			}
			v, ok := r.value()
			if !ok {
				return nil, viciErrorf("truncated value of %q", name)
			}
			cur.Elems = append(cur.Elems, ViciElem{Kind: ViciValue, Key: name, Value: v})
		case viciListStart:
			name, ok := r.name()
			if !ok {
				return nil, viciErrorf("truncated list name")
			}
			cur.Elems = append(cur.Elems, ViciElem{Kind: ViciList, Key: name, List: []string{}})
			list = &cur.Elems[len(cur.Elems)-1]
		case viciListItem:
			if list == nil {
				return nil, viciErrorf("list item outside a list")
			}
			v, ok := r.value()
			if !ok {
				return nil, viciErrorf("truncated item of list %q", list.Key)
			}
			list.List = append(list.List, v)
		case viciListEnd:
			if list == nil {
				return nil, viciErrorf("list end without list start")
			}
			list = nil
		default:
			return nil, viciErrorf("unknown element type %d", typ)
		}
	}
	if list != nil {
		return nil, viciErrorf("list %q not closed", list.Key)
	}
	if len(stack) != 1 {
		return nil, viciErrorf("%d sections not closed", len(stack)-1)
	}
	return root, nil
}

// Vici is one connection to charon's VICI socket. Only one command can be
// active on a connection at a time; it is not safe for concurrent use.
type Vici struct {
	conn    net.Conn
	timeout time.Duration
}

// DialVici connects to the VICI unix socket at path. Every later exchange
// must complete within timeout (which bounds charon's answer time, so give
// Initiate's own timeout plus a margin).
func DialVici(path string, timeout time.Duration) (*Vici, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("testbed: vici: %w", err)
	}
	return &Vici{conn: c, timeout: timeout}, nil
}

// Close closes the connection.
func (v *Vici) Close() error { return v.conn.Close() }

// SetTimeout changes the bound on each later exchange.
func (v *Vici) SetTimeout(d time.Duration) { v.timeout = d }

func (v *Vici) writePacket(typ byte, name string, msg *ViciMessage) error {
	body, err := MarshalVici(msg)
	if err != nil {
		return err
	}
	if len(name) > 255 {
		return viciErrorf("packet name of %d bytes exceeds 255", len(name))
	}
	pkt := make([]byte, 4, 4+2+len(name)+len(body))
	pkt = append(pkt, typ)
	if typ == viciCmdRequest || typ == viciEventRegister || typ == viciEventUnregister {
		pkt = append(pkt, byte(len(name)))
		pkt = append(pkt, name...)
	}
	pkt = append(pkt, body...)
	if len(pkt)-4 > viciMaxSegment {
		return viciErrorf("request of %d bytes exceeds the 512 KiB segment limit", len(pkt)-4)
	}
	binary.BigEndian.PutUint32(pkt, uint32(len(pkt)-4))
	_, err = v.conn.Write(pkt)
	return err
}

// readPacket returns the type, the name (for named types) and the raw message.
func (v *Vici) readPacket() (byte, string, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(v.conn, hdr[:]); err != nil {
		return 0, "", nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > viciMaxSegment {
		return 0, "", nil, viciErrorf("segment length %d out of range", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(v.conn, buf); err != nil {
		return 0, "", nil, err
	}
	typ, rest := buf[0], buf[1:]
	var name string
	if typ == viciEvent || typ == viciCmdRequest || typ == viciEventRegister || typ == viciEventUnregister {
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return 0, "", nil, viciErrorf("truncated packet name")
		}
		name, rest = string(rest[1:1+rest[0]]), rest[1+rest[0]:]
	}
	return typ, name, rest, nil
}

func (v *Vici) deadline() {
	v.conn.SetDeadline(time.Now().Add(v.timeout))
}

// Call sends the command cmd with arguments req (nil for none) and returns
// charon's response. It does not interpret "success = no": see CallOK.
func (v *Vici) Call(cmd string, req *ViciMessage) (*ViciMessage, error) {
	return v.Stream(cmd, "", req, nil)
}

// CallOK is Call for commands that answer success/errmsg: a "success = no"
// response becomes an error carrying errmsg.
func (v *Vici) CallOK(cmd string, req *ViciMessage) (*ViciMessage, error) {
	res, err := v.Call(cmd, req)
	if err != nil {
		return nil, err
	}
	if res.Get("success") != "yes" {
		msg := res.Get("errmsg")
		if msg == "" {
			msg = "no reason given"
		}
		return res, fmt.Errorf("testbed: vici %s: %s", cmd, msg)
	}
	return res, nil
}

// Stream sends cmd while registered for event, calling fn for each event
// message that arrives before the response (list-sas streams list-sa, initiate
// streams control-log). With event "" it is a plain command.
func (v *Vici) Stream(cmd, event string, req *ViciMessage, fn func(*ViciMessage) error) (*ViciMessage, error) {
	v.deadline()
	defer v.conn.SetDeadline(time.Time{})
	if event != "" {
		if err := v.register(viciEventRegister, event); err != nil {
			return nil, err
		}
	}
	if err := v.writePacket(viciCmdRequest, cmd, req); err != nil {
		return nil, fmt.Errorf("testbed: vici %s: %w", cmd, err)
	}
	var res *ViciMessage
	var cbErr error
	for res == nil {
		typ, name, body, err := v.readPacket()
		if err != nil {
			return nil, fmt.Errorf("testbed: vici %s: %w", cmd, err)
		}
		switch typ {
		case viciCmdResponse:
			if res, err = UnmarshalVici(body); err != nil {
				return nil, err
			}
		case viciCmdUnknown:
			return nil, fmt.Errorf("testbed: vici: charon does not know command %q", cmd)
		case viciEvent:
			if name != event || fn == nil || cbErr != nil {
				continue
			}
			m, err := UnmarshalVici(body)
			if err != nil {
				return nil, err
			}
			cbErr = fn(m)
		default:
			return nil, viciErrorf("unexpected packet type %d during %s", typ, cmd)
		}
	}
	if event != "" {
		if err := v.register(viciEventUnregister, event); err != nil {
			return nil, err
		}
	}
	return res, cbErr
}

func (v *Vici) register(typ byte, event string) error {
	if err := v.writePacket(typ, event, nil); err != nil {
		return fmt.Errorf("testbed: vici event %s: %w", event, err)
	}
	for {
		t, _, _, err := v.readPacket()
		if err != nil {
			return fmt.Errorf("testbed: vici event %s: %w", event, err)
		}
		switch t {
		case viciEventConfirm:
			return nil
		case viciEventUnknown:
			return fmt.Errorf("testbed: vici: charon has no event %q", event)
		case viciEvent:
			// An event of an earlier registration may still be in flight.
			continue
		default:
			return viciErrorf("unexpected packet type %d registering %s", t, event)
		}
	}
}
