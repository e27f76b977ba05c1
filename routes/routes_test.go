package routes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	crmmap "github.com/iceshub/iceshub/mappings/crm"
	providermap "github.com/iceshub/iceshub/mappings/provider"
	"github.com/iceshub/iceshub/routes"
)

// fakePartner records what it was sent and fails as told.
type fakePartner struct {
	mu        sync.Mutex
	got       []model.Delivery
	failFirst int   // this many calls fail transiently
	permanent error // when set, every call fails with it
	calls     int
}

// Send encodes d with the partner's own outbound mapping, as the adapters
// do, so that the receipt's Fields (the disclosure record) are those of a
// real payload: nil when d cannot be encoded.
func (f *fakePartner) Send(_ context.Context, d model.Delivery) (model.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	fields := wireFields(d)
	if f.permanent != nil {
		return model.Receipt{Fields: fields}, f.permanent
	}
	if f.calls <= f.failFirst {
		return model.Receipt{Fields: fields}, &delivery.Error{Partner: "fake", StatusCode: 503, Err: errors.New("unavailable")}
	}
	f.got = append(f.got, d)
	return model.Receipt{PartnerReference: "REF-" + d.Referral.ID, StatusCode: 201, Fields: fields}, nil
}

// wireFields is the disclosure record of d's payload under the outbound
// mapping of its recipient's kind (the provider's, or a council's), nil
// when d cannot be encoded.
func wireFields(d model.Delivery) []string {
	if d.Recipient == "provider" {
		req, err := providermap.Outbound(d)
		if err != nil {
			return nil
		}
		return req.Fields
	}
	req, err := crmmap.Outbound(d)
	if err != nil {
		return nil
	}
	return req.Fields
}

func (f *fakePartner) received() []model.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]model.Delivery(nil), f.got...)
}

var testRoutes = []config.Route{
	{Message: "referral", To: "provider", Purpose: "deliver equipment", LawfulBasis: "Art 6(1)(e)", SpecialCategoryBasis: "Art 9(2)(h)",
		Fields: []string{"person.nhsNumber", "person.name", "person.address", "equipment", "clinical.weight"}},
	{Message: "referral", To: config.RecipientCouncil, Purpose: "case tracking", LawfulBasis: "Art 6(1)(e)",
		Fields: []string{"person.nhsNumber", "person.name", "priority"}},
}

type env struct {
	store  *sqlite.SQLite
	intake *intake.Service
	// viaTopic accepts referrals the way an earlier hub did: onto
	// intake.TopicReferralReceived, for the router's fan-out handler.
	viaTopic *intake.Service
	provider *fakePartner
	council  *fakePartner
	// cfg is the routes' configuration the router was built with.
	cfg routes.Config
}

func start(t *testing.T, provider, council *fakePartner) *env {
	t.Helper()
	return startWith(t, testRoutes, provider, council)
}

func startWith(t *testing.T, routeTable []config.Route, provider, council *fakePartner) *env {
	t.Helper()
	e := startWithSenders(t, routeTable, provider, council)
	e.provider, e.council = provider, council
	return e
}

func startWithSenders(t *testing.T, routeTable []config.Route, provider, council routes.Sender) *env {
	t.Helper()
	return startWithSendersPark(t, routeTable, provider, council, routes.Park{First: time.Millisecond, Max: 5 * time.Millisecond, Poll: 5 * time.Millisecond})
}

func startWithSendersPark(t *testing.T, routeTable []config.Route, provider, council routes.Sender, park routes.Park) *env {
	t.Helper()
	return startWithOptions(t, routeTable, provider, council, park, nil)
}

// startWithOptions is startWithSendersPark with the routes' configuration
// adjusted by tune (when not nil) before the router is built.
func startWithOptions(t *testing.T, routeTable []config.Route, provider, council routes.Sender, park routes.Park, tune func(*routes.Config)) *env {
	t.Helper()
	return startWithStore(t, routeTable, provider, council, park, tune, nil, io.Discard)
}

