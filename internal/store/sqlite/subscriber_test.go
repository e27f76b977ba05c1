package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
)

func publishAbout(t *testing.T, s *SQLite, topic string, referrals ...string) {
	t.Helper()
	var b store.Batch
	for i, r := range referrals {
		m := message.NewMessage(fmt.Sprintf("%s-%d", r, i), []byte(fmt.Sprintf("%s#%d", r, i)))
		m.Metadata.Set(intake.MetaReferralID, r)
		b.Messages = append(b.Messages, store.TopicMessage{Topic: topic, Message: m})
	}
	if err := s.Commit(context.Background(), b); err != nil {
		t.Error(err) // also called from other goroutines: no Fatal
	}
}

func receive(t *testing.T, ctx context.Context, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-ctx.Done():
		t.Fatal("timed out waiting for a message")
		return nil
	}
}

// subscribed opens a store in dir whose queues hand out inFlight messages
// at once and poll the tables only every hour (commits wake them), and
// subscribes to topic; both are closed when the test ends.
func subscribed(t *testing.T, ctx context.Context, dir string, inFlight int, topic string) (*SQLite, <-chan *message.Message) {
	t.Helper()
	s, err := Open(Options{DataDir: dir, PollInterval: time.Hour, InFlight: inFlight})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureTopics(topic); err != nil {
		t.Fatal(err)
	}
	sub, _ := s.NewSubscriber()
	t.Cleanup(func() { sub.Close() })
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return s, ch
}

// Several messages are out at once, but never two about the same referral,
// and those about one referral come in the order published.
func TestSubscriberHandsOutConcurrentlyButOneAtATimePerReferral(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(Options{DataDir: t.TempDir(), PollInterval: 5 * time.Millisecond, InFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// a, a, b, c, a, d, e: with four in flight, the first read hands out
	// a#0, b#2, c#3, d#5 (a#1 waits for a#0, and a#4 behind a#1).
	publishAbout(t, s, "deliver.p", "a", "a", "b", "c", "a", "d", "e")
	sub, _ := s.NewSubscriber()
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "deliver.p")
	if err != nil {
		t.Fatal(err)
	}
	var first []*message.Message
	for range 4 {
		first = append(first, receive(t, ctx, ch))
	}
	got := map[string]bool{}
	for _, m := range first {
		got[string(m.Payload)] = true
	}
	for _, want := range []string{"a#0", "b#2", "c#3", "d#5"} {
		if !got[want] {
			t.Fatalf("first four handed out = %v; want a#0, b#2, c#3 and d#5", got)
		}
	}
	select {
	case m := <-ch:
		t.Fatalf("a fifth message %q was handed out with four in flight", m.Payload)
	case <-time.After(50 * time.Millisecond):
	}
	// Acknowledging b frees a slot; a#1 still waits for a#0, so e#6 comes.
	for _, m := range first {
		if string(m.Payload) == "b#2" {
			m.Ack()
		}
	}
	if m := receive(t, ctx, ch); string(m.Payload) != "e#6" {
		t.Fatalf("after b was acknowledged got %q; want e#6 (a#1 must wait for a#0)", m.Payload)
	} else {
		m.Ack()
	}
	var order []string
	for _, m := range first {
		if string(m.Payload) != "b#2" {
			m.Ack()
		}
	}
	for range 2 {
		m := receive(t, ctx, ch)
		order = append(order, string(m.Payload))
		m.Ack()
	}
	if order[0] != "a#1" || order[1] != "a#4" {
		t.Fatalf("the rest of a came as %v; want [a#1 a#4]", order)
	}
}

// Acknowledged messages are not offered again after a restart; the rest
// are, in order; a nacked message is offered again.
func TestSubscriberResumesAfterWhatWasAcknowledged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := openTemp(t, dir)
	publishAbout(t, s, "deliver.p", "a", "b", "c")
	sub, _ := s.NewSubscriber()
	ch, err := sub.Subscribe(ctx, "deliver.p")
	if err != nil {
		t.Fatal(err)
	}
	m := receive(t, ctx, ch)
	m.Nack()
	again := receive(t, ctx, ch)
	if string(again.Payload) != "a#0" {
		t.Fatalf("after a nack got %q; want a#0 again", again.Payload)
	}
	again.Ack()
	if m := receive(t, ctx, ch); string(m.Payload) != "b#1" {
		t.Fatalf("got %q; want b#1", m.Payload)
	} // b is left unacknowledged when the subscriber closes
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTemp(t, dir)
	defer s.Close()
	if n, err := s.Pending(ctx, "deliver.p"); err != nil || n != 2 {
		t.Fatalf("pending after restart = %d, %v; want 2 (b and c)", n, err)
	}
	sub, _ = s.NewSubscriber()
	defer sub.Close()
	ch, err = sub.Subscribe(ctx, "deliver.p")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"b#1", "c#2"} {
		m := receive(t, ctx, ch)
		if string(m.Payload) != want {
			t.Fatalf("after restart got %q; want %q", m.Payload, want)
		}
		m.Ack()
	}
}

// A queue is woken by a commit that publishes to it, however long its
// poll interval: many concurrent publishers, every message arrives once.
func TestSubscriberSeesEveryCommitOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, ch := subscribed(t, ctx, t.TempDir(), 8, "deliver.p")
	const publishers, each = 8, 25
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				publishAbout(t, s, "deliver.p", fmt.Sprintf("r%d-%d", p, i))
			}
		}()
	}
	seen := map[string]int{}
	for range publishers * each {
		m := receive(t, ctx, ch)
		seen[string(m.Payload)]++
		m.Ack()
	}
	wg.Wait()
	if len(seen) != publishers*each {
		t.Fatalf("%d distinct messages; want %d", len(seen), publishers*each)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%s handed out %d times", p, n)
		}
	}
}
