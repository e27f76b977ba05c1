// Package crypt seals what the hub stores (message payloads, held messages,
// dead letters, referral records) with AES-256-GCM, so that a copy of the
// database file alone reveals nothing about the people in it.
//
// A sealed value names the key that sealed it, so that keys can rotate: a
// Keyring holds any number of keys, one of them active; Seal always uses the
// active key and Open uses whichever key the value names. The keys are kept
// apart from the database: in the environment (EnvKey) or in a key file of
// their own (FileName, mode 0600), never in the database.
package crypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeyBytes is the length of a data key: AES-256.
const KeyBytes = 32

// EnvKey is the environment variable that may hold the data keys: one key,
// or several separated by commas, the first active; each hex or base64,
// optionally prefixed "ID:" to name it.
const EnvKey = "ICESHUB_DATA_KEY"

// FileName is the key file the hub creates in its data directory when the
// environment holds no key: one key a line, in the same form as EnvKey, the
// first line active; lines starting with # are comments.
const FileName = "data.key"

// magic starts every sealed value. It begins with a zero byte, which no JSON
// document or text the hub stores ever does, so a value stored before
// encryption (plaintext) is told apart from a sealed one.
var magic = []byte{0, 'i', 'c', 'e', 1}

// ErrUnknownKey is returned by Open for a value sealed under a key the
// Keyring does not hold.
var ErrUnknownKey = errors.New("crypt: sealed under a key this keyring does not hold")

// ErrNoKey is returned by Load when no key exists and it was not asked to
// create one.
var ErrNoKey = errors.New("crypt: no data key")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring holds the data keys. The zero Keyring holds none and seals
// nothing. A Keyring is safe for concurrent use and never prints its keys.
type Keyring struct {
	active string
	keys   map[string]cipher.AEAD
	ids    []string // in the order given, active first
}

// Key is one data key with its id.
type Key struct {
	ID    string
	Bytes []byte
}

// NewKeyring returns a keyring of keys; the first is active. It returns an
// error for no keys, a key that is not KeyBytes long, an invalid or
// repeated id.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	k := &Keyring{keys: map[string]cipher.AEAD{}}
	for i, key := range keys {
		if len(key.Bytes) != KeyBytes {
			return nil, fmt.Errorf("crypt: key %d is %d bytes, want %d", i+1, len(key.Bytes), KeyBytes)
		}
		id := key.ID
		if id == "" {
			id = DefaultID(key.Bytes)
		}
		if !idPattern.MatchString(id) {
			return nil, fmt.Errorf("crypt: key %d: id must be 1 to 32 letters, digits, _ or -", i+1)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("crypt: key id %q given twice", id)
		}
		block, err := aes.NewCipher(key.Bytes)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %q: %w", id, err)
		}
		k.keys[id] = aead
		k.ids = append(k.ids, id)
	}
	k.active = k.ids[0]
	return k, nil
}

