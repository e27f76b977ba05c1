package crypt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(b byte) Key { return Key{Bytes: bytes.Repeat([]byte{b}, KeyBytes)} }

func TestSealOpenRoundTripAndRotation(t *testing.T) {
	old, err := NewKeyring(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"nhsNumber":"9990000018","name":"Ada Testperson"}`)
	sealed, err := old.Seal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("9990000018")) || !IsSealed(sealed) {
		t.Fatalf("sealed value holds the plaintext or is not marked sealed")
	}
	again, _ := old.Seal(plain)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	// A new active key still opens values sealed under the old one.
	both, err := NewKeyring(testKey(2), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := both.Open(sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open under rotated keyring: %q, %v", got, err)
	}
	if both.Current(sealed) || !old.Current(sealed) {
		t.Fatal("Current does not follow the active key")
	}
	// Without the old key the value cannot be opened.
	only, _ := NewKeyring(testKey(2))
	if _, err := only.Open(sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open without its key: %v, want ErrUnknownKey", err)
	}
	// Plaintext from before encryption passes through.
	if got, err := both.Open(plain); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("plaintext: %q, %v", got, err)
	}
}

func TestOpenRefusesTamperingAndKeyIDSwap(t *testing.T) {
	k, _ := NewKeyring(Key{ID: "a", Bytes: testKey(1).Bytes}, Key{ID: "b", Bytes: testKey(1).Bytes})
	sealed, _ := k.Seal([]byte("a payload"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	if _, err := k.Open(flipped); err == nil {
		t.Fatal("a changed ciphertext opened")
	}
	// Same key bytes under another id: the header is authenticated.
	swapped := bytes.Clone(sealed)
	swapped[len(magic)+1] = 'b'
	if _, err := k.Open(swapped); err == nil {
		t.Fatal("a value claiming another key id opened")
	}
	if _, err := k.Open(sealed[:len(magic)+3]); err == nil {
		t.Fatal("a truncated value opened")
	}
}

func TestLoadGeneratesFileOnceAndRefusesLooseMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if _, _, err := Load("", path, false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key, no create: %v", err)
	}
	k, gen, err := Load("", path, true)
	if err != nil || !gen {
		t.Fatalf("generate: %v %v", gen, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o", fi.Mode().Perm())
	}
	k2, gen, err := Load("", path, true)
	if err != nil || gen || k2.ActiveID() != k.ActiveID() {
		t.Fatalf("second load: %v %v %s", gen, err, k2)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load("", path, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
	os.Chmod(path, 0o600)

	nk, _ := NewKey()
	if err := AddKeyToFile(path, nk); err != nil {
		t.Fatal(err)
	}
	k3, err := ReadFile(path)
	if err != nil || k3.ActiveID() != nk.ID || len(k3.IDs()) != 2 {
		t.Fatalf("after add: %v %v", k3, err)
	}
}

func TestLoadFromEnvironment(t *testing.T) {
	hexKey := strings.Repeat("ab", KeyBytes)
	k, _, err := Load("new:"+hexKey+", old:"+strings.Repeat("cd", KeyBytes), "/nonexistent/data.key", false)
	if err != nil {
		t.Fatal(err)
	}
	if k.ActiveID() != "new" || len(k.IDs()) != 2 {
		t.Fatalf("keyring %s", k)
	}
	_, _, err = Load("deadbeef", "", false)
	if err == nil || strings.Contains(err.Error(), "deadbeef") {
		t.Fatalf("short key: %v (must not quote the key)", err)
	}
	if s := k.String(); strings.Contains(s, hexKey) {
		t.Fatal("String prints a key")
	}
}
