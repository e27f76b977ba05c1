package store

import (
	"fmt"

	"github.com/iceshub/iceshub/internal/crypt"
)

// RotateCount is what RotateKeys did to one column.
type RotateCount struct {
	Table, Column string
	// Rewritten values were sealed under another key, or stored in clear,
	// and are now sealed under the active key.
	Rewritten int
	// Current values were sealed under the active key already.
	Current int
}

// DefaultRotateBatch is how many rows RotateKeys rewrites per transaction.
const DefaultRotateBatch = 500

// Sealer seals the values an engine stores that can hold personal data,
// and opens them when read, with the data keys (internal/crypt), as every
// engine does: the routes only ever see plaintext, the database only
// ciphertext.
type Sealer struct{ Keys *crypt.Keyring }

// Seal encrypts a value under the active data key.
func (s Sealer) Seal(plain []byte) ([]byte, error) {
	b, err := s.Keys.Seal(plain)
	if err != nil {
		return nil, fmt.Errorf("store: seal: %w", err)
	}
	return b, nil
}

// Open decrypts a value Seal returned, under whichever key sealed it; a
// value stored in clear (before encryption) comes back as it is.
func (s Sealer) Open(sealed []byte) ([]byte, error) {
	b, err := s.Keys.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	return b, nil
}

// SealOptional is Seal for a value that may be absent: nil or empty stays
// as it is (nothing to hide, and NULL stays NULL).
func (s Sealer) SealOptional(plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return plain, nil
	}
	return s.Seal(plain)
}

// OpenOptional is Open for a value that may be empty.
func (s Sealer) OpenOptional(sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return sealed, nil
	}
	return s.Open(sealed)
}
