package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/routes"
)

// TestProviderOutageDeliversEverythingOnce: the provider answers 503 with
// Retry-After until its circuit breaker has been seen open; meanwhile the
// council keeps receiving its copies. When the provider recovers every
// referral reaches it exactly once to its business effect (one order per
// referral, every request under the referral's one idempotency key), and
// /metrics shows the breaker open and then closed again. The test waits for
// outcomes, never for a time, so it holds whatever the retry schedule.
func TestProviderOutageDeliversEverythingOnce(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{})
	prov := o.sims.Provider
	prov.FailNext(1<<30, http.StatusServiceUnavailable, "1")

	const n = 6
	template := referralTemplate(t)
	var ids []string
	for range n {
		ids = append(ids, o.send(t, template))
	}

	breakerOpen := series("iceshub_breaker_state", "partner", "provider", "state", "open")
	breakerClosed := series("iceshub_breaker_state", "partner", "provider", "state", "closed")
	eventually(t, "the provider's breaker to be seen open on /metrics", func() bool {
		return scrape(t, o.base)[breakerOpen] == 1
	})
	eventually(t, "the council to receive every referral while the provider is down", func() bool {
		return o.sims.Councils["council-cwac"].Stats().Created == n
	})
	if got := prov.Stats().Created; got != 0 {
		t.Fatalf("provider created %d orders while failing every request", got)
	}
	m := scrape(t, o.base)
	if v := m[series("iceshub_delivery_failures_total", "class", "transient", "kind", "referral", "partner", "provider")]; v < 1 {
		t.Errorf("transient failures to the provider = %v, want some", v)
	}
	// The failing copies left the provider's queue for its parked lanes.
	if v := m[series("iceshub_queue_depth", "topic", routes.TopicParked("provider"))]; v < 1 {
		t.Errorf("provider parked depth = %v during the outage, want the waiting referrals", v)
	}
	if v := m[series("iceshub_queue_oldest_pending_age_seconds", "topic", routes.TopicParked("provider"))]; v <= 0 {
		t.Errorf("oldest parked age for the provider = %v during the outage, want > 0", v)
	}

	prov.ClearFailure() // the provider recovers
	eventually(t, "every referral to reach the provider", func() bool {
		for _, id := range ids {
			if o.outcomes(t, id)["provider"] != store.OutcomeSent {
				return false
			}
		}
		return true
	})
	eventually(t, "the provider's breaker to be seen closed again", func() bool {
		return scrape(t, o.base)[breakerClosed] == 1
	})

	// Exactly once to its business effect: one order per referral, each
	// under the referral's key, and every request (failed or repeated)
	// carried one of those keys.
	want := map[string]bool{}
	for _, id := range ids {
		want[routes.IdempotencyKey(id, "provider", model.KindReferral)] = true
	}
	created := prov.Created()
	if len(created) != n {
		t.Fatalf("provider created %d orders for %d referrals", len(created), n)
	}
	for _, c := range created {
		if !want[c.Header.IdempotencyKey] {
			t.Errorf("an order was created under unexpected key %s", c.Header.IdempotencyKey)
		}
		delete(want, c.Header.IdempotencyKey)
	}
	if len(want) != 0 {
		t.Errorf("%d referrals have no order", len(want))
	}
	keys := keysOf(ids)
	for _, r := range prov.Received() {
		if !keys[r.Header.IdempotencyKey] {
			t.Errorf("a request to the provider carried key %q, not a referral's", r.Header.IdempotencyKey)
		}
	}
	st := prov.Stats()
	if st.Failed == 0 {
		t.Error("the provider never failed a request: the outage was not exercised")
	}
	m = scrape(t, o.base)
	if v := m[series("iceshub_deliveries_delivered_total", "kind", "referral", "partner", "provider")]; v < n {
		t.Errorf("delivered to provider = %v, want at least %d", v, n)
	}
	if v := m[series("iceshub_deliveries_delivered_total", "kind", "referral", "partner", "council-cwac")]; v != n {
		t.Errorf("delivered to the council = %v, want %d", v, n)
	}
	if len(o.deadLetters(t)) != 0 {
		t.Errorf("transient failures were dead-lettered: %+v", o.deadLetters(t))
	}
	t.Logf("provider: %+v", st)
}

// keysOf returns the provider's idempotency keys of referrals.
func keysOf(ids []string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		out[routes.IdempotencyKey(id, "provider", model.KindReferral)] = true
	}
	return out
}

