package subject

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testKey = strings.Repeat("ab", 32)

func TestOfIsKeyedStableAndHidesTheNumber(t *testing.T) {
	k, err := ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey([]byte(strings.Repeat("x", 32)))
	s := k.Of("9990000018")
	if !strings.HasPrefix(s, Prefix) || len(s) != len(Prefix)+64 || strings.Contains(s, "9990000018") {
		t.Fatalf("Of = %q", s)
	}
	if k.Of("999 000 0018") != s {
		t.Error("spacing changed the subject")
	}
	if k.Of("9990000026") == s || other.Of("9990000018") == s {
		t.Error("a different number or key gave the same subject")
	}
	if k.Of("") != "" || (Key{}).Of("9990000018") != "" {
		t.Error("empty number or zero key gave a subject")
	}
	if got := fmt.Sprintf("%v %+v %#v %s", k, k, k, k); strings.Contains(got, "ab") {
		t.Errorf("a formatted key shows its bytes: %s", got)
	}
}

func TestParseKey(t *testing.T) {
	raw := []byte(strings.Repeat("k", 32))
	for _, s := range []string{strings.Repeat("6b", 32), base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		k, err := ParseKey(s)
		if err != nil || string(k.Bytes()) != string(raw) {
			t.Errorf("ParseKey(%q) = %v, %v", s, k.Bytes(), err)
		}
	}
	for _, s := range []string{"", "abcd", "not a key at all!", strings.Repeat("6b", 31)} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
}

func TestLoadCreatesOnceAndPrefersTheEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := Load("", dir, false); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Load without key or create = %v; want ErrNoKey", err)
	}
	k1, gen, err := Load("", dir, true)
	if err != nil || !gen {
		t.Fatalf("first Load = %v, generated %v", err, gen)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	k2, gen, err := Load("", dir, true)
	if err != nil || gen || k2.Of("9990000018") != k1.Of("9990000018") {
		t.Fatalf("second Load = %v, generated %v, same key %v", err, gen, k2.Of("9990000018") == k1.Of("9990000018"))
	}
	k3, gen, err := Load(testKey, dir, true)
	if err != nil || gen || k3.Of("9990000018") == k1.Of("9990000018") {
		t.Fatalf("Load from env = %v, generated %v; want the environment's key", err, gen)
	}
	if _, _, err := Load("short", dir, true); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("bad env key: %v; want an error that does not repeat it", err)
	}
}
