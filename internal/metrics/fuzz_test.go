package metrics

import (
	"strings"
	"testing"
)

// FuzzEscaping checks that any HELP text and label value yields exactly one
// HELP, one TYPE and one sample line, from which the label value reads back
// (invalid UTF-8 replaced).
func FuzzEscaping(f *testing.F) {
	f.Add("help", "value")
	f.Add("a \\ b\nc \"d\"", "\\\"\n\\n\"")
	f.Add("", "\xff\xfe")
	f.Add("\r\t\x00", "}{,=")
	f.Fuzz(func(t *testing.T, help, value string) {
		r := NewRegistry()
		r.NewCounterVec("x_total", help, "l").With(value).Inc()
		out := r.text()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "# HELP x_total ") || lines[1] != "# TYPE x_total counter" {
			t.Fatalf("malformed output %q", out)
		}
		if got, want := unescape(t, strings.TrimPrefix(lines[0], "# HELP x_total ")), strings.ToValidUTF8(help, "\uFFFD"); got != want {
			t.Fatalf("help reads back as %q, want %q", got, want)
		}
		sample, ok := strings.CutPrefix(lines[2], `x_total{l="`)
		if !ok || !strings.HasSuffix(sample, `"} 1`) {
			t.Fatalf("malformed sample %q", lines[2])
		}
		quoted := strings.TrimSuffix(sample, `"} 1`)
		for i := 0; i < len(quoted); i++ {
			if quoted[i] == '\\' {
				i++
			} else if quoted[i] == '"' {
				t.Fatalf("unescaped quote in %q", lines[2])
			}
		}
		if got, want := unescape(t, quoted), strings.ToValidUTF8(value, "\uFFFD"); got != want {
			t.Fatalf("label value reads back as %q, want %q", got, want)
		}
	})
}

func unescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			t.Fatalf("dangling backslash in %q", s)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			b.WriteByte('"')
		default:
			t.Fatalf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String()
}
