package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
)

func publish(t *testing.T, p *Postgres, topic string, lanes, perLane int) {
	t.Helper()
	var b store.Batch
	for i := range perLane {
		for l := range lanes {
			m := message.NewMessage(fmt.Sprintf("r%d-%d", l, i), []byte(fmt.Sprint(i)))
			m.Metadata.Set(intake.MetaReferralID, fmt.Sprintf("r%d", l))
			b.Messages = append(b.Messages, store.TopicMessage{Topic: topic, Message: m})
		}
	}
	if err := p.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// Two hubs on one database share a topic: every message is handled once,
// by one of them, and the messages of a lane in the order written,
// whichever hub takes each.
func TestTwoHubsShareATopicInOrderPerLane(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	const lanes, perLane = 20, 5
	publish(t, a, "deliver.x", lanes, perLane)

	var mu sync.Mutex
	next := map[string]int{}
	seen := map[string]bool{}
	byHub := map[string]int{}
	done := make(chan struct{})
	total := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, hub := range []*Postgres{a, b} {
		hub.opts.InFlight = 4
		sub, _ := hub.NewSubscriber()
		defer sub.Close()
		msgs, err := sub.Subscribe(ctx, "deliver.x")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for m := range msgs {
				lane := m.Metadata.Get(intake.MetaReferralID)
				mu.Lock()
				if seen[m.UUID] {
					t.Errorf("%s handled twice", m.UUID)
				}
				seen[m.UUID] = true
				if want := fmt.Sprint(next[lane]); string(m.Payload) != want {
					t.Errorf("lane %s: got message %s, want %s next", lane, m.Payload, want)
				}
				next[lane]++
				byHub[hub.Replica()]++
				total++
				if total == lanes*perLane {
					close(done)
				}
				mu.Unlock()
				time.Sleep(time.Millisecond) // work, so that both hubs take some
				m.Ack()
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("handled %d of %d", total, lanes*perLane)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(byHub) != 2 {
		t.Errorf("handled by %v, want both hubs", byHub)
	}
	// Acknowledgements are written just after the handlers answer.
	for i := 0; ; i++ {
		n, err := a.Pending(context.Background(), "deliver.x")
		if err == nil && n == 0 {
			break
		}
		if i == 300 {
			t.Fatalf("pending after all acked = %d, %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A message leased by a hub that stopped answering goes to another hub
// once the lease passes, not before.
func TestALeaseThatPassesIsTakenOver(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	a.opts.Lease = 2 * time.Second
	publish(t, a, "deliver.x", 1, 2)
	ctx := context.Background()
	got, err := a.claim(ctx, "deliver.x", 10, nil)
	if err != nil || len(got) != 1 || got[0].uuid != "r0-0" {
		t.Fatalf("a claims %+v, %v; want the head of the lane only", got, err)
	}
	if other, err := b.claim(ctx, "deliver.x", 10, nil); err != nil || len(other) != 0 {
		t.Fatalf("b claims %+v, %v while a's lease holds; want nothing", other, err)
	}
	// a dies here: it never acknowledges nor renews.
	sub, _ := b.NewSubscriber()
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "deliver.x")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"r0-0", "r0-1"} {
		select {
		case m := <-msgs:
			if m.UUID != want {
				t.Fatalf("b got %s, want %s", m.UUID, want)
			}
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("b never got %s after a's lease passed", want)
		}
	}
}

// A nacked message is offered again, and nothing of its lane overtakes it.
func TestNackedMessageComesBackFirst(t *testing.T) {
	p := openTest(t, pgtest.URL(t))
	defer p.Close()
	publish(t, p, "deliver.x", 1, 2)
	sub, _ := p.NewSubscriber()
	defer sub.Close()
	msgs, err := sub.Subscribe(context.Background(), "deliver.x")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for len(order) < 3 {
		select {
		case m := <-msgs:
			order = append(order, m.UUID)
			if len(order) == 1 {
				m.Nack()
			} else {
				m.Ack()
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("got %v", order)
		}
	}
	if fmt.Sprint(order) != "[r0-0 r0-0 r0-1]" {
		t.Errorf("order = %v, want the nacked message again before the next", order)
	}
}

// A subscriber that closes gives back what it had not handed out, so
// another hub takes it at once rather than after the lease.
func TestCloseGivesLeasesBack(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	a.opts.Lease = time.Hour
	a.opts.InFlight = 1
	publish(t, a, "deliver.x", 3, 1)
	sub, _ := a.NewSubscriber()
	msgs, err := sub.Subscribe(context.Background(), "deliver.x")
	if err != nil {
		t.Fatal(err)
	}
	m := <-msgs
	m.Ack()
	// a has claimed a second message ahead (twice its in-flight) and
	// stops.
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	rest, err := b.claim(context.Background(), "deliver.x", 10, nil)
	if err != nil || len(rest) != 2 {
		t.Fatalf("b claims %d messages after a closed, %v; want the 2 a had not handled", len(rest), err)
	}
}

// A hub's commit wakes the other hub's queue through a notification, long
// before that queue's next poll, and its own queue too.
func TestACommitWakesTheOtherHubBeforeItsPoll(t *testing.T) {
	url := pgtest.URL(t)
	open := func() *Postgres {
		p, err := Open(context.Background(), Options{URL: url, Keyring: testKeys(t, url), Migrate: true, PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := open(), open()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	receive := func(p *Postgres, topic string) <-chan *message.Message {
		sub, _ := p.NewSubscriber()
		t.Cleanup(func() { sub.Close() })
		msgs, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	queues := []struct {
		name, topic string
		msgs        <-chan *message.Message
	}{{"the other hub", "deliver.woken", receive(b, "deliver.woken")}, {"the publishing hub", "deliver.own", receive(a, "deliver.own")}}
	// Each queue's first message, handled and its acknowledgement written:
	// the queue has claimed, and waits now for a wake-up or the hour's
	// poll, whenever it started.
	for _, q := range queues {
		publishOne(t, a, q.topic, "first")
		select {
		case m := <-q.msgs:
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("%s had not its first message: not found by its first claim, nor woken by the commit", q.name)
		}
		deadline := time.Now().Add(30 * time.Second)
		for n, err := a.Pending(ctx, q.topic); n != 0; n, err = a.Pending(ctx, q.topic) {
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("%s: the first message's acknowledgement not written: %d pending, %v", q.name, n, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, q := range queues {
		publishOne(t, a, q.topic, "second")
		select {
		case m := <-q.msgs:
			m.Ack()
		case <-time.After(30 * time.Second): // the poll is an hour away
			t.Fatalf("%s was not woken by the commit", q.name)
		}
	}
}

// publishOne commits one message of its own lane, id, on topic.
func publishOne(t *testing.T, p *Postgres, topic, id string) {
	t.Helper()
	m := message.NewMessage(id, []byte(id))
	m.Metadata.Set(intake.MetaReferralID, id)
	if err := p.Commit(context.Background(), store.Batch{Messages: []store.TopicMessage{{Topic: topic, Message: m}}}); err != nil {
		t.Fatal(err)
	}
}

// An acknowledgement sent with a claim makes the next message of its lane
// claimable by that same claim.
func TestAClaimCarriesTheAcknowledgementItFollows(t *testing.T) {
	p := openTest(t, pgtest.URL(t))
	defer p.Close()
	ctx := context.Background()
	publish(t, p, "deliver.x", 1, 2)
	first, err := p.claim(ctx, "deliver.x", 10, nil)
	if err != nil || len(first) != 1 || string(first[0].payload) == "" {
		t.Fatalf("first claim: %d messages, %v; want the lane's head alone", len(first), err)
	}
	second, err := p.claim(ctx, "deliver.x", 10, []int64{first[0].id})
	if err != nil || len(second) != 1 || second[0].id == first[0].id {
		t.Fatalf("claim with the head acknowledged: %v, %v; want the lane's second message", second, err)
	}
	qs, err := p.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Topic == "deliver.x" && q.Pending != 1 {
			t.Fatalf("%d messages pending, want 1 (the head deleted)", q.Pending)
		}
	}
}

// A lane's next message is handed out when the one before it is
// acknowledged, without waiting for a poll: whether it was waiting when
// its head was claimed, or published while the head was being handled.
func TestALanesNextMessageFollowsItsAcknowledgement(t *testing.T) {
	url := pgtest.URL(t)
	p, err := Open(context.Background(), Options{URL: url, Keyring: testKeys(t, url), Migrate: true, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.opts.InFlight = 4 // room to claim while a message is being handled
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, _ := p.NewSubscriber()
	defer sub.Close()
	publish(t, p, "deliver.lane", 1, 2) // r0-0, then r0-1 behind it
	msgs, err := sub.Subscribe(ctx, "deliver.lane")
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string) *message.Message {
		t.Helper()
		select {
		case m := <-msgs:
			if m.UUID != want {
				t.Fatalf("got %s, want %s", m.UUID, want)
			}
			return m
		case <-time.After(30 * time.Second): // the poll is an hour away
			t.Fatalf("%s was not handed out", want)
		}
		return nil
	}
	next("r0-0").Ack()
	m := next("r0-1")
	// Published while r0-1 is being handled: it waits behind it, and
	// follows its acknowledgement.
	msg := message.NewMessage("r0-2", []byte("2"))
	msg.Metadata.Set(intake.MetaReferralID, "r0")
	if err := p.Commit(ctx, store.Batch{Messages: []store.TopicMessage{{Topic: "deliver.lane", Message: msg}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the queue has claimed for that publish, and found r0-2 behind r0-1
	m.Ack()
	next("r0-2").Ack()
}