// TestPermanentRefusalIsDeadLetteredThenReplayed: a 422 from the provider
// dead-letters the delivery at the first answer, with no retry; the
// council's copy is unaffected. Once the provider is fixed, a replay
// delivers it under the same idempotency key, and the dead letter is kept,
// marked replayed. A second refusal is discarded with a reason, which is
// recorded; the evidence stays. While the hub runs, 'iceshub dlq replay'
// and 'discard' are refused (they would write the store under it) and name
// the admin API, which makes the decisions; 'dlq list' reads and works.
//
// Longer than 100 lines: a refusal, its dead letter, the partner fixed, the replay and its
// delivery, in order.
func TestPermanentRefusalIsDeadLetteredThenReplayed(t *testing.T) {
	const token = "fictional-admin-token-for-dlq-tests"
	o := startOpsHub(t, opsHubConfig{adminToken: token})
	prov := o.sims.Provider
	prov.FailNext(1, http.StatusUnprocessableEntity, "")
	template := referralTemplate(t)
	id := o.send(t, template)
	key := routes.IdempotencyKey(id, "provider", model.KindReferral)

	eventually(t, "the refusal to be dead-lettered", func() bool { return len(o.deadLetters(t)) == 1 })
	dl := o.deadLetters(t)[0]
	if dl.Recipient != "provider" || dl.StatusCode != http.StatusUnprocessableEntity || dl.IdempotencyKey != key || dl.Resolution != nil {
		t.Fatalf("dead letter = %+v", dl)
	}
	if got := prov.Stats().Requests; got != 1 {
		t.Errorf("provider received %d requests for a permanent refusal, want 1 (no retry)", got)
	}
	eventually(t, "the council's copy", func() bool { return o.outcomes(t, id)["council-cwac"] == store.OutcomeSent })
	if got := o.outcomes(t, id)["provider"]; got != store.OutcomeFailed {
		t.Errorf("provider outcome = %q, want failed", got)
	}
	m := scrape(t, o.base)
	if v := m[series("iceshub_dead_letters_open", "kind", "referral", "partner", "provider")]; v != 1 {
		t.Errorf("open dead letters = %v, want 1", v)
	}

	// The provider is fixed (FailNext is used up). The CLI is refused on
	// the running hub's data directory, naming the lock and the admin API;
	// the admin API replays.
	idArg := strconv.FormatInt(dl.ID, 10)
	var out, errOut bytes.Buffer
	if code := run([]string{"dlq", "replay", idArg, "--data", o.dir, "--by", "test-operator", "--reason", "provider fixed"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), filepath.Join(o.dir, sqlite.LockFileName)) || !strings.Contains(errOut.String(), "POST /admin/dlq/{id}/replay") {
		t.Fatalf("dlq replay with the hub running = %d, want 1 naming the lock and the admin API\n%s%s", code, out.String(), errOut.String())
	}
	if got, _ := o.hub.Store().DeadLetter(context.Background(), dl.ID); got.Resolution != nil {
		t.Fatalf("the refused dlq replay decided the dead letter: %+v", got.Resolution)
	}
	if code, body := adminCall(t, http.MethodPost, o.base+"/admin/dlq/"+idArg+"/replay", token, `{"by": "test-operator", "reason": "provider fixed"}`); code != http.StatusOK {
		t.Fatalf("admin replay = %d\n%s", code, body)
	}
	eventually(t, "the replayed delivery to reach the provider", func() bool { return prov.Stats().Created == 1 })
	if c := prov.Created()[0]; c.Header.IdempotencyKey != key {
		t.Errorf("replay sent key %s, want the original %s", c.Header.IdempotencyKey, key)
	}
	eventually(t, "the replay's receipt", func() bool {
		ok, err := o.hub.Store().WasDelivered(context.Background(), dl.ReferralID, key)
		return err == nil && ok
	})
	got, err := o.hub.Store().DeadLetter(context.Background(), dl.ID)
	if err != nil || got.Resolution == nil || got.Resolution.Action != store.ActionReplayed || got.Resolution.By != "admin-api:test-operator" {
		t.Fatalf("after replay the dead letter is %+v, %v; want it kept and marked replayed by admin-api:test-operator", got, err)
	}
	if code, body := adminCall(t, http.MethodPost, o.base+"/admin/dlq/"+idArg+"/replay", token, ""); code != http.StatusConflict {
		t.Errorf("a second replay = %d, %s; want 409, already replayed", code, body)
	}

	// A second refusal, discarded.
	prov.FailNext(1, http.StatusUnprocessableEntity, "")
	id2 := o.send(t, template)
	eventually(t, "the second refusal to be dead-lettered", func() bool { return len(o.deadLetters(t)) == 2 })
	second := o.deadLetters(t)[1]
	if second.ReferralID != id2 {
		t.Fatalf("second dead letter is about %s, want %s", second.ReferralID, id2)
	}
	arg2 := strconv.FormatInt(second.ID, 10)
	if code := run([]string{"dlq", "discard", arg2, "--data", o.dir}, &out, &errOut); code != 2 {
		t.Errorf("discard without a reason = %d, want 2 (usage)", code)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"dlq", "discard", arg2, "--data", o.dir, "--reason", "sent by mistake; the requester will resend"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "POST /admin/dlq/{id}/discard") {
		t.Fatalf("dlq discard with the hub running = %d, want 1 naming the admin API\n%s", code, errOut.String())
	}
	if code, body := adminCall(t, http.MethodPost, o.base+"/admin/dlq/"+arg2+"/discard", token, `{"reason": "sent by mistake; the requester will resend"}`); code != http.StatusOK {
		t.Fatalf("admin discard = %d\n%s", code, body)
	}
	out.Reset()
	if code := run([]string{"dlq", "list", "--json", "--all", "--data", o.dir}, &out, &errOut); code != 0 {
		t.Fatalf("dlq list = %d\n%s", code, errOut.String())
	}
	var listed []struct {
		ID         int64  `json:"id"`
		State      string `json:"state"`
		Resolution struct {
			Reason string `json:"reason"`
		} `json:"resolution"`
	}
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatalf("dlq list --json: %v\n%s", err, out.String())
	}
	if len(listed) != 2 || listed[0].State != "replayed" || listed[1].State != "discarded" || !strings.Contains(listed[1].Resolution.Reason, "sent by mistake") {
		t.Errorf("dlq list --all = %s", out.String())
	}
	out.Reset()
	if code := run([]string{"dlq", "list", "--data", o.dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no dead letters") {
		t.Errorf("dlq list (open only) = %d\n%s", code, out.String())
	}
	if prov.Stats().Created != 1 {
		t.Errorf("the discarded delivery reached the provider")
	}
	m = scrape(t, o.base)
	if v := m[series("iceshub_dead_letters_total", "kind", "referral", "partner", "provider")]; v != 2 {
		t.Errorf("dead letters total = %v, want 2 (never decreases)", v)
	}
	if v := m[series("iceshub_dead_letters_open", "kind", "referral", "partner", "provider")]; v != 0 {
		t.Errorf("open dead letters = %v after replay and discard, want 0", v)
	}
}

