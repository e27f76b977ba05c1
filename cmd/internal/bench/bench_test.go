package bench

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/nhsnumber"
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
		if _, err := writeBenchConfig(path, dir, stands, flow); err != nil {
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
