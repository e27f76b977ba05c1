package fhir_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/fhir/golden")

const testdata = "../../testdata/fhir"

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parse reads a bundle with the parser its Bundle.type calls for.
func parse(t *testing.T, body []byte) (fhirmap.Parsed, error) {
	t.Helper()
	var peek struct{ Type string }
	_ = json.Unmarshal(body, &peek)
	if peek.Type == "transaction" || peek.Type == "batch" {
		return fhirmap.ParseTransaction(body)
	}
	return fhirmap.ParseMessage(body)
}

func mustParse(t *testing.T, body []byte) fhirmap.Parsed {
	t.Helper()
	p, err := parse(t, body)
	if err != nil {
		t.Fatalf("want accepted, got %v\n%s", err, issuesText(err))
	}
	return p
}

func issuesText(err error) string {
	var ve *fhirmap.ValidationError
	if !errors.As(err, &ve) {
		return ""
	}
	var b strings.Builder
	for _, i := range ve.Issues {
		b.WriteString("  " + string(i.Severity) + " " + string(i.Code) + " " + i.Expression + ": " + i.Diagnostics + "\n")
	}
	return b.String()
}

// barsFixed is a BaRS example with its failing NHS number replaced by a valid
// one from the test range.
func barsFixed(t *testing.T, name string) []byte {
	return bytes.ReplaceAll(read(t, "bars/"+name), []byte("3478526985"), []byte("9990000018"))
}

// TestGolden maps every sample referral and compares the canonical
// referral with testdata/fhir/golden. The referral id and receivedAt are
// set here as the HTTP edge would; the mapping leaves them empty. Run
// `go test ./mappings/fhir -update` to rewrite the goldens, then review the
// diff.
func TestGolden(t *testing.T) {
	cases := map[string][]byte{}
	for _, pattern := range []string{"referral-*.json", "amendment-*.json", "cancellation-*.json", "collection-*.json"} {
		files, err := filepath.Glob(filepath.Join(testdata, pattern))
		if err != nil || len(files) == 0 || (pattern == "referral-*.json" && len(files) < 5) {
			t.Fatalf("samples %s: %v %v", pattern, files, err)
		}
		for _, f := range files {
			cases[strings.TrimSuffix(filepath.Base(f), ".json")] = read(t, filepath.Base(f))
		}
	}
	cases["bars-999-fixed"] = barsFixed(t, "999-to-cas-service-request.json")
	cases["bars-111-fixed"] = barsFixed(t, "111-to-ed-service-request.json")

	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, body)
			if !strings.HasPrefix(name, "bars-") && len(p.Issues) > 0 {
				t.Errorf("a sample referral should be clean, got issues %+v", p.Issues)
			}
			r := p.Referral
			if r.ID != "" || !r.ReceivedAt.IsZero() || r.Source.CorrelationID != "" {
				t.Errorf("the mapping must leave id, receivedAt and correlation id to the caller: %q %v %q", r.ID, r.ReceivedAt, r.Source.CorrelationID)
			}
			var v any = r
			if p.Change != nil {
				// A cancellation or collection request: the event it asks
				// for and the referral it names, as the edge hands them on.
				if p.Change.ID != "" || p.Change.ReferralID != "" || !p.Change.OccurredAt.IsZero() {
					t.Errorf("the mapping must leave the event's ids and times to the caller: %+v", p.Change)
				}
				v = struct {
					Kind      model.Kind     `json:"kind"`
					Target    fhirmap.Target `json:"target"`
					Source    model.Source   `json:"source"`
					Timestamp time.Time      `json:"timestamp"`
					Event     *model.Event   `json:"event"`
				}{p.Kind, p.Target, r.Source, p.Timestamp, p.Change}
			} else {
				if p.Kind != model.KindReferral {
					t.Errorf("kind %q without an event", p.Kind)
				}
				r.ID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://example.org/iceshub/golden/"+name)).String()
				r.ReceivedAt = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)
				v = r
			}
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join(testdata, "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("referral differs from %s (run with -update and review the diff)\ngot:\n%s", path, got)
			}
		})
	}
}

// TestSampleReferrals pins what the demo and the routes rely on.
func TestSampleReferrals(t *testing.T) {
	cases := []struct {
		file      string
		nhs, pc   string
		lines     int
		bundle    string
		setting   model.SettingKind
		weight    bool
		senderODS string
	}{
		{"referral-1-line.json", "9990000018", "CH1 4QX", 1, "message", model.SettingHome, false, "Y9Z01"},
		{"referral-3-lines.json", "9990000026", "CW1 3XY", 3, "message", model.SettingHome, true, "Y9Z02"},
		{"referral-20-lines.json", "9990000034", "CH65 9QZ", 20, "message", model.SettingCareHome, false, "Y9Z01"},
		{"referral-transaction.json", "9990000042", "CH2 1XR", 2, "transaction", model.SettingHome, false, "Y9Z01"},
		{"referral-no-council.json", "9990000050", "LS10 3ZQ", 2, "message", model.SettingHome, false, "Y9Z03"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := mustParse(t, read(t, c.file))
			r := p.Referral
			if r.Person.NHSNumber != c.nhs || r.Person.Address.Postcode != c.pc || len(r.Equipment) != c.lines {
				t.Errorf("nhs %q postcode %q lines %d", r.Person.NHSNumber, r.Person.Address.Postcode, len(r.Equipment))
			}
			if p.BundleType != c.bundle || r.DeliverySetting.Kind != c.setting || (r.Clinical.Weight != nil) != c.weight {
				t.Errorf("bundle %q setting %q weight %v", p.BundleType, r.DeliverySetting.Kind, r.Clinical.Weight)
			}
			if r.Source.SenderODS != c.senderODS || r.Requester.OrganisationODS != c.senderODS {
				t.Errorf("sender ODS %q requester ODS %q, want %q", r.Source.SenderODS, r.Requester.OrganisationODS, c.senderODS)
			}
			if c.bundle == "message" && (p.Event.Code != "servicerequest-request" || r.Source.MessageID == "" || p.Entries != nil) {
				t.Errorf("message: event %+v message id %q entries %v", p.Event, r.Source.MessageID, p.Entries)
			}
			if c.bundle == "transaction" && (r.Source.MessageID != "" || len(p.Entries) == 0) {
				t.Errorf("transaction: message id %q entries %v", r.Source.MessageID, p.Entries)
			}
			if r.Requester.PractitionerName == "" || r.Person.Name.IsZero() || r.Source.ServiceRequestID == "" {
				t.Errorf("requester %q person %+v sr %q", r.Requester.PractitionerName, r.Person.Name, r.Source.ServiceRequestID)
			}
		})
	}
}

