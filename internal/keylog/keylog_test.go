package keylog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.IKE("0102030405060708,a1a2a3a4a5a6a7a8,00,11,\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\""); err != nil {
		t.Fatal(err)
	}
	if err := w.IKE(""); err != nil { // a suite Wireshark cannot decrypt
		t.Fatal(err)
	}
	if err := w.ESP(`"IPv4","192.0.2.1","192.0.2.2","0x0000abcd","AES-GCM with 16 octet ICV [RFC4106]","0x00","NULL",""`,
		`"IPv4","192.0.2.2","192.0.2.1","0x0000dcba","AES-GCM with 16 octet ICV [RFC4106]","0x11","NULL",""`, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.IKE("x"); err == nil {
		t.Error("IKE after Close succeeded")
	}

	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode %o, want 700", m)
	}
	for _, f := range []string{IKEFile, ESPFile, PreferencesFile} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s mode %o, want 600", f, m)
		}
	}
	if got := readLines(t, filepath.Join(dir, IKEFile)); len(got) != 1 || !strings.HasPrefix(got[0], "0102030405060708,") {
		t.Errorf("%s: %q", IKEFile, got)
	}
	if got := readLines(t, filepath.Join(dir, ESPFile)); len(got) != 2 || !strings.Contains(got[1], "0x0000dcba") {
		t.Errorf("%s: %q", ESPFile, got)
	}
	if got := readLines(t, filepath.Join(dir, PreferencesFile)); !strings.Contains(strings.Join(got, "\n"), "esp.enable_encryption_decode: TRUE") {
		t.Errorf("%s: %q", PreferencesFile, got)
	}

	// Reopening appends and leaves the preferences alone.
	os.WriteFile(filepath.Join(dir, PreferencesFile), []byte("mine\n"), 0o644)
	w, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.IKE("second")
	w.Close()
	if got := readLines(t, filepath.Join(dir, IKEFile)); len(got) != 2 || got[1] != "second" {
		t.Errorf("after reopening %s: %q", IKEFile, got)
	}
	if got := readLines(t, filepath.Join(dir, PreferencesFile)); len(got) != 1 || got[0] != "mine" {
		t.Errorf("preferences overwritten: %q", got)
	}
}

func TestNarrowsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ESPFile)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // past the umask
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("existing %s left mode %o, want 600", ESPFile, m)
	}
}

func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, IKEFile)); err != nil {
		t.Skip(err)
	}
	if w, err := Open(dir); err == nil {
		w.Close()
		t.Fatal("Open followed a symbolic link")
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the link's target was created")
	}
}

func TestNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file); err == nil || !strings.HasPrefix(err.Error(), "keylog: ") {
		t.Fatalf("Open on a file: %v", err)
	}
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestNilWriter(t *testing.T) {
	var w *Writer
	if err := w.IKE("x"); err != nil {
		t.Error(err)
	}
	if err := w.ESP("x", "y"); err != nil {
		t.Error(err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}
	if w.Dir() != "" {
		t.Error("Dir of nil writer")
	}
}

func TestConcurrentLinesWhole(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				w.ESP(fmt.Sprintf("g%d-%d-%s", g, i, strings.Repeat("k", 200)))
			}
		})
	}
	wg.Wait()
	w.Close()
	lines := readLines(t, filepath.Join(dir, ESPFile))
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, strings.Repeat("k", 200)) || strings.Count(l, "g") != 1 {
			t.Fatalf("torn line %q", l)
		}
	}
}
