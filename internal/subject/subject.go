// Package subject turns an NHS number into the subject of a disclosure
// record: a keyed hash (HMAC-SHA256) that lets the hub find everything it
// shared about one person without keeping the number itself in the record.
//
// The key is kept apart from the data it protects: in the environment
// (EnvKey) or in a file of its own (FileName) beside the database, never in
// the database.
package subject

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/iceshub/iceshub/internal/nhsnumber"
)

// MinKeyBytes is the shortest key accepted: as long as the hash.
const MinKeyBytes = 32

// Prefix starts every subject, so that nobody mistakes one for an NHS
// number or any other real identifier.
const Prefix = "sbj_"

// EnvKey is the environment variable that may hold the key, hex or base64.
const EnvKey = "ICESHUB_SUBJECT_KEY"

// FileName is the key file the hub creates in its data directory when the
// environment holds no key.
const FileName = "subject.key"

// ErrNoKey is returned by Load when neither the environment nor the data
// directory holds a key and it was not asked to create one.
var ErrNoKey = errors.New("subject: no subject key")

// Key is the secret of the subject hash. The zero Key is not usable (IsZero);
// build one with NewKey, ParseKey or Load. A Key is safe for concurrent use
// and never prints its bytes.
type Key struct{ b []byte }

// NewKey returns a Key holding a copy of b, or an error when b is shorter
// than MinKeyBytes.
func NewKey(b []byte) (Key, error) {
	if len(b) < MinKeyBytes {
		return Key{}, fmt.Errorf("subject: key is %d bytes, want at least %d", len(b), MinKeyBytes)
	}
	return Key{b: append([]byte(nil), b...)}, nil
}

// ParseKey reads a key written in hex or in base64 (standard or URL
// alphabet, padded or not). The error never repeats s.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil {
		return NewKey(b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return NewKey(b)
		}
	}
	return Key{}, errors.New("subject: key is neither hex nor base64")
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.b) == 0 }

// Bytes returns a copy of the key.
func (k Key) Bytes() []byte { return append([]byte(nil), k.b...) }

// String hides the key, so that logging a Key by mistake leaks nothing.
func (k Key) String() string { return "subject.Key(redacted)" }

// GoString hides the key from %#v too.
func (k Key) GoString() string { return k.String() }

// Of returns the subject of an NHS number: Prefix followed by the hex
// HMAC-SHA256 of the normalised number ("943 476 5919" and "9434765919" are
// one subject). It returns "" for an empty number or a zero Key.
func (k Key) Of(nhsNumber string) string {
	n := nhsnumber.Normalise(nhsNumber)
	if n == "" || k.IsZero() {
		return ""
	}
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte("iceshub/subject/v1\x00"))
	m.Write([]byte(n))
	return Prefix + hex.EncodeToString(m.Sum(nil))
}

// Load returns the key from env (the value of EnvKey, when not empty), else
// from dataDir/FileName. When neither exists and create is true it generates
// a random key, writes it to dataDir/FileName (mode 0600, creating dataDir
// if needed) and reports generated; when create is false it returns an error
// wrapping ErrNoKey.
func Load(env, dataDir string, create bool) (k Key, generated bool, err error) {
	if env != "" {
		k, err := ParseKey(env)
		if err != nil {
			return Key{}, false, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return k, false, nil
	}
	path := filepath.Join(dataDir, FileName)
	if k, err := readFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if !create {
		return Key{}, false, fmt.Errorf("%w: set %s or keep the hub's %s", ErrNoKey, EnvKey, path)
	}
	b := make([]byte, MinKeyBytes)
	if _, err := rand.Read(b); err != nil {
		return Key{}, false, fmt.Errorf("subject: generate key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("subject: create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		k, err := readFile(path)
		return k, false, err
	}
	if err != nil {
		return Key{}, false, fmt.Errorf("subject: create %s: %w", path, err)
	}
	_, werr := f.WriteString(hex.EncodeToString(b) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return Key{}, false, fmt.Errorf("subject: write %s: %w", path, err)
	}
	k, err = NewKey(b)
	return k, true, err
}

func readFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("subject: read key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
