package control

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// WriteTable writes st as the table `cygnet status` shows: one line per IKE
// SA, sorted by connection name,
//
//	site  ESTABLISHED  192.0.2.1:4500 <-> 192.0.2.2:4500  gw-a.example <-> gw-b.example  aes256gcm16-prfsha256-x25519  0123456789abcdef_i* fedcba9876543210_r  NAT:local  up 5m3s  rekey in 3h54m  rekeys 1, child rekeys 4
//
// and under it one indented line per CHILD_SA,
//
//	net  INSTALLED  tunnel,encap  c1a2b3c4_i c5d6e7f8_o  aes256gcm16  10.1.0.0/16 === 10.2.0.0/16  in 1.2 KiB 10 pkts  out 840 B 10 pkts  rekey in 52m  rekeys 3
//
// The columns of IKE SA lines are aligned with each other, as are those of
// CHILD_SA lines. As in swanctl, "*" marks our own IKE SPI, and the CHILD_SA
// SPIs are the inbound one (_i, ours) and the outbound one (_o, the peer's).
// Ages and rekey times are relative to now. The last column lists the
// lifecycle counts and flags that are not zero (lifecycleIKE,
// lifecycleChild). Text from the peer (identities) is quoted if it
// holds anything but printable characters, so that it cannot play tricks on
// a terminal.
func WriteTable(w io.Writer, st *Status, now time.Time) error {
	if st == nil || len(st.IKESAs) == 0 {
		_, err := io.WriteString(w, "no IKE SAs\n")
		return err
	}
	sas := slices.Clone(st.IKESAs)
	slices.SortStableFunc(sas, func(a, b IKESA) int { return cmp.Compare(a.Connection, b.Connection) })

	var ikeRows, childRows [][]string
	type rowRef struct {
		child bool
		i     int
	}
	var order []rowRef
	for _, sa := range sas {
		order = append(order, rowRef{false, len(ikeRows)})
		ikeRows = append(ikeRows, ikeRow(&sa, now))
		children := slices.Clone(sa.ChildSAs)
		slices.SortStableFunc(children, func(a, b ChildSA) int { return cmp.Compare(a.Name, b.Name) })
		for _, c := range children {
			order = append(order, rowRef{true, len(childRows)})
			childRows = append(childRows, childRow(&c, now))
		}
	}
	ikeWidths, childWidths := columnWidths(ikeRows), columnWidths(childRows)

	var b strings.Builder
	for _, r := range order {
		if r.child {
			b.WriteString("  ")
			writeRow(&b, childRows[r.i], childWidths)
		} else {
			writeRow(&b, ikeRows[r.i], ikeWidths)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ikeRow(sa *IKESA, now time.Time) []string {
	spiI, spiR := printable(sa.SPIi)+"_i", printable(sa.SPIr)+"_r"
	if sa.Initiator {
		spiI += "*"
	} else {
		spiR += "*"
	}
	var nat string
	switch {
	case sa.NATLocal && sa.NATRemote:
		nat = "NAT:both"
	case sa.NATLocal:
		nat = "NAT:local"
	case sa.NATRemote:
		nat = "NAT:remote"
	}
	age := "-"
	if !sa.EstablishedAt.IsZero() {
		age = "up " + formatAge(now.Sub(sa.EstablishedAt))
	}
	return []string{
		printable(sa.Connection),
		printable(sa.State),
		orDash(sa.Local) + " <-> " + orDash(sa.Remote),
		orDash(sa.LocalID) + " <-> " + orDash(sa.RemoteID),
		orDash(sa.Proposal),
		spiI + " " + spiR,
		nat,
		age,
		rekeyIn(sa.RekeyAt, now),
		lifecycleIKE(sa),
	}
}

// rekeyIn is "rekey in 52m" for a rekey due at t, "rekey due" once t has
// passed, or "" without one.
func rekeyIn(t, now time.Time) string {
	switch {
	case t.IsZero():
		return ""
	case !t.After(now):
		return "rekey due"
	}
	return "rekey in " + formatAge(t.Sub(now))
}

// lifecycleIKE lists an IKE SA's non-zero lifecycle counts: "rekeys 1,
// child rekeys 4, collisions won 1, collisions lost 1, child deletes 2,
// temporary failures 3".
func lifecycleIKE(sa *IKESA) string {
	return counts(
		count{"rekeys", sa.Rekeys},
		count{"child rekeys", sa.ChildRekeys},
		count{"collisions won", sa.CollisionsWon},
		count{"collisions lost", sa.CollisionsLost},
		count{"child deletes", sa.ChildDeletes},
		count{"temporary failures", sa.TempFailures},
	)
}

// lifecycleChild lists a CHILD_SA's non-zero counts and its flags:
// "rekeys 3, inbound only, dropped 5".
func lifecycleChild(c *ChildSA) string {
	s := counts(count{"rekeys", c.Rekeys})
	if c.InboundOnly {
		s = joinNonEmpty(s, "inbound only")
	}
	return joinNonEmpty(s, counts(count{"dropped", c.Drops}))
}

type count struct {
	name string
	n    uint64
}

// counts formats cs as "name n", comma-separated, leaving out zeros.
func counts(cs ...count) string {
	var s string
	for _, c := range cs {
		if c.n != 0 {
			s = joinNonEmpty(s, c.name+" "+strconv.FormatUint(c.n, 10))
		}
	}
	return s
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}

func childRow(c *ChildSA, now time.Time) []string {
	mode := orDash(c.Mode)
	if c.Encap {
		mode += ",encap"
	}
	return []string{
		printable(c.Name),
		printable(c.State),
		mode,
		orDash(c.SPIIn) + "_i " + orDash(c.SPIOut) + "_o",
		orDash(c.Proposal),
		tsList(c.LocalTS) + " === " + tsList(c.RemoteTS),
		"in " + formatBytes(c.BytesIn) + " " + strconv.FormatUint(c.PacketsIn, 10) + " pkts",
		"out " + formatBytes(c.BytesOut) + " " + strconv.FormatUint(c.PacketsOut, 10) + " pkts",
		rekeyIn(c.RekeyAt, now),
		lifecycleChild(c),
	}
}

func tsList(ts []string) string {
	if len(ts) == 0 {
		return "-"
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = printable(t)
	}
	return strings.Join(out, ",")
}

func columnWidths(rows [][]string) []int {
	var w []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], utf8.RuneCountInString(cell))
		}
	}
	return w
}

// writeRow writes the cells two spaces apart, padded to widths; trailing
// empty cells and padding are left out.
func writeRow(b *strings.Builder, row []string, widths []int) {
	for len(row) > 0 && row[len(row)-1] == "" {
		row = row[:len(row)-1]
	}
	for i, cell := range row {
		b.WriteString(cell)
		if i < len(row)-1 {
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
	}
	b.WriteByte('\n')
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable returns s, or s quoted if it holds a character that is not
// printable: identities come from the peer.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// formatAge formats d in at most two units: 42s, 5m3s, 3h4m, 2d5h.
func formatAge(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	}
}

// formatBytes formats n in binary units with one decimal: 840 B, 1.2 KiB.
func formatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	const units = "KMGTPE"
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i:i+1] + "iB"
}
