// Package keylog writes the keys of Cygnet's SAs to files Wireshark reads, so
// that captures can be decrypted while debugging (CONTRACT.md, "Key log for
// Wireshark"; `daemon.keylog: DIR`).
//
// A Writer appends one line per IKE SA to DIR/ikev2_decryption_table and one
// line per direction of each CHILD_SA to DIR/esp_sa, in the formats of
// Wireshark's user tables (UAT) of those names — the layout strongSwan's
// save-keys plugin writes. The lines come from keys.IKEDecryptionRecord and
// keys.ESPSARecord. It also writes DIR/preferences turning ESP decryption on,
// unless that file exists. Pointing Wireshark's configuration directory at DIR
// (or copying the files there) then decrypts IKE and ESP:
//
//	XDG_CONFIG_HOME=/tmp/conf tshark -r capture.pcap   # with DIR = /tmp/conf/wireshark
//
// The files hold every SA's secrets: anyone who can read them can decrypt the
// traffic. They are created mode 0600, and existing ones are narrowed to it.
package keylog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// File names inside the key-log directory, the names of Wireshark's tables.
const (
	IKEFile         = "ikev2_decryption_table"
	ESPFile         = "esp_sa"
	PreferencesFile = "preferences"
)

// preferences enables ESP payload decryption, off by default in Wireshark.
const preferences = "# Written by Cygnet: decrypt ESP with the keys in esp_sa.\nesp.enable_encryption_decode: TRUE\n"

// Writer appends records to the key-log files. Its methods are safe for
// concurrent use; a nil *Writer writes nothing, so callers need not check
// whether key logging is on.
type Writer struct {
	dir string

	mu       sync.Mutex
	ike, esp *os.File
	closed   bool
}

// Open opens (creating if needed) the key-log files in dir, which is created
// mode 0700 if it does not exist.
func Open(dir string) (*Writer, error) {
	if dir == "" {
		return nil, errors.New("keylog: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	ike, err := openLog(filepath.Join(dir, IKEFile))
	if err != nil {
		return nil, err
	}
	esp, err := openLog(filepath.Join(dir, ESPFile))
	if err != nil {
		ike.Close()
		return nil, err
	}
	if err := writePreferences(filepath.Join(dir, PreferencesFile)); err != nil {
		ike.Close()
		esp.Close()
		return nil, err
	}
	return &Writer{dir: dir, ike: ike, esp: esp}, nil
}

// openLog opens path for appending, mode 0600. It refuses a symbolic link
// (the daemon runs as root; a link planted in a shared directory must not
// make it write secrets elsewhere) and narrows the mode of an existing file.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keylog: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keylog: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("keylog: %s is not a regular file", path)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("keylog: %w", err)
		}
	}
	return f, nil
}

func writePreferences(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil // the operator's own preferences: leave them alone
	}
	if err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	_, err = f.WriteString(preferences)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keylog: %w", err)
	}
	return nil
}

// Dir returns the key-log directory.
func (w *Writer) Dir() string {
	if w == nil {
		return ""
	}
	return w.dir
}

// IKE appends an ikev2_decryption_table record (keys.IKEDecryptionRecord).
// An empty record (a suite Wireshark cannot decrypt) writes nothing.
func (w *Writer) IKE(record string) error {
	return w.append(func() *os.File { return w.ike }, record)
}

// ESP appends esp_sa records (keys.ESPSARecord), one per direction. Empty
// records write nothing.
func (w *Writer) ESP(records ...string) error {
	var errs []error
	for _, r := range records {
		errs = append(errs, w.append(func() *os.File { return w.esp }, r))
	}
	return errors.Join(errs...)
}

// append writes record and a newline in one write: with O_APPEND a short write
// lands whole, so concurrent daemons (or a tail -f) never see a torn line.
func (w *Writer) append(file func() *os.File, record string) error {
	if w == nil || record == "" {
		return nil
	}
	line := make([]byte, 0, len(record)+1)
	line = append(line, record...)
	line = append(line, '\n')
	defer clear(line) // the record holds keys
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("keylog: writer is closed")
	}
	if _, err := file().Write(line); err != nil {
		// The error names the file, never the record.
		return fmt.Errorf("keylog: %w", err)
	}
	return nil
}

// Close closes the files.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return errors.Join(w.ike.Close(), w.esp.Close())
}
