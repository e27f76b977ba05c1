package routes_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/routes"
)

// selectivePartner fails every call about the referrals in down, and records
// the order in which it accepted copies.
type selectivePartner struct {
	mu    sync.Mutex
	down  map[string]bool
	got   []model.Delivery
	tries map[string]int
}

func (p *selectivePartner) Send(_ context.Context, d model.Delivery) (model.Receipt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries[d.Referral.ID]++
	if p.down[d.Referral.ID] {
		return model.Receipt{}, &delivery.Error{Partner: "provider", StatusCode: 503, Err: errors.New("unavailable")}
	}
	p.got = append(p.got, d)
	return model.Receipt{PartnerReference: "ORD-" + d.Referral.ID + "-" + string(d.Kind), StatusCode: 201}, nil
}

func (p *selectivePartner) setDown(id string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[id] = down
}

func (p *selectivePartner) received() []model.Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]model.Delivery(nil), p.got...)
}

func (p *selectivePartner) triesFor(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tries[id]
}

// A cancellation that arrives while its order is still failing waits behind
// the order in the referral's lane: the provider sees the order first, with
// its order reference known to the cancellation, and a referral accepted
// later is delivered meanwhile.
func TestCancellationNeverOvertakesItsOrder(t *testing.T) {
	provider := &selectivePartner{down: map[string]bool{"lane-a": true}, tries: map[string]int{}}
	table := append([]config.Route(nil), testRoutes...)
	table = append(table, config.Route{Message: string(model.KindCancellation), To: "provider", Purpose: "stop the order", LawfulBasis: "Art 6(1)(e)",
		Fields: []string{"event.reason"}})
	e := startWithSenders(t, table, provider, &fakePartner{})

	e.accept(t, referral("lane-a", "CH1 4AA"))
	waitFor(t, "the order to fail at least twice", func() bool { return provider.triesFor("lane-a") >= 2 })

	events, err := intake.NewEvents(e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.AcceptEvent(context.Background(), intake.EventSubmission{
		Keys:  []string{"nhs:cancel-a"},
		Event: model.Event{Kind: model.KindCancellation, From: "nhs", Status: model.StatusCancelled, Reason: model.Coded{Code: "no-longer-required"}, OccurredAt: time.Now()},
		Find:  intake.Lookup{ReferralID: "lane-a"}, Response: intake.Response{Status: 200},
	}); err != nil {
		t.Fatal(err)
	}
	e.accept(t, referral("lane-b", "CH1 4AB"))
	waitFor(t, "the unrelated referral delivered meanwhile", func() bool {
		for _, d := range provider.received() {
			if d.Referral.ID == "lane-b" {
				return true
			}
		}
		return false
	})
	for _, d := range provider.received() {
		if d.Referral.ID == "lane-a" {
			t.Fatalf("lane-a's %s was delivered while its order was failing", d.Kind)
		}
	}

	provider.setDown("lane-a", false)
	waitFor(t, "order and cancellation delivered", func() bool { return len(provider.received()) == 3 })
	var laneA []model.Delivery
	for _, d := range provider.received() {
		if d.Referral.ID == "lane-a" {
			laneA = append(laneA, d)
		}
	}
	if len(laneA) != 2 || laneA[0].Kind != model.KindReferral || laneA[1].Kind != model.KindCancellation {
		t.Fatalf("lane-a deliveries in order %v, want referral then cancellation", kinds(laneA))
	}
	if got := laneA[1].Refs.OrderReference; got != "ORD-lane-a-referral" {
		t.Errorf("the cancellation carried order reference %q, want the one the order got", got)
	}
	if laneA[1].Referral.Event == nil || laneA[1].Referral.Event.Reason.Code != "no-longer-required" || laneA[1].Referral.Person.NHSNumber != "" {
		t.Errorf("cancellation copy not cut by its route: %+v", laneA[1].Referral)
	}
	waitFor(t, "no parked deliveries left", func() bool {
		ps, _ := e.store.ParkedDeliveries(context.Background())
		return len(ps) == 0
	})
}

func kinds(ds []model.Delivery) []model.Kind {
	var out []model.Kind
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}

// blockingPartner holds every routine copy until released, and takes urgent
// ones at once.
type blockingPartner struct {
	release chan struct{}
	mu      sync.Mutex
	got     []model.Delivery
}

func (p *blockingPartner) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if !d.Kind.Urgent() {
		select {
		case <-p.release:
		case <-ctx.Done():
			return model.Receipt{}, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, d)
	return model.Receipt{PartnerReference: "CASE-" + string(d.Kind), StatusCode: 201}, nil
}

func (p *blockingPartner) received() []model.Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]model.Delivery(nil), p.got...)
}

