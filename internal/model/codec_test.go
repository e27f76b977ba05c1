package model_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// storedCopies returns copies as the hub stores them: every referral
// fixture, whole and cut for every route of the built-in configuration.
func storedCopies(t *testing.T) []model.Delivery {
	t.Helper()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../testdata/fhir/referral-*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("referral fixtures: %v, %v", files, err)
	}
	var out []model.Delivery
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := fhirmap.ParseMessage(body)
		if err != nil {
			p, err = fhirmap.ParseTransaction(body)
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p.Referral.ID = "3f1c2a9e-0000-4000-8000-000000000001"
		p.Referral.ReceivedAt = time.Date(2026, 11, 24, 9, 30, 15, 123456789, time.UTC)
		out = append(out, model.Delivery{Kind: model.KindReferral, Recipient: "provider", IdempotencyKey: "k", Referral: p.Referral})
		for _, r := range cfg.Routes {
			cut, err := minimise.Apply(&p.Referral, r.Rules(), minimise.Options{Now: p.Referral.ReceivedAt, PseudonymKey: []byte("test-pseudonym-key")})
			if err != nil {
				t.Fatalf("%s, route to %s: %v", f, r.To, err)
			}
			out = append(out, model.Delivery{
				Kind: model.Kind(r.Message), Recipient: r.To, IdempotencyKey: "key-" + r.To, Fields: r.Disclosed(),
				Purpose: r.Purpose, LawfulBasis: "UK GDPR 6(1)(e)", Subject: "c2Vh", Referral: cut,
				Refs: model.References{OrderReference: "ORD-1", CaseReference: "CASE-1"},
			})
		}
	}
	return out
}

// awkwardCopy holds what encoders are known to differ on: invalid UTF-8,
// HTML characters, JavaScript line separators, control characters, empty
// and nil slices, zero and zoned times, pointers set.
func awkwardCopy() model.Delivery {
	zone := time.FixedZone("BST", 3600)
	return model.Delivery{
		Kind: model.KindReferral, Recipient: "council-a", IdempotencyKey: "a\xffb", Fields: []string{},
		Purpose: "<script>&\"x\"</script>", Subject: "line\u2028sep\u2029para\x00\x1f\x7f",
		Referral: model.Referral{
			ID: "r", ReceivedAt: time.Date(2026, 3, 29, 1, 30, 0, 5, zone),
			Person: model.Person{
				Name:    model.HumanName{Given: []string{"Zoë", "😀", ""}, Family: "O'Brien-Ñúñez \\ / \t"},
				Telecom: []model.ContactPoint{{Value: ""}},
			},
			Equipment:  []model.EquipmentItem{{Quantity: -1, Description: strings.Repeat("é", 300)}},
			Permission: &model.Permission{Given: false, Source: model.PermissionSourceFHIRConsent},
			Event:      &model.Event{ID: "e", OccurredAt: time.Time{}, Complaint: &model.Complaint{Reference: "c", Contact: []model.ContactPoint{}}},
		},
	}
}

func TestStoredCopiesAreWrittenAsEncodingJSONWritesThem(t *testing.T) {
	for i, d := range append(storedCopies(t), awkwardCopy()) {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := model.MarshalDelivery(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("copy %d (to %s) encoded differently:\n got %s\nwant %s", i, d.Recipient, got, want)
		}
	}
}

func TestStoredCopiesAreReadAsEncodingJSONReadsThem(t *testing.T) {
	for i, d := range append(storedCopies(t), awkwardCopy()) {
		stored, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var want, got model.Delivery
		if err := json.Unmarshal(stored, &want); err != nil {
			t.Fatal(err)
		}
		if err := model.UnmarshalDelivery(stored, &got); err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("copy %d (to %s) read differently:\n got %+v\nwant %+v", i, d.Recipient, got, want)
		}
	}
}

func TestAnUnreadableCopyIsAnError(t *testing.T) {
	for _, bad := range []string{``, `{`, `{"kind":1}`, `{"referral":{"receivedAt":"yesterday"}}`, `[]`, `{"fields":"x"}`} {
		var d model.Delivery
		if err := model.UnmarshalDelivery([]byte(bad), &d); err == nil {
			t.Errorf("UnmarshalDelivery(%q) = nil; want an error", bad)
		}
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("json.Unmarshal(%q) = nil; the case is not one encoding/json refuses", bad)
		}
	}
}
