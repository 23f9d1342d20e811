package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration file. Load and Parse return all of
// them at once, joined with errors.Join (one per line, sorted by line); use
// errors.As on the individual errors (Unwrap() []error) to inspect them.
//
// Its text is `file:line: key: message`, e.g.
//
//	/etc/cygnet/cygnet.yaml:14: connections.site.proposals[0]: unknown algorithm "aes257"
type Error struct {
	File string // the path given to Load or Parse
	Line int    // 1-based; 0 if the problem has no line (a YAML error without one)
	Key  string // where in the document, e.g. "connections.site.proposals[0]"; "" for the top level
	Msg  string // never contains a secret
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxVisits bounds the work a document can cause through aliases: every
// mapping entry and list item visited counts, including each time an alias is
// followed, so that a small "billion laughs" document cannot make Parse run
// for hours. Real configurations stay far below it. (A variable for tests.)
var maxVisits = 1_000_000

// decoder walks a yaml.Node tree along the schema and collects errors.
type decoder struct {
	file     string
	dir      string // absolute directory that relative paths are resolved against
	readFile func(path string) ([]byte, error)
	files    map[string]fileResult // each file is read once per Parse

	errs      []*Error
	visits    int
	exhausted bool
}

type fileResult struct {
	data []byte
	err  error
}

// value is a node of the document together with the key path that leads to it.
type value struct {
	node    *yaml.Node // nil: absent or null; aliases are resolved
	path    string
	keyLine int // line of the key that holds the value (for "missing" errors)
}

func (v value) present() bool { return v.node != nil }

func (v value) line() int {
	if v.node != nil && v.node.Line > 0 {
		return v.node.Line
	}
	return v.keyLine
}

func (d *decoder) errorf(line int, key, format string, args ...any) {
	if d.exhausted {
		return // what is left half-decoded would only cause follow-on errors
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// errAt reports a problem with v's value.
func (d *decoder) errAt(v value, format string, args ...any) {
	d.errorf(v.line(), v.path, format, args...)
}

// err returns the collected errors sorted by line, joined; nil if none.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// visit charges one node against the budget; it reports false once the
// budget is spent, and then callers stop descending.
func (d *decoder) visit(line int) bool {
	d.visits++
	if d.visits <= maxVisits {
		return true
	}
	if !d.exhausted {
		d.errorf(line, "", "document too large (more than %d values after alias expansion)", maxVisits)
		d.exhausted = true
	}
	return false
}

var (
	yamlLineErr       = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlUnknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yamlParserProblems are the problems yaml.v3 (v3.0.1) reports as parser,
// not scanner, errors. For those it prints the 0-based line of its mark
// (decode.go, parser.fail), one less than the line an editor shows;
// TestYAMLSyntaxErrorLines notices if an update changes that.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// parseYAML parses exactly one YAML document and returns its root, or nil
// for an empty document.
func (d *decoder) parseYAML(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 is third-party code that has panicked on malformed input
		// before (CVE-2022-28948); a configuration error must never crash the
		// daemon during a reload.
		if r := recover(); r != nil {
			root = nil
			d.errorf(0, "", "YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF {
			d.yamlError(data, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		d.yamlError(data, err)
		return nil
	default:
		d.errorf(extra.Line, "", "more than one YAML document; a configuration is a single document")
		return nil
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	return &doc
}

func (d *decoder) yamlError(data []byte, err error) {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if slices.Contains(yamlParserProblems, m[2]) {
			line++
		}
		d.errorf(line, "", "%s", m[2])
		return
	}
	line := 0
	if m := yamlUnknownAnchor.FindStringSubmatch(msg); m != nil {
		// yaml.v3 gives no line for this one; the first use is a good guess.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = bytes.Count(data[:i], []byte("\n")) + 1
		}
	}
	d.errorf(line, "", "%s", strings.TrimPrefix(msg, "yaml: "))
}

// deref follows an alias to its anchored node and maps null to nil.
func deref(n *yaml.Node) *yaml.Node {
	// An anchor cannot be put on an alias, so one step is enough; the bound
	// is only a guard against hand-built trees.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 4; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode || isNull(n) {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// pair is a key and its value in a mapping, after merge keys are expanded.
type pair struct {
	key *yaml.Node
	val *yaml.Node
}

// pairs returns the entries of a mapping with YAML merge keys ("<<: *anchor")
// expanded: explicit keys win over merged ones, and among merged mappings the
// first one that has a key wins (as the YAML merge key spec says). Duplicate
// explicit keys are left in; the caller reports them.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var explicit, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			explicit = append(explicit, pair{k, v})
			continue
		}
		if depth >= 8 {
			d.errorf(k.Line, path, "merge keys nested too deeply")
			continue
		}
		src := deref(v)
		var srcs []*yaml.Node
		switch {
		case src == nil:
		case src.Kind == yaml.SequenceNode:
			for _, s := range src.Content {
				srcs = append(srcs, deref(s))
			}
		default:
			srcs = []*yaml.Node{src}
		}
		for _, s := range srcs {
			if s == nil || s.Kind != yaml.MappingNode {
				d.errorf(k.Line, path, "the value of a merge key (<<) must be a mapping or a list of mappings")
				continue
			}
			merged = append(merged, d.pairs(s, path, depth+1)...)
		}
	}
	if len(merged) == 0 {
		return explicit
	}
	seen := make(map[string]bool, len(explicit)+len(merged))
	for _, p := range explicit {
		seen[p.key.Value] = true
	}
	out := explicit
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

// entry is one key of a mapping whose keys are names (connections, children).
type entry struct {
	name    string
	keyLine int
	parent  string // path of the mapping the entry is in
	val     value
}

// entries returns the entries of a name-keyed mapping in file order,
// reporting duplicate names; what names the kind of key ("connection").
func (d *decoder) entries(v value, what string) []entry {
	if !v.present() {
		return nil
	}
	if v.node.Kind != yaml.MappingNode {
		d.errAt(v, "expected a mapping of %s names, got %s", what, kindName(v.node))
		return nil
	}
	var out []entry
	first := map[string]int{}
	for _, p := range d.pairs(v.node, v.path, 0) {
		if !d.visit(p.key.Line) {
			break
		}
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key.Line, v.path, "a %s name must be a plain value, got %s", what, kindName(p.key))
			continue
		}
		name := p.key.Value
		if l, dup := first[name]; dup {
			d.errorf(p.key.Line, v.path, "duplicate %s name %q (first defined at line %d)", what, name, l)
			continue
		}
		first[name] = p.key.Line
		seg := name
		if !validName(name) {
			seg = strconv.Quote(name) // keep error lines one line each
		}
		out = append(out, entry{name: name, keyLine: p.key.Line, parent: v.path, val: value{
			node: deref(p.val), path: joinPath(v.path, seg), keyLine: p.key.Line,
		}})
	}
	return out
}

// object is a mapping with a fixed set of keys.
type object struct {
	path   string
	line   int
	fields map[string]value
}

// get returns the value of key, or an absent value.
func (o *object) get(key string) value {
	if v, ok := o.fields[key]; ok {
		return v
	}
	return value{path: joinPath(o.path, key), keyLine: o.line}
}

// object decodes a mapping whose keys must be among keys. Unknown and
// duplicate keys are reported. An absent value gives an empty object (all
// defaults); a value that is not a mapping is reported and gives nil.
func (d *decoder) object(v value, keys ...string) *object {
	o := &object{path: v.path, line: v.keyLine, fields: map[string]value{}}
	if !v.present() {
		return o
	}
	if v.node.Kind != yaml.MappingNode {
		d.errAt(v, "expected a mapping, got %s", kindName(v.node))
		return nil
	}
	if o.line == 0 {
		o.line = v.node.Line
	}
	first := map[string]int{}
	for _, p := range d.pairs(v.node, v.path, 0) {
		if !d.visit(p.key.Line) {
			break
		}
		k := p.key.Value
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key.Line, v.path, "keys must be plain values, got %s", kindName(p.key))
			continue
		}
		if v.path == "" && strings.HasPrefix(k, "x-") {
			continue // top-level extension keys hold YAML anchors for reuse
		}
		if !slices.Contains(keys, k) {
			msg := fmt.Sprintf("unknown key %q", k)
			if s := suggest(k, keys); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(p.key.Line, v.path, "%s", msg)
			continue
		}
		if l, dup := first[k]; dup {
			d.errorf(p.key.Line, v.path, "duplicate key %q (first at line %d)", k, l)
			continue
		}
		first[k] = p.key.Line
		if n := deref(p.val); n != nil {
			o.fields[k] = value{node: n, path: joinPath(v.path, k), keyLine: p.key.Line}
		}
	}
	return o
}

