package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
)

// secret is fictional personal data that must never reach the file in clear.
const secret = `{"nhsNumber":"9990000026","name":"Bertie Fictional","postcode":"CH1 9ZZ"}`

func keyring(t *testing.T, keys ...crypt.Key) *crypt.Keyring {
	t.Helper()
	k, err := crypt.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawFiles returns the database file and its write-ahead log as they are on
// disk.
func rawFiles(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{FileName, FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestPayloadsAreSealedOnDiskAndOpenedForSubscribers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1, _ := crypt.NewKey()
	s, err := Open(Options{DataDir: dir, PollInterval: 5 * time.Millisecond, Keyring: keyring(t, k1)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.AcceptOnce(ctx, []string{"request:a"}, intake.Response{Status: 200, Body: []byte("{}")}, "topic.x", message.NewMessage("m1", []byte(secret)), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, store.Batch{
		Holds:       []store.Hold{{ReferralID: "r1", Kind: "referral", Route: "council", Reason: "no council", Payload: []byte(secret)}},
		DeadLetters: []store.DeadLetter{{Recipient: "provider", Kind: "referral", ReferralID: "r1", IdempotencyKey: "k", StatusCode: 422, PartnerAnswer: "postcode CH1 9ZZ refused for Bertie Fictional", Error: "refused", Payload: []byte(secret)}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"9990000026", "Bertie Fictional", "CH1 9ZZ"} {
		if bytes.Contains(rawFiles(t, dir), []byte(clear)) {
			t.Fatalf("%q is in the database file in clear", clear)
		}
	}
	dls, err := s.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || dls[0].PartnerAnswer != "postcode CH1 9ZZ refused for Bertie Fictional" {
		t.Fatalf("dead letters read back: %+v, %v", dls, err)
	}

	sub, err := s.NewSubscriber()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	subCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(subCtx, "topic.x")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Payload) != secret || m.UUID != "m1" {
			t.Fatalf("subscriber got %q (uuid %s), want the plaintext", m.Payload, m.UUID)
		}
		m.Ack()
	case <-subCtx.Done():
		t.Fatal("no message")
	}
}

func TestRotateKeysReencryptsEverySealedValueIdempotently(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1, _ := crypt.NewKey()
	k2, _ := crypt.NewKey()
	s, err := Open(Options{DataDir: dir, Keyring: keyring(t, k1)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := s.Commit(ctx, store.Batch{
			Messages: []store.TopicMessage{{Topic: "topic.y", Message: message.NewMessage(string(rune('a'+i)), []byte(secret))}},
			Holds:    []store.Hold{{ReferralID: string(rune('a' + i)), Kind: "referral", Route: "council", Reason: "r", Payload: []byte(secret)}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// The new key is active; the old one is kept to open what it sealed.
	s, err = Open(Options{DataDir: dir, Keyring: keyring(t, k2, k1)})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := s.RotateKeys(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.RotateCount{}
	for _, c := range counts {
		got[c.Table+"."+c.Column] = c
	}
	if c := got["watermill_topic.y.payload"]; c.Rewritten != 7 || c.Current != 0 {
		t.Fatalf("topic payloads: %+v", c)
	}
	if c := got["held.payload"]; c.Rewritten != 7 {
		t.Fatalf("held payloads: %+v", c)
	}
	again, err := s.RotateKeys(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Rewritten != 0 {
			t.Fatalf("second rotation rewrote %+v", c)
		}
	}
	s.Close()

	// Without the old key everything still opens.
	s, err = Open(Options{DataDir: dir, PollInterval: 5 * time.Millisecond, Keyring: keyring(t, k2)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sub, _ := s.NewSubscriber()
	defer sub.Close()
	subCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(subCtx, "topic.y")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Payload) != secret {
			t.Fatalf("after rotation the subscriber got %q", m.Payload)
		}
		m.Ack()
	case <-subCtx.Done():
		t.Fatal("no message after rotation")
	}
}

func TestOpenWithoutKeyringGeneratesKeyFileApartFromDatabase(t *testing.T) {
	t.Setenv(crypt.EnvKey, "")
	dir := t.TempDir()
	s, err := Open(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, crypt.FileName)); err != nil {
		t.Fatalf("no key file generated: %v", err)
	}
	if err := s.Commit(context.Background(), store.Batch{Holds: []store.Hold{{ReferralID: "r", Kind: "k", Route: "x", Reason: "y", Payload: []byte(secret)}}}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rawFiles(t, dir), []byte("Bertie")) {
		t.Fatal("held payload in clear")
	}
}