// startWithStore is startWithOptions with the router's store wrapped by
// wrap (when not nil) and its log written to logs.
func startWithStore(t *testing.T, routeTable []config.Route, provider, council routes.Sender, park routes.Park, tune func(*routes.Config),
	wrap func(*sqlite.SQLite) routes.Store, logs io.Writer) *env {
	t.Helper()
	councils, err := postcode.NewTable(map[string][]string{"council-a": {"CH1"}})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	rc := routes.Config{
		Routes:       routeTable,
		Councils:     councils,
		SubjectKey:   testSubjectKey,
		Senders:      map[string]routes.Sender{"provider": provider, "council-a": council},
		PartnerKinds: map[string]string{"provider": config.KindProvider, "council-a": config.KindCouncil},
		Retry:        routes.Retry{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
		Park:         park,
	}
	if tune != nil {
		tune(&rc)
	}
	// The queues hand out as many messages at once as the parked lanes,
	// as in the hub.
	st, err := sqlite.Open(sqlite.Options{DataDir: t.TempDir(), PollInterval: 5 * time.Millisecond, InFlight: rc.InFlight})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureTopics(routes.Topics([]string{"provider", "council-a"})...); err != nil {
		t.Fatal(err)
	}
	var routed routes.Store = st
	if wrap != nil {
		routed = wrap(st)
	}
	r, err := routes.New(rc, routed, st.NewSubscriber, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	<-r.Running()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = st.Close()
	})
	// As the hub does: referrals are cut as they are accepted.
	fanOut, err := routes.FanOutOnAccept(rc, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := intake.New(fanOut)
	if err != nil {
		t.Fatal(err)
	}
	viaTopic, err := intake.New(st)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, intake: svc, viaTopic: viaTopic, cfg: rc}
}

func referral(id, postcode string) model.Referral {
	return model.Referral{
		ID:     id,
		Source: model.Source{CorrelationID: "corr-" + id},
		Person: model.Person{
			NHSNumber: "9990000018",
			Name:      model.HumanName{Text: "Ada Testperson"},
			BirthDate: "1941-03-07",
			Address:   model.Address{Lines: []string{"1 Example Row"}, Postcode: postcode},
		},
		Priority:  model.PriorityRoutine,
		Equipment: []model.EquipmentItem{{Code: "BED-1", Quantity: 1}},
		Clinical:  model.Clinical{Notes: []string{"clinical note"}, Weight: &model.Observation{Value: "80", Unit: "kg"}},
	}
}