// list returns the items of a list. A single value stands for a list of one,
// so `certs: a.crt` means `certs: [a.crt]`.
func (d *decoder) list(v value) []value {
	if !v.present() {
		return nil
	}
	switch v.node.Kind {
	case yaml.ScalarNode:
		return []value{v}
	case yaml.SequenceNode:
	default:
		d.errAt(v, "expected a list, got %s", kindName(v.node))
		return nil
	}
	items := make([]value, 0, len(v.node.Content))
	for i, n := range v.node.Content {
		if !d.visit(n.Line) {
			break
		}
		item := value{node: deref(n), path: fmt.Sprintf("%s[%d]", v.path, i), keyLine: n.Line}
		if item.node == nil {
			d.errorf(n.Line, item.path, "empty list item")
			continue
		}
		items = append(items, item)
	}
	return items
}

// str returns a scalar's text. Numbers and booleans are taken as written
// (`id: 192.0.2.1`, `psk: 12345`). ok is false if v is absent or not a
// scalar (reported).
func (d *decoder) str(v value) (s string, ok bool) {
	if !v.present() {
		return "", false
	}
	if v.node.Kind != yaml.ScalarNode {
		d.errAt(v, "expected a single value, got %s", kindName(v.node))
		return "", false
	}
	return v.node.Value, true
}