// TestMetricsCountersMove scrapes /metrics before and after a referral and
// its repeat, and checks each counter moved by what happened.
func TestMetricsCountersMove(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{})
	before := scrape(t, o.base)
	template := referralTemplate(t)
	id := o.send(t, template)
	eventually(t, "both copies delivered", func() bool {
		out := o.outcomes(t, id)
		return out["provider"] == store.OutcomeSent && out["council-cwac"] == store.OutcomeSent
	})
	eventually(t, "the provider's queue to empty", func() bool {
		return scrape(t, o.base)[series("iceshub_queue_depth", "topic", routes.TopicDeliver("provider"))] == 0
	})
	after := scrape(t, o.base)
	moved := func(name string, want float64, labels ...string) {
		t.Helper()
		s := series(name, labels...)
		if d := after[s] - before[s]; d != want {
			t.Errorf("%s moved by %v, want %v", s, d, want)
		}
	}
	moved("iceshub_messages_received_total", 1, "kind", "referral", "outcome", "accepted")
	moved("iceshub_deliveries_delivered_total", 1, "kind", "referral", "partner", "provider")
	moved("iceshub_deliveries_delivered_total", 1, "kind", "referral", "partner", "council-cwac")
	moved("iceshub_delivery_latency_seconds_count", 1, "partner", "provider")
	moved("iceshub_http_requests_total", 1, "code", "200", "route", "/fhir/")
	// The referral is cut as it is accepted; the router's handlers are
	// those of the partners' queues.
	moved("iceshub_router_handler_execution_time_seconds_count", 1, "handler_name", routes.TopicDeliver("provider"), "success", "true")
	moved("iceshub_router_subscriber_messages_received_total", 1, "acked", "acked", "handler_name", routes.TopicDeliver("provider"), "subscriber_name", "store")
	if after[series("iceshub_store_up")] != 1 {
		t.Error("iceshub_store_up is not 1")
	}
	if after[series("iceshub_breaker_state", "partner", "provider", "state", "closed")] != 1 {
		t.Error("the provider's breaker is not reported closed")
	}

	// The same request again is a duplicate, not a new message.
	body := bytes.ReplaceAll(template, []byte("{{header}}"), []byte("5d1c1a53-0000-4000-8000-000000000001"))
	body = bytes.ReplaceAll(body, []byte("{{bundle}}"), []byte("5d1c1a53-0000-4000-8000-000000000002"))
	for range 2 {
		if status, answer, err := o.sims.PostBundle(context.Background(), o.base, body); err != nil || status != http.StatusOK {
			t.Fatalf("POST = %d, %v\n%s", status, err, answer)
		}
	}
	again := scrape(t, o.base)
	if d := again[series("iceshub_messages_received_total", "kind", "referral", "outcome", "duplicate")] -
		after[series("iceshub_messages_received_total", "kind", "referral", "outcome", "duplicate")]; d != 1 {
		t.Errorf("duplicates moved by %v, want 1", d)
	}
}
