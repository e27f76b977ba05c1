package postgres

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
)

// A field added to store.Batch and forgotten by mergeBatches would be
// dropped from every group commit without a word.
func TestMergeBatchesCarriesEveryField(t *testing.T) {
	one := func() *preparedBatch {
		w := &preparedBatch{holds: [][]byte{{1}}, deadPayloads: [][]byte{{2}}, deadAnswers: [][]byte{{3}}, parked: [][]byte{{4}},
			msgs: []outgoing{{topic: "t"}}}
		v := reflect.ValueOf(&w.b).Elem()
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Kind() != reflect.Slice {
				t.Fatalf("store.Batch.%s is not a slice: teach mergeBatches how to merge it", v.Type().Field(i).Name)
			}
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
		return w
	}
	m := mergeBatches([]*preparedBatch{one(), one(), one()})
	v := reflect.ValueOf(m.b)
	for i := 0; i < v.NumField(); i++ {
		if n := v.Field(i).Len(); n != 3 {
			t.Errorf("merged store.Batch.%s has %d entries, want 3", v.Type().Field(i).Name, n)
		}
	}
	for name, n := range map[string]int{"msgs": len(m.msgs), "holds": len(m.holds), "deadPayloads": len(m.deadPayloads),
		"deadAnswers": len(m.deadAnswers), "parked": len(m.parked)} {
		if n != 3 {
			t.Errorf("merged %s has %d entries, want 3", name, n)
		}
	}
	var _ store.Batch = m.b
}

// Forty outcomes committed at once through Commit, whichever groups they
// fall into: the one PostgreSQL refuses (a NUL byte in a text column)
// fails alone, and every other is written. That a group with a bad batch
// is written one by one is shown, without depending on timing, by
// TestGroupWithABadBatchIsWrittenOneByOne.
func TestConcurrentCommitsFailOnlyTheBadBatch(t *testing.T) {
	p := openTest(t, pgtest.URL(t))
	defer p.Close()
	ctx := context.Background()
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recipient := "provider"
			if i == 7 {
				recipient = "pro\x00vider"
			}
			errs[i] = p.Commit(ctx, store.Batch{Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: fmt.Sprint("key-", i),
				Recipient: recipient, Kind: "order", ReferralID: fmt.Sprint("ref-", i), StatusCode: 201}}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("batch %d: error %v", i, err)
		}
		st, err := p.DeliveryState(ctx, fmt.Sprint("key-", i), "provider", "lane", fmt.Sprint("ref-", i), "")
		if err != nil {
			t.Fatal(err)
		}
		if st.Delivered != (i != 7) {
			t.Errorf("batch %d: receipt written %v", i, st.Delivered)
		}
	}
}

// A group one of whose batches PostgreSQL refuses is written again batch
// by batch: the others are written, and only that one fails.
func TestGroupWithABadBatchIsWrittenOneByOne(t *testing.T) {
	p := openTest(t, pgtest.URL(t))
	defer p.Close()
	ctx := context.Background()
	var group []*commitRequest
	for i := range 5 {
		recipient := "provider"
		if i == 2 {
			recipient = "pro\x00vider"
		}
		w, err := p.prepareBatch(store.Batch{Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: fmt.Sprint("key-", i),
			Recipient: recipient, Kind: "order", ReferralID: "ref-1", StatusCode: 201}}})
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, &commitRequest{ctx: ctx, w: w, done: make(chan error, 1)})
	}
	p.commitGroup(ctx, group)
	for i, r := range group {
		if err := <-r.done; (err != nil) != (i == 2) {
			t.Errorf("batch %d: error %v", i, err)
		}
		st, err := p.DeliveryState(ctx, fmt.Sprint("key-", i), "provider", "lane", "ref-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if st.Delivered != (i != 2) {
			t.Errorf("batch %d: receipt written %v", i, st.Delivered)
		}
	}
	// And a group without one is one transaction.
	group = group[:0]
	for i := 5; i < 9; i++ {
		w, err := p.prepareBatch(store.Batch{Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: fmt.Sprint("key-", i),
			Recipient: "provider", Kind: "order", ReferralID: "ref-1", StatusCode: 201}}})
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, &commitRequest{ctx: ctx, w: w, done: make(chan error, 1)})
	}
	g0, c0 := p.GroupStats()
	p.commitGroup(ctx, group)
	for _, r := range group {
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}
	if g, c := p.GroupStats(); g-g0 != 1 || c-c0 != 4 {
		t.Fatalf("4 batches took %d transactions carrying %d, want 1 carrying 4", g-g0, c-c0)
	}
}

// Questions read together each get their own answer: which copies went,
// which lanes are parked, whose references.
func TestGroupReadAnswersEachQuestion(t *testing.T) {
	p := openTest(t, pgtest.URL(t))
	defer p.Close()
	ctx := context.Background()
	if err := p.Commit(ctx, store.Batch{
		Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: "key-1", Recipient: "provider", Kind: "order", ReferralID: "ref-1", StatusCode: 201}},
		Park: []store.Parked{{Partner: "provider", Lane: "ref-2", Kind: "order", ReferralID: "ref-2", IdempotencyKey: "key-2",
			Payload: []byte("{}"), NextAt: time.Now().Add(time.Hour), FirstFailed: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	questions := []stateQuestion{
		{referralID: "ref-1", key: "key-1", partner: "provider", lane: "ref-1"},
		{referralID: "ref-2", key: "key-2", partner: "provider", lane: "ref-2"},
		{referralID: "ref-3", key: "key-3", partner: "provider", lane: "ref-3"},
		{referralID: "ref-2", key: "key-2b", partner: "council-a", lane: "ref-2"},
	}
	want := []store.DeliveryState{{Delivered: true}, {LaneBusy: true}, {}, {}}
	var group []*stateRequest
	for _, q := range questions {
		group = append(group, &stateRequest{ctx: ctx, q: q, done: make(chan stateAnswer, 1)})
	}
	p.readGroup(ctx, group)
	for i, r := range group {
		a := <-r.done
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.st != want[i] {
			t.Errorf("question %d (%+v): %+v, want %+v", i, questions[i], a.st, want[i])
		}
	}
}

// A shared write is abandoned once nobody waits for it, and not before.
func TestWhileAnyWaits(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	b, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	ctx, stop := whileAnyWaits(context.Background(), []context.Context{a, b}, func(c context.Context) context.Context { return c })
	defer stop()
	cancelA()
	select {
	case <-ctx.Done():
		t.Fatal("ended while one caller still waits")
	case <-time.After(50 * time.Millisecond):
	}
	cancelB()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("went on after every caller gave up")
	}
}