// required is str for a key that must be present.
func (d *decoder) required(v value, why string) (string, bool) {
	if !v.present() {
		d.errorf(v.keyLine, v.path, "missing%s", why)
		return "", false
	}
	return d.str(v)
}

// boolean accepts true/false and strongSwan's yes/no.
func (d *decoder) boolean(v value, def bool) bool {
	s, ok := d.str(v)
	if !ok {
		return def
	}
	switch strings.ToLower(s) {
	case "true", "yes":
		return true
	case "false", "no":
		return false
	}
	d.errAt(v, "expected true or false, got %q", s)
	return def
}

func (d *decoder) intIn(v value, def, lo, hi int) int {
	s, ok := d.str(v)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || n < int64(lo) || n > int64(hi) {
		d.errAt(v, "expected an integer from %d to %d, got %q", lo, hi, s)
		return def
	}
	return int(n)
}

func (d *decoder) uint64(v value) (uint64, bool) {
	s, ok := d.str(v)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		d.errAt(v, "expected a non-negative integer, got %q", s)
		return 0, false
	}
	return n, true
}

// duration parses a Go duration ("90s", "4h", "1h30m"; "0" is zero).
func (d *decoder) duration(v value, def time.Duration) time.Duration {
	s, ok := d.str(v)
	if !ok {
		return def
	}
	t, err := time.ParseDuration(s)
	if err != nil || t < 0 {
		d.errAt(v, "invalid duration %q (Go syntax, e.g. 90s, 30m, 4h; 0 for off)", s)
		return def
	}
	return t
}

// enum returns one of allowed. aliases maps accepted spellings (strongSwan's)
// onto allowed values.
func (d *decoder) enum(v value, def string, allowed []string, aliases map[string]string) string {
	s, ok := d.str(v)
	if !ok {
		return def
	}
	if slices.Contains(allowed, s) {
		return s
	}
	if a, ok := aliases[s]; ok {
		return a
	}
	d.errAt(v, "expected one of %s, got %q", strings.Join(allowed, ", "), s)
	return def
}

// addr parses an IP address literal (hostnames are not resolved).
func (d *decoder) addr(v value) (netip.Addr, bool) {
	s, ok := d.str(v)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		d.errAt(v, "invalid IP address %q", s)
		return netip.Addr{}, false
	}
	return a, true
}

// addrOrAny is addr that also accepts "%any".
func (d *decoder) addrOrAny(v value) (a netip.Addr, isAny, ok bool) {
	if s, isStr := d.str(v); !isStr {
		return netip.Addr{}, false, false
	} else if s == "%any" {
		return netip.Addr{}, true, false
	}
	a, ok = d.addr(v)
	return a, false, ok
}

// stripPrefix removes the "algs: " or "auth: " that other packages' errors
// start with, since the file:line prefix already says where the error is.
func stripPrefix(err error) string {
	msg := err.Error()
	for _, p := range []string{"algs: ", "auth: "} {
		if m, ok := strings.CutPrefix(msg, p); ok {
			return m
		}
	}
	return msg
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the key in keys closest to k if it is a likely typo.
func suggest(k string, keys []string) string {
	best, bestDist := "", 3
	for _, c := range keys {
		if dist := editDistance(k, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
