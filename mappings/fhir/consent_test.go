package fhir

import (
	"encoding/json"
	"os"
	"testing"
)

// withConsent returns referral-1-line.json with one Consent entry added whose
// patient is patientRef ("" means the bundle's own Patient).
func withConsent(t *testing.T, status, provision, patientRef string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/fhir/referral-1-line.json")
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	entries := b["entry"].([]any)
	if patientRef == "" {
		for _, e := range entries {
			m := e.(map[string]any)
			if m["resource"].(map[string]any)["resourceType"] == "Patient" {
				patientRef = m["fullUrl"].(string)
			}
		}
	}
	consent := map[string]any{
		"resourceType": "Consent", "id": "c1", "status": status,
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": patientRef},
		"dateTime": "2026-11-01",
	}
	if provision != "" {
		consent["provision"] = map[string]any{"type": provision}
	}
	b["entry"] = append(entries, map[string]any{"fullUrl": "urn:uuid:5b7f3c2e-0d7a-4e0b-9a55-1f0c6d2b9e11", "resource": consent})
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConsentBecomesPermission(t *testing.T) {
	cases := []struct {
		name, status, provision, patient string
		want                             *bool
	}{
		{"active permit is express permission", "active", "permit", "", ptr(true)},
		{"active deny is a refusal", "active", "deny", "", ptr(false)},
		{"rejected is a refusal", "rejected", "", "", ptr(false)},
		{"draft records nothing", "draft", "permit", "", nil},
		{"someone else's consent is ignored", "active", "permit", "urn:uuid:00000000-0000-4000-8000-000000000099", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseMessage(withConsent(t, c.status, c.provision, c.patient))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			got := p.Referral.Permission
			switch {
			case c.want == nil && got != nil:
				t.Errorf("permission %+v, want none recorded", got)
			case c.want != nil && got == nil:
				t.Errorf("no permission recorded, want given=%v", *c.want)
			case c.want != nil && got.Given != *c.want:
				t.Errorf("given = %v, want %v", got.Given, *c.want)
			}
		})
	}
	p, err := ParseMessage(mustReadFile(t, "../../testdata/fhir/referral-1-line.json"))
	if err != nil || p.Referral.Permission != nil {
		t.Errorf("a bundle without Consent: permission %+v, %v; want none", p.Referral.Permission, err)
	}
}

func TestInvalidConsentStatusOfThePatientIsRefused(t *testing.T) {
	if _, err := ParseMessage(withConsent(t, "agreed", "permit", "")); err == nil {
		t.Error("a Consent about the patient with an invalid status was accepted")
	}
}

func ptr(b bool) *bool { return &b }

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
