package sa

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/cygnet-ipsec/cygnet/internal/ike/wire"
)

// errorf makes an error of this package: "ike: ...".
func errorf(format string, args ...any) error {
	return fmt.Errorf("ike: "+format, args...)
}

func spiString(spi uint64) string   { return fmt.Sprintf("%016x", spi) }
func spi32String(spi uint32) string { return fmt.Sprintf("%08x", spi) }

// msgAttrs are the log attributes of a message: msgid and exchange.
func msgAttrs(m *wire.Message) []any {
	return []any{
		slog.Uint64("msgid", uint64(m.MessageID)),
		slog.String("exchange", m.Exchange.String()),
		slog.Bool("response", m.IsResponse()),
	}
}

// logExchange writes the one line per message sent or received, with the
// payloads in strongSwan's style: "IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]".
func (sa *IKESA) logExchange(verb string, h wire.Header, payloads []wire.Payload, packets int) {
	if !sa.logEnabled(slog.LevelInfo) {
		return
	}
	kind := "request"
	if h.IsResponse() {
		kind = "response"
	}
	attrs := []any{
		slog.Uint64("msgid", uint64(h.MessageID)),
		slog.String("exchange", h.Exchange.String()),
		slog.String("payloads", payloadList(payloads)),
	}
	if packets > 1 {
		attrs = append(attrs, slog.Int("fragments", packets))
	}
	sa.log.Info(verb+" "+h.Exchange.String()+" "+kind, attrs...)
}

// payloadList names payloads as strongSwan logs them.
func payloadList(ps []wire.Payload) string {
	var b strings.Builder
	b.WriteString("[")
	for _, p := range ps {
		b.WriteByte(' ')
		switch p := p.(type) {
		case *wire.Notify:
			b.WriteString("N(")
			b.WriteString(p.NotifyType.String())
			b.WriteString(")")
		case *wire.Delete:
			b.WriteString("D")
		case *wire.Nonce:
			b.WriteString("No")
		case *wire.SA:
			b.WriteString("SA")
		case *wire.KE:
			b.WriteString("KE")
		case *wire.ID:
			if p.Kind == wire.PayloadIDi {
				b.WriteString("IDi")
			} else {
				b.WriteString("IDr")
			}
		case *wire.TS:
			if p.Kind == wire.PayloadTSi {
				b.WriteString("TSi")
			} else {
				b.WriteString("TSr")
			}
		case *wire.Cert:
			b.WriteString("CERT")
		case *wire.CertReq:
			b.WriteString("CERTREQ")
		case *wire.Auth:
			b.WriteString("AUTH")
		default:
			b.WriteString(strconv.Itoa(int(p.Type())))
		}
	}
	b.WriteString(" ]")
	return b.String()
}