// A safeguarding concern reaches the council while a backlog of routine
// updates for that council is still waiting in its queue.
func TestSafeguardingNeverWaitsBehindRoutineTraffic(t *testing.T) {
	council := &blockingPartner{release: make(chan struct{})}
	table := append([]config.Route(nil), testRoutes...)
	table = append(table,
		config.Route{Message: string(model.KindOrderStatus), To: config.RecipientCouncil, Purpose: "case tracking", LawfulBasis: "Art 6(1)(e)",
			Fields: []string{"event.scheduledDate"}},
		config.Route{Message: string(model.KindSafeguarding), To: config.RecipientCouncil, Purpose: "safeguarding", LawfulBasis: "Art 6(1)(e)",
			SpecialCategoryBasis: "Art 9(2)(g)", Fields: []string{"person.name", "event.description"}})
	e := startWithSenders(t, table, &fakePartner{}, council)
	defer close(council.release)
	events, err := intake.NewEvents(e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func(key, referralID string, ev model.Event) {
		t.Helper()
		ev.OccurredAt = time.Now()
		if _, err := events.AcceptEvent(context.Background(), intake.EventSubmission{Keys: []string{key}, Event: ev,
			Find: intake.Lookup{ReferralID: referralID}, Response: intake.Response{Status: 202}}); err != nil {
			t.Fatal(err)
		}
	}
	// Ten referrals, each with a status update: the council's queue backs up
	// behind the first copy, which it holds.
	for i := range 10 {
		id := "backlog-" + string(rune('a'+i))
		e.accept(t, referral(id, "CH1 4AA"))
		send("status:"+id, id, model.Event{Kind: model.KindOrderStatus, From: "provider", Status: model.StatusScheduled, ScheduledDate: "2026-12-01"})
	}
	waitFor(t, "a routine backlog for the council", func() bool {
		n, _ := e.store.Pending(context.Background(), routes.TopicDeliver("council-a"))
		return n >= 10
	})
	send("concern", "backlog-c", model.Event{Kind: model.KindSafeguarding, From: "provider", Description: "concern"})
	waitFor(t, "the safeguarding concern delivered", func() bool { return len(council.received()) == 1 })
	got := council.received()[0]
	if got.Kind != model.KindSafeguarding || got.Referral.Event.Description != "concern" {
		t.Fatalf("first delivery to the council = %s %+v, want the safeguarding concern", got.Kind, got.Referral.Event)
	}
	if n, _ := e.store.Pending(context.Background(), routes.TopicDeliver("council-a")); n < 10 {
		t.Errorf("only %d routine copies still waiting: the concern did not overtake a backlog", n)
	}
}

// A copy that keeps failing is tried until the horizon has passed since it
// first failed, then dead-lettered for a person, never dropped.
func TestParkedDeliveryGivesUpAtTheHorizon(t *testing.T) {
	down := &selectivePartner{down: map[string]bool{"doomed": true}, tries: map[string]int{}}
	e := startWithSendersPark(t, testRoutes, down, &fakePartner{},
		routes.Park{First: time.Millisecond, Max: 2 * time.Millisecond, Horizon: 50 * time.Millisecond, Poll: 2 * time.Millisecond})
	e.accept(t, referral("doomed", "CH1 4AA"))
	waitFor(t, "a dead letter once the horizon passed", func() bool {
		dl, _ := e.store.DeadLetters(context.Background())
		return len(dl) == 1
	})
	dl, _ := e.store.DeadLetters(context.Background())
	if dl[0].Recipient != "provider" || !strings.Contains(dl[0].Error, "gave up after") || dl[0].StatusCode != 503 {
		t.Errorf("dead letter %+v", dl[0])
	}
	if n := down.triesFor("doomed"); n < 2 {
		t.Errorf("tried %d times before giving up", n)
	}
	waitFor(t, "nothing left parked", func() bool {
		ps, _ := e.store.ParkedDeliveries(context.Background())
		return len(ps) == 0
	})
}

// A parked copy waits at least as long as the partner's Retry-After asked,
// never beyond the horizon.
func TestParkWaitHonoursRetryAfter(t *testing.T) {
	p := routes.Park{First: time.Second, Max: 5 * time.Second, Horizon: time.Hour}
	asked := &delivery.Error{StatusCode: 503, RetryAfter: 2 * time.Minute}
	if got := routes.ParkWait(p, 1, asked); got != 2*time.Minute {
		t.Errorf("wait after Retry-After 2m = %s", got)
	}
	if got := routes.ParkWait(p, 1, &delivery.Error{StatusCode: 503, RetryAfter: 48 * time.Hour}); got != time.Hour {
		t.Errorf("wait after Retry-After 48h = %s, want the horizon", got)
	}
	if got := routes.ParkWait(p, 3, &delivery.Error{StatusCode: 503}); got > 4*time.Second || got < 3*time.Second {
		t.Errorf("third wait without Retry-After = %s, want 4s less up to a fifth", got)
	}
}