func (e *env) accept(t *testing.T, r model.Referral) {
	t.Helper()
	_, err := e.intake.AcceptReferral(context.Background(), intake.Submission{
		Keys: []string{"request:" + r.ID}, Referral: r, Response: intake.Response{Status: 200},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds; the deadline is generous because it only
// bounds a failure, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReferralFansOutMinimisedCopies(t *testing.T) {
	e := start(t, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("r1", "CH1 4AA"))
	waitFor(t, "both deliveries", func() bool { return len(e.provider.received()) == 1 && len(e.council.received()) == 1 })

	p := e.provider.received()[0]
	if p.Referral.Person.Name.Text != "Ada Testperson" || len(p.Referral.Equipment) != 1 || p.Referral.Clinical.Weight == nil {
		t.Errorf("provider copy lacks its fields: %+v", p.Referral)
	}
	if len(p.Referral.Clinical.Notes) != 0 || p.Referral.Person.BirthDate != "" || p.Referral.Priority != "" {
		t.Errorf("provider copy holds fields it may not see: %+v", p.Referral)
	}
	c := e.council.received()[0]
	if c.Recipient != "council-a" || c.Referral.Person.NHSNumber != "9990000018" || c.Referral.Priority != model.PriorityRoutine {
		t.Errorf("council copy wrong: %+v", c)
	}
	if len(c.Referral.Equipment) != 0 || c.Referral.Clinical.Weight != nil || len(c.Referral.Person.Address.Lines) != 0 {
		t.Errorf("council copy holds clinical or address data: %+v", c.Referral)
	}
	if p.IdempotencyKey == c.IdempotencyKey || p.IdempotencyKey != routes.IdempotencyKey("r1", "provider", model.KindReferral) {
		t.Errorf("idempotency keys not per recipient: %s, %s", p.IdempotencyKey, c.IdempotencyKey)
	}
	waitFor(t, "disclosure records", func() bool {
		ds, _ := e.store.Disclosures(context.Background(), "r1")
		return len(ds) == 2
	})
	ds, _ := e.store.Disclosures(context.Background(), "r1")
	for _, d := range ds {
		if d.Outcome != store.OutcomeSent || len(d.Fields) == 0 || d.LawfulBasis == "" || d.CorrelationID != "corr-r1" {
			t.Errorf("disclosure incomplete: %+v", d)
		}
	}
}

// TestDisclosureRecordsWhatThePayloadHeld checks that each disclosure lists
// the fields the payload sent held, from the sender's receipt, not the
// route's list: a referral without a weight or an address line is recorded
// without clinical.weight for the provider, and a copy the partner refused
// is recorded with what its payload held, a copy that could not be encoded
// with nothing.
func TestDisclosureRecordsWhatThePayloadHeld(t *testing.T) {
	refuse := &delivery.Error{Partner: "council-a", StatusCode: 422, Permanent: true, Body: `{"error":"unknown case type"}`}
	e := start(t, &fakePartner{}, &fakePartner{permanent: refuse})
	r := referral("r9", "CH1 4AA")
	r.Clinical.Weight = nil
	r.Person.Name = model.HumanName{}
	e.accept(t, r)
	waitFor(t, "both outcomes", func() bool {
		ds, _ := e.store.Disclosures(context.Background(), "r9")
		return len(ds) == 2
	})
	ds, _ := e.store.Disclosures(context.Background(), "r9")
	got := map[string][]string{}
	for _, d := range ds {
		got[d.Recipient+" "+d.Outcome] = d.Fields
	}
	want := map[string][]string{
		"provider " + store.OutcomeSent:    {"person.nhsNumber", "person.address", "equipment"},
		"council-a " + store.OutcomeFailed: {"person.nhsNumber", "priority"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disclosure record = %v, want %v (the route named %v and %v)", got, want, testRoutes[0].Fields, testRoutes[1].Fields)
	}
}

func TestNoCouncilHoldsForReviewAndStillServesProvider(t *testing.T) {
	e := start(t, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("r2", "LS10 4YU"))
	waitFor(t, "provider delivery", func() bool { return len(e.provider.received()) == 1 })
	waitFor(t, "hold", func() bool {
		hs, _ := e.store.Held(context.Background())
		return len(hs) == 1
	})
	hs, _ := e.store.Held(context.Background())
	if hs[0].ReferralID != "r2" || hs[0].Reason != routes.HoldNoCouncil {
		t.Errorf("hold = %+v", hs[0])
	}
	ds, _ := e.store.Disclosures(context.Background(), "r2")
	var withheld int
	for _, d := range ds {
		if d.Outcome == store.OutcomeWithheld {
			withheld++
		}
	}
	if withheld != 1 {
		t.Errorf("withheld disclosures = %d, want 1: %+v", withheld, ds)
	}
	if n := len(e.council.received()); n != 0 {
		t.Errorf("a council received %d copies of a referral outside every council's area", n)
	}
}

func TestTransientFailureIsRetriedWithTheSameKey(t *testing.T) {
	e := start(t, &fakePartner{failFirst: 5}, &fakePartner{})
	e.accept(t, referral("r3", "CH1 4AA"))
	waitFor(t, "delivery after failures", func() bool { return len(e.provider.received()) == 1 })
	if got := e.provider.received()[0].IdempotencyKey; got != routes.IdempotencyKey("r3", "provider", model.KindReferral) {
		t.Errorf("key changed across retries: %s", got)
	}
	// Each failure parked the copy and it was offered again from its lane
	// rather than being dropped.
	e.provider.mu.Lock()
	calls := e.provider.calls
	e.provider.mu.Unlock()
	if calls != 6 {
		t.Errorf("provider called %d times, want 6 (5 failures, 1 success)", calls)
	}
}

func TestPermanentFailureDeadLettersAndQueueMovesOn(t *testing.T) {
	refuse := &delivery.Error{Partner: "council-a", StatusCode: 422, Permanent: true, Body: `{"error":"unknown case type"}`}
	e := start(t, &fakePartner{}, &fakePartner{permanent: refuse})
	e.accept(t, referral("r4", "CH1 4AA"))
	e.accept(t, referral("r5", "CH1 4AB"))
	waitFor(t, "two dead letters", func() bool {
		dl, _ := e.store.DeadLetters(context.Background())
		return len(dl) == 2
	})
	dl, _ := e.store.DeadLetters(context.Background())
	if dl[0].StatusCode != 422 || dl[0].Recipient != "council-a" || dl[0].PartnerAnswer == "" {
		t.Errorf("dead letter = %+v", dl[0])
	}
	waitFor(t, "provider got both", func() bool { return len(e.provider.received()) == 2 })
}