// DefaultID names a key that the configuration does not name: the first 8
// bytes of a hash of it, in hex, so the same key always has the same id and
// the id reveals nothing about the key.
func DefaultID(key []byte) string {
	sum := sha256.Sum256(append([]byte("iceshub/data-key-id/v1\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// ActiveID returns the id of the key Seal uses.
func (k *Keyring) ActiveID() string { return k.active }

// IDs returns the ids of the keys, the active one first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// String hides the keys.
func (k *Keyring) String() string { return "crypt.Keyring(" + strings.Join(k.ids, ",") + ")" }

// GoString hides the keys from %#v too.
func (k *Keyring) GoString() string { return k.String() }

// Seal encrypts plain under the active key with a random nonce. The result
// holds a version, the key id, the nonce and the ciphertext with its tag.
// A nil plain is sealed as an empty value.
func (k *Keyring) Seal(plain []byte) ([]byte, error) {
	if k == nil || k.active == "" {
		return nil, ErrNoKey
	}
	aead := k.keys[k.active]
	out := make([]byte, 0, len(magic)+1+len(k.active)+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(out, magic...)
	out = append(out, byte(len(k.active)))
	out = append(out, k.active...)
	nonceAt := len(out)
	out = out[:nonceAt+aead.NonceSize()]
	if _, err := rand.Read(out[nonceAt:]); err != nil {
		return nil, fmt.Errorf("crypt: nonce: %w", err)
	}
	// The header (version and key id) is authenticated too: a value cannot
	// be made to claim another key.
	return aead.Seal(out, out[nonceAt:], plain, out[:nonceAt]), nil
}

// IsSealed reports whether b is a sealed value (as opposed to a value stored
// in clear before encryption).
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, magic) }

// KeyID returns the id of the key that sealed b, and false when b is not
// sealed or is malformed.
func KeyID(b []byte) (string, bool) {
	if !IsSealed(b) || len(b) < len(magic)+1 {
		return "", false
	}
	n := int(b[len(magic)])
	if len(b) < len(magic)+1+n {
		return "", false
	}
	return string(b[len(magic)+1 : len(magic)+1+n]), true
}

// Open decrypts a value Seal returned under any key of the keyring. A value
// that is not sealed (stored in clear before encryption) is returned as it
// is, so a store can be encrypted in place (`iceshub keys rotate`). It
// returns an error wrapping ErrUnknownKey for a key the keyring lacks, and
// an error for a value that was changed.
func (k *Keyring) Open(b []byte) ([]byte, error) {
	if !IsSealed(b) {
		return b, nil
	}
	id, ok := KeyID(b)
	if !ok {
		return nil, errors.New("crypt: malformed sealed value")
	}
	if k == nil {
		return nil, fmt.Errorf("%w (%q)", ErrUnknownKey, id)
	}
	aead, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w (%q)", ErrUnknownKey, id)
	}
	nonceAt := len(magic) + 1 + len(id)
	if len(b) < nonceAt+aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("crypt: malformed sealed value")
	}
	nonce := b[nonceAt : nonceAt+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, b[nonceAt+aead.NonceSize():], b[:nonceAt])
	if err != nil {
		return nil, fmt.Errorf("crypt: sealed value under key %q fails authentication (changed or corrupt)", id)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// Current reports whether b is sealed under the active key, so that rotation
// can leave it alone.
func (k *Keyring) Current(b []byte) bool {
	id, ok := KeyID(b)
	return ok && id == k.active
}

// ParseKeys reads keys in the form of EnvKey: separated by commas or lines,
// each "[ID:]KEY" with KEY in hex or base64; blank lines and lines starting
// with # are skipped. Errors never repeat a key.
func ParseKeys(s string) ([]Key, error) {
	var out []Key
	n := 0
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		id, val := "", line
		if i := strings.IndexByte(line, ':'); i >= 0 {
			id, val = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		b, err := decodeKey(val)
		if err != nil {
			return nil, fmt.Errorf("crypt: key %d: %w", n, err)
		}
		out = append(out, Key{ID: id, Bytes: b})
	}
	if len(out) == 0 {
		return nil, ErrNoKey
	}
	return out, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		if len(b) != KeyBytes {
			return nil, fmt.Errorf("key is %d bytes, want %d", len(b), KeyBytes)
		}
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeyBytes {
				return nil, fmt.Errorf("key is %d bytes, want %d", len(b), KeyBytes)
			}
			return b, nil
		}
	}
	return nil, errors.New("key is neither hex nor base64")
}

// Load returns the keyring from env (the value of EnvKey, when not empty),
// else from the key file at path. When neither exists and create is true it
// generates a key, writes it to path (mode 0600, creating the directory) and
// reports generated; when create is false it returns an error wrapping
// ErrNoKey. A key file that others may read is refused: the keys are what
// keeps the data private.
func Load(env, path string, create bool) (k *Keyring, generated bool, err error) {
	if strings.TrimSpace(env) != "" {
		keys, err := ParseKeys(env)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", EnvKey, err)
		}
		k, err := NewKeyring(keys...)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return k, false, nil
	}
	if k, err := ReadFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if !create {
		return nil, false, fmt.Errorf("%w: set %s or keep the hub's %s", ErrNoKey, EnvKey, path)
	}
	key, err := NewKey()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("crypt: create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		k, err := ReadFile(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("crypt: create %s: %w", path, err)
	}
	_, werr := f.WriteString(FormatKey(key) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("crypt: write %s: %w", path, err)
	}
	k, err = NewKeyring(key)
	return k, true, err
}

// NewKey returns a random key with its default id.
func NewKey() (Key, error) {
	b := make([]byte, KeyBytes)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("crypt: generate key: %w", err)
	}
	return Key{ID: DefaultID(b), Bytes: b}, nil
}

// FormatKey writes a key as a key file line: "ID:HEX".
func FormatKey(k Key) string {
	id := k.ID
	if id == "" {
		id = DefaultID(k.Bytes)
	}
	return id + ":" + hex.EncodeToString(k.Bytes)
}

// ReadFile reads a key file. It refuses a file that its group or others may
// read or write.
func ReadFile(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("crypt: read key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("crypt: key file %s has mode %04o: others must not read it (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypt: read key file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// AddKeyToFile puts key first in the key file at path (making it the active
// key) and keeps the others after it, so values sealed under them can still
// be opened. The file is replaced atomically with mode 0600.
func AddKeyToFile(path string, key Key) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("crypt: read key file: %w", err)
	}
	content := FormatKey(key) + "\n" + string(old)
	keys, err := ParseKeys(content)
	if err != nil {
		return err
	}
	if _, err := NewKeyring(keys...); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("crypt: write key file: %w", err)
	}
	_, werr := f.WriteString(content)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("crypt: write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("crypt: replace key file: %w", err)
	}
	return nil
}