func TestTransactionEntries(t *testing.T) {
	p := mustParse(t, read(t, "referral-transaction.json"))
	if len(p.Entries) != 7 {
		t.Fatalf("entries %d, want 7", len(p.Entries))
	}
	referral := 0
	for i, e := range p.Entries {
		if e.Referral {
			referral++
			if e.ResourceType != "ServiceRequest" {
				t.Errorf("entry %d marked as the referral is a %s", i, e.ResourceType)
			}
		}
	}
	if referral != 1 {
		t.Errorf("%d entries marked as the referral", referral)
	}
	if e := p.Entries[1]; e.Method != "PUT" || e.ResourceType != "Patient" || !strings.HasPrefix(e.URL, "Patient/") {
		t.Errorf("entry 1: %+v", e)
	}
	if e := p.Entries[0]; e.Method != "POST" || e.URL != "ServiceRequest" {
		t.Errorf("entry 0: %+v", e)
	}
}

// want describes the one error a case must produce (other errors may come
// with it only when all is true).
type want struct {
	code fhirmap.IssueType
	expr string
}

// mutate loads a fixture, applies f to its JSON and returns the new body.
func mutate(t *testing.T, file string, f func(b map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(read(t, file), &b); err != nil {
		t.Fatal(err)
	}
	f(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entries(b map[string]any) []any { return b["entry"].([]any) }

func res(b map[string]any, i int) map[string]any {
	return entries(b)[i].(map[string]any)["resource"].(map[string]any)
}

func fullURL(b map[string]any, i int) string {
	return entries(b)[i].(map[string]any)["fullUrl"].(string)
}

// In referral-1-line.json the entries are: 0 MessageHeader, 1
// ServiceRequest, 2 Patient, 3 PractitionerRole, 4 Practitioner, 5
// Organization, 6 DeviceRequest.
const one = "referral-1-line.json"

func expectInvalid(t *testing.T, body []byte, w want) *fhirmap.ValidationError {
	t.Helper()
	_, err := parse(t, body)
	var ve *fhirmap.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	if !errors.Is(err, fhirmap.ErrInvalid) {
		t.Errorf("want ErrInvalid (422), got %v", ve.Kind)
	}
	found := false
	for _, i := range ve.Issues {
		if i.Diagnostics == "" || i.Expression == "" || i.Severity == "" || i.Code == "" {
			t.Errorf("incomplete issue %+v", i)
		}
		if i.IsError() && i.Code == w.code && i.Expression == w.expr {
			found = true
		}
	}
	if !found {
		t.Errorf("want error %s at %s, got:\n%s", w.code, w.expr, issuesText(err))
	}
	return ve
}

func TestNHSNumber(t *testing.T) {
	valid := []string{"9990000018", "9990000026", "9990000034", "9990000042", "9990000050", "9990000069", "9990000077", "9990000085", "9990000093", "9990000107", "999 000 0018", "999-000-0018"}
	for _, n := range valid {
		t.Run("valid "+n, func(t *testing.T) {
			p := mustParse(t, mutate(t, one, func(b map[string]any) {
				res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = n
			}))
			if p.Referral.Person.NHSNumber != strings.NewReplacer(" ", "", "-", "").Replace(n) {
				t.Errorf("NHS number %q", p.Referral.Person.NHSNumber)
			}
		})
	}
	invalid := map[string]string{
		"check digit":          "9990000019",
		"check digit 10":       "9990000000"[:9] + "1",
		"too short":            "999000001",
		"too long":             "99900000180",
		"not digits":           "99900000AB",
		"remainder 10 invalid": "1000000010",
	}
	for name, n := range invalid {
		t.Run("invalid "+name, func(t *testing.T) {
			ve := expectInvalid(t, mutate(t, one, func(b map[string]any) {
				res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = n
			}), want{fhirmap.IssueValue, "Bundle.entry[2].resource.identifier[0].value"})
			for _, i := range ve.Issues {
				if strings.Contains(i.Diagnostics, n) {
					t.Errorf("diagnostics quote the NHS number: %q", i.Diagnostics)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		expectInvalid(t, mutate(t, one, func(b map[string]any) {
			res(b, 2)["identifier"].([]any)[0].(map[string]any)["system"] = "https://example.org/local-mrn"
		}), want{fhirmap.IssueRequired, "Bundle.entry[2].resource.identifier"})
	})
	t.Run("no value", func(t *testing.T) {
		expectInvalid(t, mutate(t, one, func(b map[string]any) {
			delete(res(b, 2)["identifier"].([]any)[0].(map[string]any), "value")
		}), want{fhirmap.IssueRequired, "Bundle.entry[2].resource.identifier[0].value"})
	})
	t.Run("two different", func(t *testing.T) {
		expectInvalid(t, mutate(t, one, func(b map[string]any) {
			ids := res(b, 2)["identifier"].([]any)
			res(b, 2)["identifier"] = append(ids, map[string]any{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000026"})
		}), want{fhirmap.IssueBusinessRule, "Bundle.entry[2].resource.identifier[1].value"})
	})
}

func TestInvalidFixtures(t *testing.T) {
	cases := map[string]want{
		"invalid/nhs-number-check-digit.json": {fhirmap.IssueValue, "Bundle.entry[2].resource.identifier[0].value"},
		"invalid/focus-is-patient.json":       {fhirmap.IssueInvalid, "Bundle.entry[0].resource.focus[0].reference"},
		"invalid/missing-status.json":         {fhirmap.IssueRequired, "Bundle.entry[1].resource.status"},
	}
	for file, w := range cases {
		t.Run(file, func(t *testing.T) {
			ve := expectInvalid(t, read(t, file), w)
			errs := 0
			for _, i := range ve.Issues {
				if i.IsError() {
					errs++
				}
			}
			if errs != 1 {
				t.Errorf("want exactly one error, got:\n%s", issuesText(ve))
			}
		})
	}
}

func TestUnresolvedReferences(t *testing.T) {
	cases := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"ServiceRequest.subject": {func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[1].resource.subject.reference"}},
		"ServiceRequest.subject bare id": {func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"reference": res(b, 2)["id"]}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[1].resource.subject.reference"}},
		"ServiceRequest.subject contained": {func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"reference": "#patient"}
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[1].resource.subject.reference"}},
		"ServiceRequest.subject display only": {func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"display": "someone"}
		}, want{fhirmap.IssueRequired, "Bundle.entry[1].resource.subject.reference"}},
		"ServiceRequest.requester": {func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"reference": "PractitionerRole/nowhere"}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[1].resource.requester.reference"}},
		"DeviceRequest.subject": {func(b map[string]any) {
			res(b, 6)["subject"] = map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-000000000002"}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[6].resource.subject.reference"}},
		"MessageHeader.focus": {func(b map[string]any) {
			res(b, 0)["focus"] = []any{map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-000000000003"}}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[0].resource.focus[0].reference"}},
		"DeviceRequest.codeReference": {func(b map[string]any) {
			dr := res(b, 6)
			delete(dr, "codeCodeableConcept")
			dr["codeReference"] = map[string]any{"reference": "Device/missing"}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[6].resource.codeReference.reference"}},
		"duplicate fullUrl": {func(b map[string]any) {
			entries(b)[5].(map[string]any)["fullUrl"] = fullURL(b, 4)
		}, want{fhirmap.IssueStructure, "Bundle.entry[5].fullUrl"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { expectInvalid(t, mutate(t, one, c.f), c.w) })
	}
}

// TestToleratedReferences: references that resolve to nothing in elements
// the hub can do without are warnings, and in elements it does not read
// they are not looked at.
func TestToleratedReferences(t *testing.T) {
	body := mutate(t, one, func(b map[string]any) {
		sr := res(b, 1)
		sr["performer"] = []any{map[string]any{"reference": "d5ffd0cd-ec7e-48a1-84f1-91f4c0eb8fc5"}}
		sr["supportingInfo"] = []any{map[string]any{"reference": "e53b2595-7875-4687-80e9-23a0c8cb8ea0"}}
		sr["locationReference"] = []any{map[string]any{"reference": "Location/elsewhere"}}
		res(b, 0)["sender"] = map[string]any{"reference": "Organization/unknown"}
		res(b, 3)["organization"] = map[string]any{"reference": "urn:uuid:33a33b58-648a-4453-b981-e21ea9ggb4hj"}
	})
	p := mustParse(t, body)
	got := map[string]bool{}
	for _, i := range p.Issues {
		if i.IsError() {
			t.Errorf("error in an accepted bundle: %+v", i)
		}
		got[i.Expression] = true
	}
	for _, e := range []string{
		"Bundle.entry[1].resource.supportingInfo[0].reference",
		"Bundle.entry[1].resource.locationReference[0].reference",
		"Bundle.entry[0].resource.sender.reference",
		"Bundle.entry[3].resource.organization.reference",
	} {
		if !got[e] {
			t.Errorf("want a warning at %s, got %+v", e, p.Issues)
		}
	}
	if got["Bundle.entry[1].resource.performer[0].reference"] {
		t.Errorf("ServiceRequest.performer is not read by the hub and must not be reported")
	}
	if p.Referral.Requester.OrganisationODS != "" || p.Referral.Source.SenderODS != "" {
		t.Errorf("unresolved organisations must give no ODS: %+v %+v", p.Referral.Requester, p.Referral.Source)
	}
}

func TestRequiredElements(t *testing.T) {
	cases := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"ServiceRequest.status": {func(b map[string]any) { delete(res(b, 1), "status") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.status"}},
		"ServiceRequest.intent": {func(b map[string]any) { delete(res(b, 1), "intent") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.intent"}},
		"ServiceRequest.subject": {func(b map[string]any) { delete(res(b, 1), "subject") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.subject"}},
		"ServiceRequest.requester": {func(b map[string]any) { delete(res(b, 1), "requester") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.requester"}},
		"MessageHeader.eventCoding": {func(b map[string]any) { delete(res(b, 0), "eventCoding") },
			want{fhirmap.IssueRequired, "Bundle.entry[0].resource.eventCoding"}},
		"MessageHeader.eventCoding.code": {func(b map[string]any) { delete(res(b, 0)["eventCoding"].(map[string]any), "code") },
			want{fhirmap.IssueRequired, "Bundle.entry[0].resource.eventCoding.code"}},
		"MessageHeader.focus": {func(b map[string]any) { delete(res(b, 0), "focus") },
			want{fhirmap.IssueRequired, "Bundle.entry[0].resource.focus"}},
		"MessageHeader id and uuid fullUrl": {func(b map[string]any) {
			delete(res(b, 0), "id")
			entries(b)[0].(map[string]any)["fullUrl"] = "https://epr.example.org/fhir/MessageHeader/x"
		}, want{fhirmap.IssueRequired, "Bundle.entry[0].resource.id"}},
		"Bundle.type": {func(b map[string]any) { delete(b, "type") },
			want{fhirmap.IssueRequired, "Bundle.type"}},
		"DeviceRequest.code": {func(b map[string]any) { delete(res(b, 6), "codeCodeableConcept") },
			want{fhirmap.IssueRequired, "Bundle.entry[6].resource.codeCodeableConcept"}},
		"DeviceRequest.intent": {func(b map[string]any) { delete(res(b, 6), "intent") },
			want{fhirmap.IssueRequired, "Bundle.entry[6].resource.intent"}},
		"DeviceRequest.subject": {func(b map[string]any) { delete(res(b, 6), "subject") },
			want{fhirmap.IssueRequired, "Bundle.entry[6].resource.subject"}},
		"Patient.name": {func(b map[string]any) { delete(res(b, 2), "name") },
			want{fhirmap.IssueRequired, "Bundle.entry[2].resource.name"}},
		"Patient.address": {func(b map[string]any) { delete(res(b, 2), "address") },
			want{fhirmap.IssueRequired, "Bundle.entry[2].resource.address"}},
		"Patient.address.postalCode": {func(b map[string]any) {
			delete(res(b, 2)["address"].([]any)[0].(map[string]any), "postalCode")
		}, want{fhirmap.IssueRequired, "Bundle.entry[2].resource.address[0].postalCode"}},
		"reason or equipment": {func(b map[string]any) {
			delete(res(b, 1), "reasonCode")
			b["entry"] = entries(b)[:6]
		}, want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource"}},
		"first entry is a MessageHeader": {func(b map[string]any) {
			e := entries(b)
			e[0], e[1] = e[1], e[0]
		}, want{fhirmap.IssueInvalid, "Bundle.entry[0].resource.resourceType"}},
		"entry resourceType": {func(b map[string]any) { delete(res(b, 4), "resourceType") },
			want{fhirmap.IssueStructure, "Bundle.entry[4].resource.resourceType"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { expectInvalid(t, mutate(t, one, c.f), c.w) })
	}
}

func TestInvalidValues(t *testing.T) {
	cases := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"status not a code": {func(b map[string]any) { res(b, 1)["status"] = "Active" },
			want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.status"}},
		"status not active": {func(b map[string]any) { res(b, 1)["status"] = "completed" },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource.status"}},
		"status not a string": {func(b map[string]any) { res(b, 1)["status"] = 1 },
			want{fhirmap.IssueStructure, "Bundle.entry[1].resource.status"}},
		"priority": {func(b map[string]any) { res(b, 1)["priority"] = "whenever" },
			want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.priority"}},
		"DeviceRequest status": {func(b map[string]any) { res(b, 6)["status"] = "draft" },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[6].resource.status"}},
		"doNotPerform": {func(b map[string]any) { res(b, 1)["doNotPerform"] = true },
			want{fhirmap.IssueNotSupported, "Bundle.entry[1].resource.doNotPerform"}},
		"modifierExtension": {func(b map[string]any) {
			res(b, 6)["modifierExtension"] = []any{map[string]any{"url": "https://example.org/x", "valueBoolean": true}}
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[6].resource.modifierExtension"}},
		"gender": {func(b map[string]any) { res(b, 2)["gender"] = "F" },
			want{fhirmap.IssueInvalid, "Bundle.entry[2].resource.gender"}},
		"birthDate": {func(b map[string]any) { res(b, 2)["birthDate"] = "1941-02-30" },
			want{fhirmap.IssueValue, "Bundle.entry[2].resource.birthDate"}},
		"birthDate format": {func(b map[string]any) { res(b, 2)["birthDate"] = "12/03/1941" },
			want{fhirmap.IssueValue, "Bundle.entry[2].resource.birthDate"}},
		"postcode": {func(b map[string]any) {
			res(b, 2)["address"].([]any)[0].(map[string]any)["postalCode"] = "CHESTER"
		}, want{fhirmap.IssueValue, "Bundle.entry[2].resource.address[0].postalCode"}},
		"deceased": {func(b map[string]any) { res(b, 2)["deceasedBoolean"] = true },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[2].resource.deceasedBoolean"}},
		"Patient.name is an object": {func(b map[string]any) { res(b, 2)["name"] = map[string]any{"family": "Hughes"} },
			want{fhirmap.IssueStructure, "Bundle.entry[2].resource.name"}},
		"Patient.telecom item with unknown system": {func(b map[string]any) {
			res(b, 2)["telecom"] = []any{map[string]any{"system": "phone", "value": "01632 960101"}, map[string]any{"system": "telex", "value": "1"}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[2].resource.telecom[1]"}},
		"Patient.identifier value a number": {func(b map[string]any) {
			res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = 9990000018
		}, want{fhirmap.IssueStructure, "Bundle.entry[2].resource.identifier[0].value"}},
		"MessageHeader id": {func(b map[string]any) { res(b, 0)["id"] = "not a valid id!" },
			want{fhirmap.IssueValue, "Bundle.entry[0].resource.id"}},
		"eventUri": {func(b map[string]any) {
			delete(res(b, 0), "eventCoding")
			res(b, 0)["eventUri"] = "https://example.org/events/referral"
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[0].resource.eventUri"}},
		"entry not an object": {func(b map[string]any) { b["entry"] = append(entries(b), "oops") },
			want{fhirmap.IssueStructure, "Bundle.entry[7]"}},
		"Bundle.entry not an array": {func(b map[string]any) { b["entry"] = map[string]any{} },
			want{fhirmap.IssueStructure, "Bundle.entry"}},
		"Bundle.type unknown": {func(b map[string]any) { b["type"] = "parcel" },
			want{fhirmap.IssueInvalid, "Bundle.type"}},
		"Bundle.type transaction to $process-message": {func(b map[string]any) { b["type"] = "transaction" },
			want{fhirmap.IssueNotSupported, "Bundle.type"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			body := mutate(t, one, c.f)
			if c.w.expr == "Bundle.type" {
				_, err := fhirmap.ParseMessage(body) // the test's parse would pick ParseTransaction
				if !errors.Is(err, fhirmap.ErrInvalid) || !strings.Contains(issuesText(err), string(c.w.code)+" Bundle.type") {
					t.Errorf("want %s at Bundle.type, got %v\n%s", c.w.code, err, issuesText(err))
				}
				return
			}
			expectInvalid(t, body, c.w)
		})
	}
}

// TestWrongResourceType: references that resolve to the wrong kind of
// resource are refused where the hub uses them.
func TestWrongResourceType(t *testing.T) {
	cases := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"focus is the Patient": {func(b map[string]any) {
			res(b, 0)["focus"] = []any{map[string]any{"reference": fullURL(b, 2)}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[0].resource.focus[0].reference"}},
		"subject is a Practitioner": {func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"reference": fullURL(b, 4)}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.subject.reference"}},
		"requester is the Patient": {func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"reference": fullURL(b, 2)}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.requester.reference"}},
		"reference type disagrees": {func(b map[string]any) {
			res(b, 1)["subject"].(map[string]any)["type"] = "Group"
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.subject.type"}},
		"DeviceRequest for another Patient": {func(b map[string]any) {
			other := map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000000a", "resource": map[string]any{
				"resourceType": "Patient", "id": "other"}}
			b["entry"] = append(entries(b), other)
			res(b, 6)["subject"] = map[string]any{"reference": "Patient/other"}
		}, want{fhirmap.IssueBusinessRule, "Bundle.entry[6].resource.subject.reference"}},
		"a Patient posing as the ServiceRequest": {func(b map[string]any) {
			// The typed decoder would read a Patient as a ServiceRequest
			// without complaint; the hub reads the resourceType.
			res(b, 1)["resourceType"] = "Patient"
		}, want{fhirmap.IssueInvalid, "Bundle.entry[0].resource.focus[0].reference"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { expectInvalid(t, mutate(t, one, c.f), c.w) })
	}
}

func TestNotABundle(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"syntax":         `{"resourceType": "Bundle", "type": "message",`,
		"array":          `[{"resourceType": "Bundle"}]`,
		"null":           `null`,
		"no type":        `{"type": "message"}`,
		"a Patient":      `{"resourceType": "Patient", "id": "x"}`,
		"a made-up type": `{"resourceType": "Parcel"}`,
		"not UTF-8":      "{\"resourceType\": \"Bundle\", \"id\": \"\xff\"}",
		"trailing data":  `{"resourceType": "Bundle"} {}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			for _, f := range []func([]byte) (fhirmap.Parsed, error){fhirmap.ParseMessage, fhirmap.ParseTransaction} {
				_, err := f([]byte(body))
				var ve *fhirmap.ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, fhirmap.ErrNotBundle) || errors.Is(err, fhirmap.ErrInvalid) {
					t.Fatalf("want ErrNotBundle (400), got %v", err)
				}
				if len(ve.Issues) != 1 || ve.Issues[0].Severity != fhirmap.SeverityFatal || ve.Issues[0].Code != fhirmap.IssueStructure || ve.Issues[0].Expression == "" {
					t.Errorf("issues %+v", ve.Issues)
				}
				if strings.Contains(ve.Error(), "Parcel") {
					t.Errorf("an unknown resourceType must not be echoed: %v", ve)
				}
			}
		})
	}
	t.Run("byte order mark accepted", func(t *testing.T) {
		mustParse(t, append([]byte("\xef\xbb\xbf"), read(t, one)...))
	})
}

func TestQuantity(t *testing.T) {
	param := func(code map[string]any, value map[string]any) func(b map[string]any) {
		return func(b map[string]any) {
			p := map[string]any{"code": code}
			for k, v := range value {
				p[k] = v
			}
			res(b, 6)["parameter"] = []any{p}
		}
	}
	ices := map[string]any{"coding": []any{map[string]any{"system": fhirmap.DeviceParameterSystem, "code": "quantity"}}}
	snomed := map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "246205007"}}}
	text := map[string]any{"text": "Quantity"}
	other := map[string]any{"coding": []any{map[string]any{"system": fhirmap.DeviceParameterSystem, "code": "width"}}}
	q := func(v any) map[string]any { return map[string]any{"valueQuantity": map[string]any{"value": v}} }
	rng := func(lo, hi any) map[string]any {
		r := map[string]any{}
		if lo != nil {
			r["low"] = map[string]any{"value": lo}
		}
		if hi != nil {
			r["high"] = map[string]any{"value": hi}
		}
		return map[string]any{"valueRange": r}
	}
	ok := map[string]struct {
		f    func(b map[string]any)
		want int
	}{
		"valueQuantity":         {param(ices, q(3)), 3},
		"decimal whole number":  {param(ices, q(2.0)), 2},
		"SNOMED CT code":        {param(snomed, q(4)), 4},
		"code text":             {param(text, q(5)), 5},
		"range low = high":      {param(ices, rng(6, 6)), 6},
		"range low only":        {param(ices, rng(7, nil)), 7},
		"range high only":       {param(ices, rng(nil, 8)), 8},
		"no parameter":          {func(b map[string]any) { delete(res(b, 6), "parameter") }, 1},
		"another parameter":     {param(other, q(40)), 1},
		"maximum":               {param(ices, q(fhirmap.MaxQuantity)), fhirmap.MaxQuantity},
		"value sent as strings": {param(ices, q("9")), 9},
	}
	for name, c := range ok {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, mutate(t, one, c.f))
			if got := p.Referral.Equipment[0].Quantity; got != c.want {
				t.Errorf("quantity %d, want %d", got, c.want)
			}
		})
	}
	bad := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"zero":          {param(ices, q(0)), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0].valueQuantity.value"}},
		"negative":      {param(ices, q(-1)), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0].valueQuantity.value"}},
		"fraction":      {param(ices, q(2.5)), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0].valueQuantity.value"}},
		"too many":      {param(ices, q(fhirmap.MaxQuantity+1)), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0].valueQuantity.value"}},
		"no value":      {param(ices, map[string]any{"valueQuantity": map[string]any{"unit": "item"}}), want{fhirmap.IssueRequired, "Bundle.entry[6].resource.parameter[0].valueQuantity.value"}},
		"range differs": {param(ices, rng(1, 3)), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0].valueRange"}},
		"boolean value": {param(ices, map[string]any{"valueBoolean": true}), want{fhirmap.IssueValue, "Bundle.entry[6].resource.parameter[0]"}},
		"not a number":  {param(ices, q("two")), want{fhirmap.IssueInvalid, "Bundle.entry[6].resource.parameter[0]"}},
		"twice": {func(b map[string]any) {
			res(b, 6)["parameter"] = []any{map[string]any{"code": ices, "valueQuantity": map[string]any{"value": 1}}, map[string]any{"code": snomed, "valueQuantity": map[string]any{"value": 2}}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[6].resource.parameter[1]"}},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) { expectInvalid(t, mutate(t, one, c.f), c.w) })
	}
}

func TestEquipmentCodes(t *testing.T) {
	t.Run("catalogue coding preferred", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 6)["codeCodeableConcept"] = map[string]any{"coding": []any{
				map[string]any{"system": "http://snomed.info/sct", "code": "705417005", "display": "Toilet seat raiser"},
				map[string]any{"system": fhirmap.CatalogueSystem, "code": "TOILET-RAISED-01", "display": "Raised toilet seat"},
			}}
		}))
		if it := p.Referral.Equipment[0]; it.Code != "TOILET-RAISED-01" || it.System != fhirmap.CatalogueSystem || it.Description != "Raised toilet seat" {
			t.Errorf("item %+v", it)
		}
	})
	t.Run("text only is a warning", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 6)["codeCodeableConcept"] = map[string]any{"text": "Raised toilet seat, 4 inch"}
		}))
		if it := p.Referral.Equipment[0]; it.Code != "" || it.Description != "Raised toilet seat, 4 inch" {
			t.Errorf("item %+v", it)
		}
		if len(p.Issues) != 1 || p.Issues[0].Severity != fhirmap.SeverityWarning || p.Issues[0].Expression != "Bundle.entry[6].resource.codeCodeableConcept.coding" {
			t.Errorf("issues %+v", p.Issues)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		expectInvalid(t, mutate(t, one, func(b map[string]any) {
			res(b, 6)["codeCodeableConcept"] = map[string]any{"coding": []any{map[string]any{"display": "?"}}}
		}), want{fhirmap.IssueRequired, "Bundle.entry[6].resource.codeCodeableConcept.coding"})
	})
	t.Run("both code choices", func(t *testing.T) {
		expectInvalid(t, mutate(t, one, func(b map[string]any) {
			res(b, 6)["codeReference"] = map[string]any{"reference": fullURL(b, 5)}
		}), want{fhirmap.IssueInvalid, "Bundle.entry[6].resource.codeReference"})
	})
	t.Run("codeReference to a Device", func(t *testing.T) {
		p := mustParse(t, read(t, "referral-20-lines.json"))
		it := p.Referral.Equipment[19]
		if it.Code != "WHEELCHAIR-TRANSIT-01" || it.Description != "Transit wheelchair, 18 inch seat" || it.Quantity != 1 {
			t.Errorf("item %+v", it)
		}
	})
}

func TestDeliverySetting(t *testing.T) {
	loc := func(coding map[string]any) func(b map[string]any) {
		return func(b map[string]any) {
			l := map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000c1", "resource": map[string]any{
				"resourceType": "Location", "name": "Rosemary Court", "type": []any{map[string]any{"coding": []any{coding}}}}}
			b["entry"] = append(entries(b), l)
			res(b, 1)["locationReference"] = []any{map[string]any{"reference": "urn:uuid:00000000-0000-4000-8000-0000000000c1"}}
		}
	}
	cases := map[string]struct {
		f    func(b map[string]any)
		want model.DeliverySetting
	}{
		"default":          {func(map[string]any) {}, model.DeliverySetting{Kind: model.SettingHome}},
		"hub code":         {loc(map[string]any{"system": fhirmap.DeliverySettingSystem, "code": "supported-living"}), model.DeliverySetting{Kind: model.SettingSupported, Name: "Rosemary Court"}},
		"v3 PTRES":         {loc(map[string]any{"system": fhirmap.V3RoleCodeSystem, "code": "PTRES"}), model.DeliverySetting{Kind: model.SettingHome}},
		"v3 NCCF":          {loc(map[string]any{"system": fhirmap.V3RoleCodeSystem, "code": "NCCF"}), model.DeliverySetting{Kind: model.SettingCareHome, Name: "Rosemary Court"}},
		"unknown code":     {loc(map[string]any{"system": "https://example.org/other", "code": "x"}), model.DeliverySetting{Kind: model.SettingHome}},
		"unknown hub code": {loc(map[string]any{"system": fhirmap.DeliverySettingSystem, "code": "prison"}), model.DeliverySetting{Kind: model.SettingHome}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, mutate(t, one, c.f))
			if p.Referral.DeliverySetting != c.want {
				t.Errorf("setting %+v, want %+v", p.Referral.DeliverySetting, c.want)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	for _, pr := range []string{"routine", "urgent", "asap", "stat"} {
		p := mustParse(t, mutate(t, one, func(b map[string]any) { res(b, 1)["priority"] = pr }))
		if string(p.Referral.Priority) != pr {
			t.Errorf("priority %q, want %q", p.Referral.Priority, pr)
		}
	}
	p := mustParse(t, mutate(t, one, func(b map[string]any) { delete(res(b, 1), "priority") }))
	if p.Referral.Priority != model.PriorityRoutine {
		t.Errorf("default priority %q", p.Referral.Priority)
	}
}

func TestRequesterChoices(t *testing.T) {
	t.Run("Organization", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"reference": fullURL(b, 5)}
		}))
		if r := p.Referral.Requester; r.OrganisationODS != "Y9Z01" || r.PractitionerName != "" || r.OrganisationName == "" {
			t.Errorf("requester %+v", r)
		}
	})
	t.Run("Practitioner", func(t *testing.T) {
		// As BaRS senders do: the prescriber as requester, their
		// organisation only as the MessageHeader's sender, which gives the
		// requesting organisation.
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"reference": fullURL(b, 4)}
		}))
		if r := p.Referral.Requester; r.OrganisationODS != "Y9Z01" || r.OrganisationName != "Riverside Community Therapy Team" || r.PractitionerName != "Hannah Whitfield" {
			t.Errorf("requester %+v, want the sender's organisation", r)
		}
	})
	t.Run("Practitioner, sender without an ODS code", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"reference": fullURL(b, 4)}
			delete(res(b, 5), "identifier")
		}))
		if r := p.Referral.Requester; r.OrganisationODS != "" || r.PractitionerName != "Hannah Whitfield" {
			t.Errorf("requester %+v, want no organisation", r)
		}
	})
	t.Run("requester's own organisation wins over the sender", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"identifier": map[string]any{"system": fhirmap.ODSSystem, "value": "Y9Z02"}, "display": "Another team"}
		}))
		if r := p.Referral.Requester; r.OrganisationODS != "Y9Z02" || r.OrganisationName != "Another team" || p.Referral.Source.SenderODS != "Y9Z01" {
			t.Errorf("requester %+v sender %q", r, p.Referral.Source.SenderODS)
		}
	})
	t.Run("ODS identifier only", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 1)["requester"] = map[string]any{"identifier": map[string]any{"system": fhirmap.ODSSystem, "value": "y9z77"}, "display": "A team"}
		}))
		if r := p.Referral.Requester; r.OrganisationODS != "Y9Z77" || r.OrganisationName != "A team" {
			t.Errorf("requester %+v", r)
		}
	})
	t.Run("home phone left out", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 4)["telecom"] = []any{map[string]any{"system": "phone", "value": "01632 960999", "use": "home"}}
		}))
		for _, c := range p.Referral.Requester.Contact {
			if c.Use == "home" {
				t.Errorf("a prescriber's home contact was taken: %+v", c)
			}
		}
	})
	t.Run("malformed ODS is a warning", func(t *testing.T) {
		p := mustParse(t, mutate(t, one, func(b map[string]any) {
			res(b, 5)["identifier"].([]any)[0].(map[string]any)["value"] = "not an ods code"
		}))
		if p.Referral.Requester.OrganisationODS != "" || len(p.Issues) == 0 {
			t.Errorf("requester %+v issues %+v", p.Referral.Requester, p.Issues)
		}
	})
}

// TestMinimisationInputs: the 3-line referral carries the clinical context
// minimisation must hold back, and the weight the provider may have.
func TestClinicalContext(t *testing.T) {
	c := mustParse(t, read(t, "referral-3-lines.json")).Referral.Clinical
	if c.Weight == nil || c.Weight.Value != "96.5" || c.Weight.Unit != "kg" || c.Weight.Code.Code != "29463-7" {
		t.Errorf("weight %+v", c.Weight)
	}
	if len(c.Conditions) != 1 || c.Conditions[0].Code != "49049000" {
		t.Errorf("conditions %+v", c.Conditions)
	}
	if len(c.Observations) != 1 || c.Observations[0].Value != "17" {
		t.Errorf("observations %+v", c.Observations)
	}
	if len(c.Notes) != 2 || len(c.Reasons) != 1 {
		t.Errorf("notes %q reasons %+v", c.Notes, c.Reasons)
	}

	t.Run("unreferenced weight of the Patient", func(t *testing.T) {
		p := mustParse(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
			delete(res(b, 1), "supportingInfo")
		}))
		if p.Referral.Clinical.Weight == nil || len(p.Referral.Clinical.Observations) != 0 {
			t.Errorf("clinical %+v", p.Referral.Clinical)
		}
	})
	t.Run("weight without a value", func(t *testing.T) {
		expectInvalid(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
			delete(res(b, 9), "valueQuantity")
		}), want{fhirmap.IssueRequired, "Bundle.entry[9].resource.valueQuantity"})
	})
	t.Run("used Observation without status", func(t *testing.T) {
		expectInvalid(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
			delete(res(b, 10), "status")
		}), want{fhirmap.IssueRequired, "Bundle.entry[10].resource.status"})
	})
	t.Run("entered-in-error condition skipped", func(t *testing.T) {
		p := mustParse(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
			res(b, 11)["verificationStatus"] = map[string]any{"coding": []any{map[string]any{"code": "entered-in-error"}}}
		}))
		if len(p.Referral.Clinical.Conditions) != 0 {
			t.Errorf("conditions %+v", p.Referral.Clinical.Conditions)
		}
	})
}

// TestTolerantReader: faults in what the hub does not read never cost a
// referral; faults in what it reads are named precisely.
func TestTolerantReader(t *testing.T) {
	p := mustParse(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
		res(b, 10)["note"] = map[string]any{"text": "an object where FHIR wants an array"} // used Observation, unread element
		delete(res(b, 0)["destination"].([]any)[0].(map[string]any), "endpoint")           // R4 requires it; the hub does not read it
		res(b, 2)["communication"] = "not even an array"                                   // Patient element the hub does not read
		res(b, 1)["unknownElement"] = 42
		b["entry"] = append(entries(b),
			map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000f1", "resource": map[string]any{"resourceType": "Flag", "status": 7, "note": "x"}},
			map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000f2", "resource": map[string]any{"resourceType": "Widget"}},
			map[string]any{"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000f3", "resource": map[string]any{"resourceType": "Observation", "note": map[string]any{}}},
		)
	}))
	if len(p.Issues) != 1 || p.Issues[0].Expression != "Bundle.entry[13].resource.resourceType" || p.Issues[0].Severity != fhirmap.SeverityWarning {
		t.Errorf("want one warning for the unknown resource type, got %+v", p.Issues)
	}
	if strings.Contains(p.Issues[0].Diagnostics, "Widget") {
		t.Errorf("an unknown resourceType must not be echoed")
	}

	expectInvalid(t, mutate(t, "referral-3-lines.json", func(b map[string]any) {
		res(b, 9)["valueQuantity"] = []any{map[string]any{"value": 96.5}}
	}), want{fhirmap.IssueStructure, "Bundle.entry[9].resource.valueQuantity"})
}

// TestAllIssuesCollected: one pass reports every fault.
func TestAllIssuesCollected(t *testing.T) {
	ve := expectInvalid(t, mutate(t, one, func(b map[string]any) {
		delete(res(b, 1), "status")
		res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = "9990000019"
		res(b, 6)["subject"] = map[string]any{"reference": "Patient/nobody"}
		res(b, 6)["parameter"].([]any)[0].(map[string]any)["valueQuantity"] = map[string]any{"value": 0}
	}), want{fhirmap.IssueRequired, "Bundle.entry[1].resource.status"})
	wantExprs := []string{
		"Bundle.entry[1].resource.status",
		"Bundle.entry[2].resource.identifier[0].value",
		"Bundle.entry[6].resource.subject.reference",
		"Bundle.entry[6].resource.parameter[0].valueQuantity.value",
	}
	var got []string
	for _, i := range ve.Issues {
		got = append(got, i.Expression)
	}
	if strings.Join(got, "\n") != strings.Join(wantExprs, "\n") {
		t.Errorf("issues in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantExprs, "\n"))
	}
	if !strings.Contains(ve.Error(), "4 error(s)") {
		t.Errorf("Error() = %q", ve.Error())
	}
}

func TestTransactionRules(t *testing.T) {
	const tx = "referral-transaction.json"
	cases := map[string]struct {
		f func(b map[string]any)
		w want
	}{
		"GET entry": {func(b map[string]any) {
			entries(b)[2].(map[string]any)["request"] = map[string]any{"method": "GET", "url": "PractitionerRole"}
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[2].request.method"}},
		"no request": {func(b map[string]any) { delete(entries(b)[3].(map[string]any), "request") },
			want{fhirmap.IssueRequired, "Bundle.entry[3].request"}},
		"no url": {func(b map[string]any) { delete(entries(b)[3].(map[string]any)["request"].(map[string]any), "url") },
			want{fhirmap.IssueRequired, "Bundle.entry[3].request.url"}},
		"PUT url of another type": {func(b map[string]any) {
			entries(b)[1].(map[string]any)["request"].(map[string]any)["url"] = "Practitioner/x"
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].request.url"}},
		"no ServiceRequest": {func(b map[string]any) { b["entry"] = entries(b)[1:] },
			want{fhirmap.IssueRequired, "Bundle.entry"}},
		"two ServiceRequests": {func(b map[string]any) { b["entry"] = append(entries(b), entries(b)[0]) },
			want{fhirmap.IssueNotSupported, "Bundle.entry[7].resource.resourceType"}},
		"relative subject unresolved": {func(b map[string]any) { res(b, 0)["subject"] = map[string]any{"reference": "Patient/unknown"} },
			want{fhirmap.IssueNotFound, "Bundle.entry[0].resource.subject.reference"}},
		"conditional reference": {func(b map[string]any) {
			res(b, 0)["subject"] = map[string]any{"reference": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000042"}
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[0].resource.subject.reference"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { expectInvalid(t, mutate(t, tx, c.f), c.w) })
	}
	t.Run("batch", func(t *testing.T) {
		p := mustParse(t, mutate(t, tx, func(b map[string]any) { b["type"] = "batch" }))
		if p.BundleType != "batch" {
			t.Errorf("bundle type %q", p.BundleType)
		}
	})
	t.Run("message to the base endpoint", func(t *testing.T) {
		_, err := fhirmap.ParseTransaction(read(t, one))
		if !errors.Is(err, fhirmap.ErrInvalid) || !strings.Contains(issuesText(err), "not-supported Bundle.type") {
			t.Errorf("got %v\n%s", err, issuesText(err))
		}
	})
}

// TestBaRS runs the NHS BaRS examples: all three fail on their NHS number,
// which fails the modulus-11 check; with a valid number the 999 and 111
// examples are accepted, tolerating their schema errors in elements the hub
// does not read, and the validation request still fails: it has no reason
// and no equipment.
func TestBaRS(t *testing.T) {
	for _, name := range []string{"999-to-cas-service-request.json", "111-to-ed-service-request.json", "validation-request.json"} {
		t.Run(name, func(t *testing.T) {
			patient := "Bundle.entry[3].resource.identifier[0].value"
			if name == "validation-request.json" {
				patient = "Bundle.entry[5].resource.identifier[0].value"
			}
			ve := expectInvalid(t, read(t, "bars/"+name), want{fhirmap.IssueValue, patient})
			for _, i := range ve.Issues {
				if strings.Contains(i.Diagnostics, "3478526985") {
					t.Errorf("diagnostics quote the NHS number")
				}
			}
			fixed := barsFixed(t, name)
			if name == "validation-request.json" {
				ve := expectInvalid(t, fixed, want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource"})
				if n := len(ve.Issues); n != 1 {
					t.Errorf("want only the business rule, got:\n%s", issuesText(ve))
				}
				return
			}
			p := mustParse(t, fixed)
			if p.Referral.Person.NHSNumber != "9990000018" || p.Referral.Source.MessageID != "1cbdfb97-5859-48a4-8301-d54eab818d68" || p.Event.Code != "admin-notify" {
				t.Errorf("referral %+v event %+v", p.Referral.Source, p.Event)
			}
		})
	}
	t.Run("validation request: message id from fullUrl", func(t *testing.T) {
		body := mutate(t, "bars/validation-request.json", func(b map[string]any) {
			res(b, 5)["identifier"].([]any)[0].(map[string]any)["value"] = "9990000018"
			res(b, 1)["reasonCode"] = []any{map[string]any{"text": "Falls at home"}}
		})
		p := mustParse(t, body)
		if p.Referral.Source.MessageID != "1cbdfb97-5859-48a4-8301-d54eab818d68" || p.Referral.Source.ServiceRequestID != "urn:uuid:236bb75d-90ef-461f-b71e-fde7f899802c" {
			t.Errorf("source %+v", p.Referral.Source)
		}
		if p.Referral.Requester.PractitionerName == "" {
			t.Errorf("requester %+v", p.Referral.Requester)
		}
	})
}

// TestDiagnosticsHoldNoPersonalData breaks every personal element of a
// referral at once and checks that no issue quotes a value from it.
func TestDiagnosticsHoldNoPersonalData(t *testing.T) {
	body := mutate(t, one, func(b map[string]any) {
		pt := res(b, 2)
		pt["identifier"].([]any)[0].(map[string]any)["value"] = "9990000019"
		pt["birthDate"] = "1941-13-12"
		pt["gender"] = "Margaret"
		pt["address"].([]any)[0].(map[string]any)["postalCode"] = "Ferndale-Hoole"
		pt["telecom"] = []any{map[string]any{"system": "01632 960101", "value": "01632 960101"}}
		res(b, 6)["status"] = "Hughes"
		res(b, 1)["requester"] = map[string]any{"reference": "Practitioner/Whitfield"}
		b["entry"] = append(entries(b), map[string]any{"resource": map[string]any{"resourceType": "Margaret Hughes"}})
	})
	_, err := parse(t, body)
	var ve *fhirmap.ValidationError
	if !errors.As(err, &ve) || len(ve.Issues) < 7 {
		t.Fatalf("want many issues, got %v\n%s", err, issuesText(err))
	}
	for _, s := range []string{"9990000019", "1941", "Margaret", "Hughes", "Ferndale", "Hoole", "01632", "960101", "Whitfield", "CH1"} {
		for _, i := range ve.Issues {
			if strings.Contains(i.Diagnostics, s) || strings.Contains(i.Expression, s) {
				t.Errorf("issue quotes %q: %+v", s, i)
			}
		}
		if strings.Contains(ve.Error(), s) {
			t.Errorf("Error() quotes %q", s)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	body := read(t, "referral-20-lines.json")
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := fhirmap.ParseMessage(body)
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestRepeatedMemberNames: an object anywhere in the body that repeats a
// member name (FHIR JSON forbids it; encoding/json keeps the last value, a
// gateway may have checked the first) is refused as not a Bundle (400),
// with the FHIRPath of the object and the member's name, never a value.
func TestRepeatedMemberNames(t *testing.T) {
	cases := []struct {
		name, old, new string
		expr, member   string
	}{
		{"NHS number", `"value": "9990000018"`, `"value": "9990000018", "value": "9990000026"`, "Bundle.entry[2].resource.identifier[0]", `"value"`},
		{"bundle type", `"type": "message",`, `"type": "message", "type": "transaction",`, "Bundle", `"type"`},
		{"resource element", `"birthDate": "1941-03-12",`, `"birthDate": "1941-03-12", "birthDate": "1950-01-01",`, "Bundle.entry[2].resource", `"birthDate"`},
		{"another case", `"family": "Hughes",`, `"family": "Hughes", "Family": "Jones",`, "Bundle.entry[2].resource.name[0]", `"Family"`},
		{"escaped", `"gender": "female",`, `"gender": "female", "g\u0065nder": "male",`, "Bundle.entry[2].resource", `"gender"`},
		{"an element the hub does not read", `"display": "Number present and verified"`, `"display": "Number present and verified", "display": "Number not verified"`,
			"Bundle.entry[2].resource.identifier[0].extension[0].valueCodeableConcept.coding[0]", `"display"`},
		{"a name that is not shown", `"gender": "female",`, `"gender": "female", "Mrs Hughes": 1, "Mrs Hughes": 2,`, "Bundle.entry[2].resource", "repeats a member name"},
	}
	body := string(read(t, one))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(body, c.old) != 1 {
				t.Fatalf("%q is not once in the fixture", c.old)
			}
			b := []byte(strings.Replace(body, c.old, c.new, 1))
			if !json.Valid(b) {
				t.Fatal("the case is not valid JSON")
			}
			for _, f := range []func([]byte) (fhirmap.Parsed, error){fhirmap.ParseMessage, fhirmap.ParseTransaction} {
				_, err := f(b)
				var ve *fhirmap.ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, fhirmap.ErrNotBundle) {
					t.Fatalf("want ErrNotBundle (400), got %v", err)
				}
				if len(ve.Issues) != 1 {
					t.Fatalf("want one issue, got\n%s", issuesText(err))
				}
				is := ve.Issues[0]
				if is.Severity != fhirmap.SeverityFatal || is.Code != fhirmap.IssueStructure || is.Expression != c.expr || !strings.Contains(is.Diagnostics, c.member) {
					t.Errorf("issue %+v, want structure at %s naming %s", is, c.expr, c.member)
				}
				for _, v := range []string{"9990000018", "9990000026", "1950", "Jones", "Hughes", "male", "transaction", "not verified"} {
					if strings.Contains(is.Diagnostics, v) {
						t.Errorf("the diagnostics quote %q: %s", v, is.Diagnostics)
					}
				}
			}
		})
	}
	t.Run("the same name in sibling objects is no repeat", func(t *testing.T) {
		mustParse(t, read(t, "referral-20-lines.json"))
	})
	t.Run("an object of many members", func(t *testing.T) {
		var members strings.Builder
		for i := range 100 {
			members.WriteString(`"x` + strconv.Itoa(i) + `": 1, `)
		}
		ok := strings.Replace(body, `"gender": "female",`, `"gender": "female", "_ignored": {`+members.String()+`"last": 0},`, 1)
		mustParse(t, []byte(ok))
		repeated := strings.Replace(body, `"gender": "female",`, `"gender": "female", "_ignored": {`+members.String()+`"X70": 0},`, 1)
		_, err := fhirmap.ParseMessage([]byte(repeated))
		var ve *fhirmap.ValidationError
		if !errors.As(err, &ve) || len(ve.Issues) != 1 || ve.Issues[0].Expression != "Bundle.entry[2].resource._ignored" || !strings.Contains(ve.Issues[0].Diagnostics, `"X70"`) {
			t.Fatalf("want a repeat at Bundle.entry[2].resource._ignored, got %v\n%s", err, issuesText(err))
		}
	})
}
