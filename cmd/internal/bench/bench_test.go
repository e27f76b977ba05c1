package bench

import (
	"bytes"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// A fresh copy of a bench bundle has every UUID replaced, the same old UUID
// by the same new one everywhere, and nothing else changed.
func TestBenchBundleFreshReplacesEveryUUIDConsistently(t *testing.T) {
	old1, old2 := "0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	body := []byte(`{"a":"urn:uuid:` + old1 + `","b":"` + old2 + `","c":"Patient/` + old1 + `"}`)
	b := newBenchBundle(body, 1)
	one, two := b.fresh(), b.fresh()
	if bytes.Equal(one, two) || bytes.Contains(one, []byte(old1)) || bytes.Contains(one, []byte(old2)) || len(one) != len(body) {
		t.Fatalf("fresh copies %s and %s of %s", one, two, body)
	}
	ids := uuidPattern.FindAll(one, -1)
	if len(ids) != 3 || !bytes.Equal(ids[0], ids[2]) || bytes.Equal(ids[0], ids[1]) {
		t.Fatalf("ids in the fresh copy: %q; want the first and third alike, the second another", ids)
	}
	if got := uuidPattern.ReplaceAll(one, nil); !bytes.Equal(got, uuidPattern.ReplaceAll(body, nil)) {
		t.Fatalf("the copy differs from the original other than in its ids: %s", one)
	}
	if string(body[:5]) != `{"a":` || !bytes.Contains(body, []byte(old1)) {
		t.Fatal("fresh changed the bundle it copies")
	}
}

// TestBenchReferralsAreAboutDistinctPeople: each fresh copy names another
// person, with a valid NHS number of the test range.
func TestBenchReferralsAreAboutDistinctPeople(t *testing.T) {
	seen := map[[10]byte]int64{}
	for i := int64(0); i < 4000; i++ {
		n := i
		if i >= 2000 { // and the last ones before it starts again
			n = 900_000 - 4000 + i
		}
		d := testNHSNumber(n)
		if err := nhsnumber.Check(string(d[:])); err != nil || string(d[:3]) != "999" {
			t.Fatalf("testNHSNumber(%d) = %s: %v", n, d[:], err)
		}
		if m, ok := seen[d]; ok {
			t.Fatalf("testNHSNumber(%d) = testNHSNumber(%d) = %s; want a different person", n, m, d[:])
		}
		seen[d] = n
	}
	// The original is a person the counter reaches only after about 790,000
	// referrals, so that a fresh copy never names them by chance.
	body := []byte(`{"identifier":[{"value":"9998765439"}],"subject":{"identifier":{"value":"9998765439"}},"n":"19998765439"}`)
	b := newBenchBundle(body, 1)
	one, two := b.fresh(), b.fresh()
	got1, got2 := nhsNumberPattern.FindAll(one, -1), nhsNumberPattern.FindAll(two, -1)
	if len(got1) != 2 || !bytes.Equal(got1[0], got1[1]) || bytes.Equal(got1[0], []byte("9998765439")) {
		t.Fatalf("NHS numbers in a fresh copy: %q; want one new number twice", got1)
	}
	if len(got2) != 2 || bytes.Equal(got1[0], got2[0]) {
		t.Fatalf("two fresh copies name %q and %q; want different people", got1[0], got2[0])
	}
	if !bytes.Contains(one, []byte(`"n":"19998765439"`)) {
		t.Fatalf("a longer number that only contains a test-range number was changed: %s", one)
	}
}

// The f1 flow's configuration is the built-in one without the route of
// referrals to the requester: it still loads, and every other route and
// partner is as in the default flow's.
func TestBenchFlowF1LeavesOutOnlyTheRequesterRoute(t *testing.T) {
	stands := newStandIns()
	defer stands.close()
	load := func(flow string) *config.Config {
		t.Helper()
		dir := t.TempDir()
		path := filepath.Join(dir, "iceshub.yaml")
		if _, err := writeBenchConfig(path, dir, stands, flow, BackendSQLite, 0); err != nil {
			t.Fatalf("flow %s: %v", flow, err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("flow %s: the written configuration does not load: %v", flow, err)
		}
		return cfg
	}
	all, f1 := load(FlowDefault), load(FlowF1)
	routes := func(c *config.Config) []string {
		var out []string
		for _, r := range c.Routes {
			out = append(out, r.Message+" -> "+r.To)
		}
		return out
	}
	want := slices.DeleteFunc(routes(all), func(r string) bool { return r == "referral -> requester" })
	if len(want) != len(all.Routes)-1 {
		t.Fatalf("the default flow has no single referral -> requester route: %v", routes(all))
	}
	if got := routes(f1); !slices.Equal(got, want) {
		t.Errorf("f1 routes:\n%v\nwant:\n%v", got, want)
	}
	if len(f1.Partners) != len(all.Partners) {
		t.Errorf("f1 has %d partners, the default flow %d", len(f1.Partners), len(all.Partners))
	}
	for _, p := range f1.Partners {
		if p.BaseURL != stands.urls[p.Kind] {
			t.Errorf("f1: partner %s points at %s, not its stand-in", p.ID, p.BaseURL)
		}
	}
}

// A cancellation made for a fresh referral names that referral's
// ServiceRequest and person, and is a message of its own.
func TestBenchCancellationNamesItsReferral(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata", "fhir")
	bundles, err := loadBenchBundles(dir)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := loadCancelTemplate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, rb := range bundles {
		body := rb.fresh()
		ref, err := fhirmap.ParseMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		one, two := tpl.cancellationOf(rb, body), tpl.cancellationOf(rb, body)
		c, err := fhirmap.ParseMessage(one)
		if err != nil {
			t.Fatalf("the cancellation does not parse: %v", err)
		}
		if c.Kind != model.KindCancellation || c.Target.ServiceRequestID != ref.Referral.Source.ServiceRequestID ||
			c.Target.NHSNumber != ref.Referral.Person.NHSNumber || c.Target.NHSNumber == "" {
			t.Errorf("cancellation %s of %s for %s; want %s of %s for %s", c.Kind, c.Target.ServiceRequestID, c.Target.NHSNumber,
				model.KindCancellation, ref.Referral.Source.ServiceRequestID, ref.Referral.Person.NHSNumber)
		}
		if bytes.Equal(one, two) {
			t.Error("two cancellations of one referral are the same message")
		}
	}
}

// The provider stand-in tells a cancellation from its order, and a
// cancellation received before its order (or without it) is a violation.
func TestStandInsCountOrderViolations(t *testing.T) {
	s := newStandIns()
	defer s.close()
	post := func(kind, path, corr, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.urls[kind]+path, strings.NewReader(body))
		req.Header.Set("X-Correlation-ID", corr)
		req.Header.Set("Idempotency-Key", corr+path+body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("provider", "/orders", "a", "")
	post("provider", "/orders/ORD-1/cancellation", "a", "")
	post("provider", "/orders/ORD-2/cancellation", "b", "")
	post("provider", "/orders", "b", "")
	post("provider", "/orders/ORD-3/cancellation", "c", "")
	post("nhs", "/Task/1", "a", `{"status":"requested"}`)
	post("nhs", "/Task/1", "a", `{"status":"cancelled"}`)
	post("nhs", "/Task/1", "a", `{"status":"cancelled"}`)
	cancels := map[string]string{"a" + cancelSuffix: "a", "b" + cancelSuffix: "b", "c" + cancelSuffix: "c"}
	if v, n := s.orderViolations("provider", cancels); v != 2 || n != 2 {
		t.Errorf("provider: %d violations of %d pairs; want 2 (b before its order, c without it) of 2", v, n)
	}
	if v, n := s.orderViolations("nhs", cancels); v != 0 || n != 1 {
		t.Errorf("nhs: %d violations of %d pairs; want 0 of 1", v, n)
	}
	if d, r := s.keys("nhs"); d != 2 || r != 1 {
		t.Errorf("nhs: %d keys, %d repeats; want 2 and 1", d, r)
	}
}

// On PostgreSQL the bench's configuration names the backend and the lease
// and loads; the options refuse what does not go together.
func TestBenchOnPostgres(t *testing.T) {
	stands := newStandIns()
	defer stands.close()
	dir := t.TempDir()
	path := filepath.Join(dir, "iceshub.yaml")
	if _, err := writeBenchConfig(path, dir, stands, FlowDefault, BackendPostgres, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Backend != BackendPostgres || cfg.Store.Postgres.Lease != 5*time.Second {
		t.Errorf("store %+v; want postgres with a lease of 5s", cfg.Store)
	}
	ok := Options{Backend: BackendPostgres, Replicas: 3, Scenario: "failover"}
	if err := ok.Check(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
	for _, o := range []Options{
		{Backend: BackendSQLite, Replicas: 2, Scenario: "steady"},
		{Backend: BackendPostgres, Replicas: 1, Scenario: "failover"},
		{Backend: BackendSQLite, Replicas: 1, Scenario: "pgrestart"},
		{Backend: BackendPostgres, Replicas: 2, Scenario: "backlog", Preload: 10},
		{Backend: "mysql", Replicas: 1, Scenario: "steady"},
	} {
		if o.Check() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
