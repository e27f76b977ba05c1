package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/democreds"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/ready"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTestHub runs a hub on the default configuration against simulated
// partners, on a temporary store, and returns its base URL.
func startTestHub(t testing.TB, logs io.Writer) (string, *hub.Hub, *demo.Partners) {
	t.Helper()
	return startHubWith(t, logs, nil)
}

// startHubWith is startTestHub with the configuration changed by mutate
// (when not nil) after the demo credentials are added.
func startHubWith(t testing.TB, logs io.Writer, mutate func(*config.Config)) (string, *hub.Hub, *demo.Partners) {
	t.Helper()
	sims := demo.NewPartners()
	t.Cleanup(sims.Close)
	cfg := simulatedConfig(t, sims, t.TempDir())
	if mutate != nil {
		mutate(cfg)
	}
	logger := slog.New(logging.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h, err := hub.New(cfg, logger, hub.Options{Retry: routes.Retry{MaxRetries: 2, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond},
		Park: routes.Park{First: 20 * time.Millisecond, Max: 200 * time.Millisecond, Poll: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	base, stop := runHub(t, h)
	t.Cleanup(stop)
	return base, h, sims
}

// runHub runs h on a free loopback port until stop, which fails t if the
// hub stops with an error, and returns its base URL once it is ready.
func runHub(t testing.TB, h *hub.Hub) (base string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub stopped with error: %v", err)
		}
	}
	base = "http://" + ln.Addr().String()
	if err := ready.Wait(context.Background(), base, 10*time.Second); err != nil {
		stop()
		t.Fatal(err)
	}
	return base, stop
}

// simulatedConfig is the built-in configuration on dataDir, its partners
// the simulators of sims (which take no token), with the demo's inbound
// credentials, which sims signs with.
func simulatedConfig(t testing.TB, sims *demo.Partners, dataDir string) *config.Config {
	t.Helper()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.DataDir = dataDir
	cfg.Store.PollInterval = 5 * time.Millisecond
	for i := range cfg.Partners {
		cfg.Partners[i].BaseURL = sims.URLs[cfg.Partners[i].ID]
		cfg.Partners[i].TokenEnv = ""
	}
	if sims.Creds, err = democreds.Add(cfg, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitOutcomes waits until every route of a referral has an outcome.
func waitOutcomes(t *testing.T, h *hub.Hub, referralID string, n int) []store.Disclosure {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := h.Store().Disclosures(context.Background(), referralID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("referral %s: %d of %d outcomes", referralID, len(ds), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readCanonical(t *testing.T, name string) model.Referral {
	t.Helper()
	var r model.Referral
	if err := json.Unmarshal(mustRead(t, filepath.Join("../../testdata/fhir/golden", name)), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEndToEndEachPartnerGetsOnlyItsFields sends a referral rich in clinical
// context over HTTP and checks the exact values each partner received: the
// provider gets what delivery and safe installation need (equipment, address,
// weight for safe working loads) and no clinical notes, conditions or date of
// birth; the council gets identity and the order, and nothing clinical.
func TestEndToEndEachPartnerGetsOnlyItsFields(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	status, answer, err := sims.PostBundle(context.Background(), base, mustRead(t, "../../testdata/fhir/referral-3-lines.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	ds := waitOutcomes(t, h, id, 3)
	for _, d := range ds {
		if d.Outcome != store.OutcomeSent {
			t.Fatalf("outcome %+v", d)
		}
	}
	full := readCanonical(t, "referral-3-lines.json")
	provBody, ok := sims.Received("provider", routes.IdempotencyKey(id, "provider", model.KindReferral))
	if !ok {
		t.Fatal("provider received nothing under the referral's key")
	}
	council, ok := sims.Received("council-ceast", routes.IdempotencyKey(id, "council-ceast", model.KindReferral))
	if !ok {
		t.Fatal("Cheshire East (CW1) received nothing under the referral's key")
	}
	if n := len(sims.Councils["council-cwac"].Received()); n != 0 {
		t.Errorf("Cheshire West received %d requests for a Crewe referral", n)
	}

	clinical := []string{full.Clinical.Conditions[0].Display, full.Clinical.Notes[0], full.Clinical.Notes[1],
		full.Clinical.Reasons[0].Display, full.Clinical.Observations[0].Code.Display}
	for _, v := range clinical {
		if bytes.Contains(provBody, []byte(v)) {
			t.Errorf("provider received clinical text %q", v)
		}
		if bytes.Contains(council, []byte(v)) {
			t.Errorf("council received clinical text %q", v)
		}
	}
	for _, v := range []string{full.Clinical.Weight.Value, full.Equipment[0].Code, full.Equipment[0].Description, full.Equipment[2].Description} {
		if bytes.Contains(council, []byte(v)) {
			t.Errorf("council received equipment or weight detail %q", v)
		}
	}
	for _, v := range []string{full.Person.NHSNumber, full.Person.Name.Family, full.Person.Address.Postcode, full.Person.Address.Lines[1],
		full.Equipment[0].Code, full.Clinical.Weight.Value, full.Person.Telecom[0].Value} {
		if !bytes.Contains(provBody, []byte(v)) {
			t.Errorf("provider lacks %q, which delivery needs", v)
		}
	}
	if bytes.Contains(provBody, []byte(full.Person.BirthDate)) {
		t.Error("provider received the date of birth")
	}
	for _, v := range []string{full.Person.NHSNumber, full.Person.Name.Family, full.Person.BirthDate, full.Person.Address.Postcode} {
		if !bytes.Contains(council, []byte(v)) {
			t.Errorf("council lacks %q, which its case needs", v)
		}
	}

	// Sending the same request again creates nothing and answers the same.
	again, _ := http.NewRequest(http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(mustRead(t, "../../testdata/fhir/referral-3-lines.json")))
	again.Header.Set("Content-Type", "application/fhir+json")
	if err := sims.Creds.Authorise(again); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(again)
	if err != nil {
		t.Fatal(err)
	}
	repeat, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if demo.ReferralIDFrom(repeat) != id {
		t.Errorf("a repeated message (same MessageHeader id) got referral %q, want the first, %q", demo.ReferralIDFrom(repeat), id)
	}
}

// TestBaRSExamples: the real NHS BaRS bundles carry an NHS number that fails
// the check digit; the hub must refuse each with 422 pointing at it, and the
// 999 example with a valid NHS number must be accepted. None may cause a 5xx.
func TestBaRSExamples(t *testing.T) {
	base, _, sims := startTestHub(t, io.Discard)
	files, _ := filepath.Glob("../../testdata/fhir/bars/*.json")
	if len(files) != 3 {
		t.Fatalf("found %d BaRS examples, want 3", len(files))
	}
	for _, f := range files {
		status, answer, err := sims.PostBundle(context.Background(), base, mustRead(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(answer), `.identifier[0].value"`) {
			t.Errorf("%s: %d %s; want 422 naming the NHS number", filepath.Base(f), status, answer)
		}
	}
	fixed := bytes.ReplaceAll(mustRead(t, "../../testdata/fhir/bars/999-to-cas-service-request.json"), []byte("3478526985"), []byte("9990000018"))
	// Its requester is a Practitioner and its sender Organization has no
	// ODS code: nothing tells the hub where the Task goes, which a route
	// needs, so it is refused at once rather than never answered.
	status, answer, err := sims.PostBundle(context.Background(), base, fixed)
	if err != nil || status != http.StatusUnprocessableEntity || outcomeCode(answer) != "required" || !strings.Contains(string(answer), `.resource.requester"`) {
		t.Fatalf("999 example without any ODS code: %d %v\n%s; want 422 required at the requester", status, err, answer)
	}
}

// TestBaRSShapedReferralGetsItsTask: a referral shaped as BaRS senders send
// them (the requester a Practitioner, the organisation only in
// MessageHeader.sender, with an ODS code the nhs partner lists) gets its
// Task at that partner's endpoint, later status updates follow it, and
// the requesting organisation is on the provider's order.
func TestBaRSShapedReferralGetsItsTask(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	ctx := context.Background()
	var doc map[string]any
	fixed := bytes.ReplaceAll(mustRead(t, "../../testdata/fhir/bars/999-to-cas-service-request.json"), []byte("3478526985"), []byte("9990000018"))
	if err := json.Unmarshal(fixed, &doc); err != nil {
		t.Fatal(err)
	}
	named := false
	for _, e := range doc["entry"].([]any) {
		entry := e.(map[string]any)
		if entry["fullUrl"] == "urn:uuid:07939a0c-2854-46ff-9282-ad906bc93679" { // MessageHeader.sender
			entry["resource"].(map[string]any)["identifier"] = []any{map[string]any{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y9Z02"}}
			named = true
		}
		if r := entry["resource"].(map[string]any); r["resourceType"] == "ServiceRequest" {
			if _, ok := r["requester"]; !ok {
				t.Fatal("the example's ServiceRequest has no requester")
			}
		}
	}
	if !named {
		t.Fatal("the example's sender Organization was not found")
	}
	// An equipment order: one DeviceRequest for the example's patient,
	// based on its ServiceRequest (the example, a CAS referral, has none).
	doc["entry"] = append(doc["entry"].([]any), map[string]any{"fullUrl": "urn:uuid:5d7c62f1-0c8e-4c35-9d0f-2b7a8c1e4f10", "resource": map[string]any{
		"resourceType": "DeviceRequest", "id": "5d7c62f1-0c8e-4c35-9d0f-2b7a8c1e4f10", "status": "active", "intent": "order",
		"basedOn":             []any{map[string]any{"reference": "urn:uuid:236bb75d-90ef-461f-b71e-fde7f899802c"}},
		"codeCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": "https://example.org/ices/catalogue", "code": "TOILET-RAISED-01", "display": "Raised toilet seat"}}},
		"subject":             map[string]any{"reference": "urn:uuid:9589fb37-87a2-48d8-968f-b371429208a8"},
	}})
	body, _ := json.Marshal(doc)
	status, answer, err := sims.PostBundle(ctx, base, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("BaRS-shaped referral: %d %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	// LS10 is in neither council's area: that copy is held; the provider's
	// and the requester's are delivered.
	ds := waitOutcomes(t, h, id, 3)
	got := map[string]string{}
	for _, d := range ds {
		got[d.Recipient] = d.Outcome
	}
	if got["provider"] != store.OutcomeSent || got["nhs-trust"] != store.OutcomeSent || got["council"] != store.OutcomeWithheld {
		t.Fatalf("outcomes %v; want provider and requester (nhs-trust) sent, council held", got)
	}
	tasks := sims.Accepted()["nhs-trust"]
	if len(tasks) != 1 || !strings.Contains(string(tasks[0].Body), `"resourceType":"Task"`) {
		t.Fatalf("nhs-trust received %d requests, want the referral's Task: %v", len(tasks), tasks)
	}
	orders := sims.Accepted()["provider"]
	if len(orders) != 1 || !strings.Contains(string(orders[0].Body), `"Y9Z02"`) {
		t.Errorf("the provider's order does not name the requesting organisation Y9Z02: %v", orders)
	}
	rec, found, err := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: id})
	if err != nil || !found || rec.Refs.OrderReference == "" {
		t.Fatalf("referral %v %v %+v", found, err, rec.Refs)
	}
	ev := map[string]any{"eventId": uuid.NewString(), "type": "order.scheduled", "orderReference": rec.Refs.OrderReference,
		"occurredAt": time.Now().UTC().Format(time.RFC3339), "scheduledDate": time.Now().AddDate(0, 0, 3).Format(time.DateOnly)}
	if status, answer, err := sims.PostWebhook(ctx, base+provider.EventsPath, "provider", ev); err != nil || status != http.StatusAccepted {
		t.Fatalf("provider event: %d %v %s", status, err, answer)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sims.Accepted()["nhs-trust"]) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the status update did not reach the requester's endpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if update := sims.Accepted()["nhs-trust"][1]; !strings.Contains(string(update.Body), `"scheduled"`) {
		t.Errorf("the requester's update does not say scheduled: %s", update.Body)
	}
}

// TestDemoRunsAndLogsNoPersonalData runs the demo as the README does and scans
// every log line for the test people's identifiers.
func TestDemoRunsAndLogsNoPersonalData(t *testing.T) {
	var stdout bytes.Buffer
	logs := &syncBuffer{}
	code := run([]string{"demo", "-v", "--referrals", "../../testdata/fhir",
		"--refuse", "../../testdata/fhir/invalid/nhs-number-check-digit.json"}, &stdout, logs)
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nlogs:\n%s", code, stdout.String(), logs.String())
	}
	out := stdout.String()
	for _, want := range []string{"5 referrals accepted", "14 copies delivered", "1 held for review", "HTTP 422", "Bundle.entry[2].resource.identifier[0].value"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if !strings.Contains(logs.String(), "delivered") {
		t.Fatal("the demo logged no deliveries: the scan below would prove nothing")
	}

	goldens, _ := filepath.Glob("../../testdata/fhir/golden/referral-*.json")
	var secrets []string
	for _, g := range goldens {
		r := readCanonical(t, filepath.Base(g))
		secrets = append(secrets, r.Person.NHSNumber, r.Person.Name.Family, r.Person.BirthDate, r.Person.Address.Postcode,
			r.Requester.PractitionerName)
		secrets = append(secrets, r.Person.Address.Lines...)
		for _, c := range append(r.Person.Telecom, r.Requester.Contact...) {
			secrets = append(secrets, c.Value)
		}
	}
	nhsLike := regexp.MustCompile(`\b999\d{7}\b`)
	for i, line := range strings.Split(logs.String(), "\n") {
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log line %d holds personal data %q: %s", i+1, s, line)
			}
		}
		if nhsLike.MatchString(line) {
			t.Errorf("log line %d holds an NHS number: %s", i+1, line)
		}
	}
}

// TestSameDayDeliveryEndToEnd: the provider reports a same-day delivery
// straight after the order (ordered -> delivered, no step between); the
// hub accepts it and the requester's Task goes from received to completed,
// businessStatus delivered. Going back (order.scheduled after delivery) is
// refused 409, naming what may follow; an equipment issue afterwards is a
// Communication and leaves the Task completed; installation still follows.
func TestSameDayDeliveryEndToEnd(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	ctx := context.Background()
	status, answer, err := sims.PostBundle(ctx, base, mustRead(t, "../../testdata/fhir/referral-1-line.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	rec, err := demo.WaitOrdered(ctx, h, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	providerEvent := func(typ string, extra map[string]any) (int, []byte) {
		t.Helper()
		ev := map[string]any{"eventId": uuid.NewString(), "type": typ, "orderReference": rec.Refs.OrderReference,
			"occurredAt": time.Now().UTC().Format(time.RFC3339)}
		for k, v := range extra {
			ev[k] = v
		}
		status, body, err := sims.PostWebhook(ctx, base+provider.EventsPath, "provider", ev)
		if err != nil {
			t.Fatal(err)
		}
		return status, body
	}
	taskID := rec.Refs.TaskID
	taskIs := func(status, business string, versions int) func() bool {
		return func() bool {
			task, ok := sims.NHS.Task(taskID)
			return ok && task.Status == status && task.BusinessStatus.Coding[0].Code == business &&
				len(sims.NHS.TaskHistory(taskID)) == versions
		}
	}

	if status, body := providerEvent("order.delivered", nil); status != http.StatusAccepted {
		t.Fatalf("order.delivered straight after the order: %d %s", status, body)
	}
	eventually(t, "the Task completed, delivered", taskIs("completed", "delivered", 2))
	if st, _, err := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: id}); err != nil || st.Status != model.StatusDelivered {
		t.Errorf("recorded status %q, %v; want delivered", st.Status, err)
	}
	history := sims.NHS.TaskHistory(taskID)
	if history[0].Status != "received" {
		t.Errorf("first Task version %q, want received", history[0].Status)
	}

	// Backwards: refused, and the answer says what may follow.
	status, body := providerEvent("order.scheduled", map[string]any{"scheduledDate": demo.BookingDate(time.Now())})
	var refusal struct{ Code, Message string }
	_ = json.Unmarshal(body, &refusal)
	if status != http.StatusConflict || refusal.Code != "impossible-transition" ||
		!strings.Contains(refusal.Message, "allowed next: installed, collection-requested, collected") {
		t.Errorf("order.scheduled after delivery: %d %s; want 409 naming the statuses allowed next", status, body)
	}

	// An equipment issue after delivery: a Communication, the Task untouched.
	if status, body := providerEvent("equipment.issue", map[string]any{"issueType": "unsuitable", "description": "Chair too low to stand from"}); status != http.StatusAccepted {
		t.Fatalf("equipment.issue: %d %s", status, body)
	}
	eventually(t, "the equipment issue as a Communication", func() bool { return len(sims.NHS.Communications()) == 1 })
	if c := sims.NHS.Communications()[0]; c.Category[1].Coding[0].Code != "equipment-issue" {
		t.Errorf("Communication categories %+v", c.Category)
	}
	if status, body := providerEvent("order.installed", nil); status != http.StatusAccepted {
		t.Fatalf("order.installed: %d %s", status, body)
	}
	eventually(t, "the Task completed, installed", taskIs("completed", "installed", 3))
	for i, v := range sims.NHS.TaskHistory(taskID) {
		if i > 0 && v.Status != "completed" {
			t.Errorf("Task version %d is %s: a completed Task was reopened", i+1, v.Status)
		}
	}
	if rj, err := h.Store().Rejections(ctx); err != nil || len(rj) != 1 {
		t.Errorf("rejections %+v, %v; want the one backwards event", rj, err)
	}
}

// TestBookingDateIsAWeekFromTheDayItRuns: the demo never books a delivery
// in the past.
func TestBookingDateIsAWeekFromTheDayItRuns(t *testing.T) {
	if got := demo.BookingDate(time.Date(2031, 2, 25, 23, 59, 0, 0, time.UTC)); got != "2031-03-04" {
		t.Errorf("bookingDate = %s", got)
	}
	if booked, _ := time.Parse(time.DateOnly, demo.BookingDate(time.Now())); !booked.After(time.Now()) {
		t.Errorf("booked %s is not after today", booked)
	}
}

// TestWithdrawingOneLineReachesTheProviderAsAChange: the NHS withdraws one
// equipment line of an order the hub holds (its DeviceRequest revoked, the
// ServiceRequest still active); the provider receives the order amended
// without that line, the other lines kept, rather than a 422. The same
// revoked line in a referral the hub does not hold is refused at it.
func TestWithdrawingOneLineReachesTheProviderAsAChange(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	ctx := context.Background()
	original := mustRead(t, "../../testdata/fhir/referral-3-lines.json")
	status, answer, err := sims.PostBundle(ctx, base, original)
	if err != nil || status != http.StatusOK {
		t.Fatalf("referral: %d %v %s", status, err, answer)
	}
	if _, err := demo.WaitOrdered(ctx, h, demo.ReferralIDFrom(answer), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(original, &doc); err != nil {
		t.Fatal(err)
	}
	entries := doc["entry"].([]any)
	perch := entries[8].(map[string]any)["resource"].(map[string]any)
	if perch["id"] != "462309c0-83b2-522e-9ee7-a38a7b2aebf8" {
		t.Fatalf("entry 8 is %v, not the perching stool's DeviceRequest", perch["id"])
	}
	perch["status"] = "revoked"
	doc["id"] = uuid.NewString()
	entries[0].(map[string]any)["resource"].(map[string]any)["id"] = uuid.NewString() // a new message
	withdrawn, _ := json.Marshal(doc)
	before := len(sims.Accepted()["provider"])
	status, answer, err = sims.PostBundle(ctx, base, withdrawn)
	if err != nil || status != http.StatusOK || !strings.Contains(string(answer), "amendment accepted") {
		t.Fatalf("line withdrawn: %d %v %s", status, err, answer)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sims.Accepted()["provider"]) <= before {
		if time.Now().After(deadline) {
			t.Fatal("the provider received no change")
		}
		time.Sleep(20 * time.Millisecond)
	}
	change := sims.Accepted()["provider"][before]
	var order struct {
		Items []struct{ LineID, Code string }
	}
	if err := json.Unmarshal(change.Body, &order); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, it := range order.Items {
		codes = append(codes, it.Code)
	}
	if !strings.HasSuffix(change.Path, "/amendments") || strings.Join(codes, ",") != "BED-PROFILING-01,MATT-PR-02" {
		t.Errorf("provider received %s with lines %v; want the amended order without STOOL-PERCH-01", change.Path, codes)
	}

	// A new referral (another ServiceRequest) cannot withdraw a line.
	fresh := bytes.ReplaceAll(withdrawn, []byte("f23e69a2-c030-505a-b022-ed9d1a4b418c"), []byte("0e0e0e0e-c030-505a-b022-ed9d1a4b418c"))
	status, answer, err = sims.PostBundle(ctx, base, fresh)
	if err != nil || status != http.StatusUnprocessableEntity || !strings.Contains(string(answer), `"Bundle.entry[8].resource.status"`) {
		t.Errorf("a new referral with a revoked line: %d %v %s; want 422 at the DeviceRequest's status", status, err, answer)
	}
}
