package routes_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/routes"
)

// When AcceptOnce returns, the referral's copies are on the partners'
// queues already (no fan-out step runs here: there is no router), holds
// are recorded, nothing waits on the referral topic, and a repeat of the
// same request writes nothing more.
func TestFanOutOnAcceptWritesCopiesWithTheReferral(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(sqlite.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	councils, err := postcode.NewTable(map[string][]string{"council-a": {"CH1"}})
	if err != nil {
		t.Fatal(err)
	}
	fanOut, err := routes.FanOutOnAccept(routes.Config{Routes: testRoutes, Councils: councils, SubjectKey: testSubjectKey},
		st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := intake.New(fanOut)
	if err != nil {
		t.Fatal(err)
	}
	pending := func(topic string) int64 {
		t.Helper()
		n, err := st.Pending(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	accept := func(id, postcode string) intake.Outcome {
		t.Helper()
		out, err := svc.AcceptReferral(ctx, intake.Submission{Keys: []string{"request:" + id}, Referral: referral(id, postcode),
			Response: intake.Response{Status: 200, Body: []byte(id)}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	accept("r1", "CH1 4AA")
	if p, c, r := pending(routes.TopicDeliver("provider")), pending(routes.TopicDeliver("council-a")), pending(intake.TopicReferralReceived); p != 1 || c != 1 || r != 0 {
		t.Fatalf("after accepting: provider %d, council %d, referral topic %d; want 1, 1, 0", p, c, r)
	}
	if rec, found, err := st.FindReferral(ctx, intake.Lookup{ReferralID: "r1"}); err != nil || !found || rec.Refs.Council != "council-a" {
		t.Fatalf("record of r1 = %+v, %v, %v; want it recorded with its council", rec.Refs, found, err)
	}
	if out := accept("r1", "CH1 4AA"); !out.Duplicate || string(out.Response.Body) != "r1" {
		t.Fatalf("repeat = %+v; want the first answer, as a duplicate", out)
	}
	if p := pending(routes.TopicDeliver("provider")); p != 1 {
		t.Fatalf("a repeated request put %d copies on the provider's queue; want 1", p)
	}

	// No council covers LS10: the council's copy is held, the provider's
	// goes, in the same transaction.
	accept("r2", "LS10 4YU")
	if p, c := pending(routes.TopicDeliver("provider")), pending(routes.TopicDeliver("council-a")); p != 2 || c != 1 {
		t.Fatalf("after r2: provider %d, council %d; want 2, 1", p, c)
	}
	hs, err := st.Held(ctx)
	if err != nil || len(hs) != 1 || hs[0].ReferralID != "r2" || hs[0].Reason != routes.HoldNoCouncil || hs[0].Route != config.RecipientCouncil {
		t.Fatalf("held = %+v, %v; want r2's council copy held for want of a council", hs, err)
	}
	ds, err := st.Disclosures(ctx, "r2")
	if err != nil || len(ds) != 1 || ds[0].Outcome != store.OutcomeWithheld {
		t.Fatalf("disclosures of r2 = %+v, %v; want the withheld council copy recorded", ds, err)
	}
}

// A referral on intake.TopicReferralReceived, as an earlier hub stored
// them, is still fanned out and delivered by the router.
func TestReferralOnTheReceivedTopicIsStillFannedOut(t *testing.T) {
	e := start(t, &fakePartner{}, &fakePartner{})
	if _, err := e.viaTopic.AcceptReferral(context.Background(), intake.Submission{
		Keys: []string{"request:old"}, Referral: referral("old", "CH1 4AA"), Response: intake.Response{Status: 200},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both deliveries", func() bool { return len(e.provider.received()) == 1 && len(e.council.received()) == 1 })
}
