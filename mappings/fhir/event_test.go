package fhir_test

import (
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// The event fixtures are built from referral-1-line.json and name its
// ServiceRequest. Entries: cancellation-revoked.json and
// collection-1-line.json 0 MessageHeader, 1 ServiceRequest, 2 Patient, 3
// Organization; cancellation-entered-in-error.json and
// collection-by-referral-id.json (transactions) 0 ServiceRequest, 1
// Patient.
const (
	cancelMsg   = "cancellation-revoked.json"
	cancelTx    = "cancellation-entered-in-error.json"
	collectMsg  = "collection-1-line.json"
	collectTx   = "collection-by-referral-id.json"
	referralSR  = "fb034f78-c1bb-54f0-90cf-efb7581fc5c3"
	referralOne = "b055b691-5aa8-55fc-bcc5-c935386bfcd1"
)

func TestEventKinds(t *testing.T) {
	cases := []struct {
		file                 string
		kind                 model.Kind
		status               model.OrderStatus
		srID, referralID     string
		reasonCode, idPath   string
		basedOnPath, nhsPath string
	}{
		{cancelMsg, model.KindCancellation, model.StatusCancelled, referralSR, "", "no-longer-required", "Bundle.entry[1].resource.id", "", "Bundle.entry[2].resource.identifier[0].value"},
		{cancelTx, model.KindCancellation, model.StatusCancelled, referralSR, "", "entered-in-error", "Bundle.entry[0].resource.id", "", "Bundle.entry[1].resource.identifier[0].value"},
		{collectMsg, model.KindCollection, model.StatusCollectionRequested, referralSR, "", "no-longer-needed", "Bundle.entry[1].resource.id", "Bundle.entry[1].resource.basedOn[0]", "Bundle.entry[2].resource.identifier[0].value"},
		{collectTx, model.KindCollection, model.StatusCollectionRequested, "", referralOne, "moved", "Bundle.entry[0].resource.id", "Bundle.entry[0].resource.basedOn[0]", "Bundle.entry[1].resource.identifier[0].value"},
		{"amendment-1-line.json", model.KindReferral, "", referralSR, "", "", "Bundle.entry[1].resource.id", "", "Bundle.entry[2].resource.identifier[0].value"},
		{one, model.KindReferral, "", referralSR, "", "", "Bundle.entry[1].resource.id", "", "Bundle.entry[2].resource.identifier[0].value"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := mustParse(t, read(t, c.file))
			if len(p.Issues) > 0 {
				t.Errorf("a sample should be clean, got %+v", p.Issues)
			}
			if p.Kind != c.kind {
				t.Fatalf("kind %q, want %q", p.Kind, c.kind)
			}
			if p.Target.ServiceRequestID != c.srID || p.Target.ReferralID != c.referralID || p.Target.NHSNumber != "9990000018" {
				t.Errorf("target %+v", p.Target)
			}
			if p.Paths.ID != c.idPath || p.Paths.BasedOn != c.basedOnPath || p.Paths.NHSNumber != c.nhsPath {
				t.Errorf("paths %+v", p.Paths)
			}
			if p.Timestamp.IsZero() {
				t.Errorf("Bundle.timestamp not read")
			}
			if c.kind == model.KindReferral {
				if p.Change != nil || p.Referral.Person.NHSNumber == "" {
					t.Errorf("a referral must carry the referral, not an event: %+v", p.Change)
				}
				return
			}
			if p.Change == nil || p.Change.Kind != c.kind || p.Change.Status != c.status || p.Change.Reason.Code != c.reasonCode {
				t.Fatalf("event %+v", p.Change)
			}
			if p.Referral.Person.NHSNumber != "" || !p.Referral.Person.Name.IsZero() || !p.Referral.Person.Address.IsZero() {
				t.Errorf("an event must not carry a person: %+v", p.Referral.Person)
			}
		})
	}
}

// TestCancellationNeedsOnlyServiceRequestAndPatient: the referral's strict
// checks do not apply to a cancellation, which the hub matches to a
// referral it has already checked.
func TestCancellationNeedsOnlyServiceRequestAndPatient(t *testing.T) {
	p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) {
		pt := res(b, 2)
		delete(pt, "name")
		pt["address"] = []any{map[string]any{"use": "home", "postalCode": "not a postcode"}}
		pt["deceasedBoolean"] = true
		delete(pt, "identifier")                   // no NHS number: the ServiceRequest id is what counts
		res(b, 1)["priority"] = "no such priority" // not read for a cancellation
	}))
	if p.Kind != model.KindCancellation || p.Target.NHSNumber != "" || p.Paths.NHSNumber != "" {
		t.Errorf("kind %q target %+v paths %+v", p.Kind, p.Target, p.Paths)
	}
}

func TestCancellationReason(t *testing.T) {
	t.Run("note when no extension", func(t *testing.T) {
		p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) { delete(res(b, 1), "extension") }))
		if p.Change.Reason.Code != "" || !strings.HasPrefix(p.Change.Reason.Display, "Admitted to hospital") || p.Change.Description != "" {
			t.Errorf("reason %+v description %q", p.Change.Reason, p.Change.Description)
		}
	})
	t.Run("none at all", func(t *testing.T) {
		p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) { delete(res(b, 1), "extension"); delete(res(b, 1), "note") }))
		if p.Change.Reason != (model.Coded{}) {
			t.Errorf("reason %+v", p.Change.Reason)
		}
	})
	t.Run("entered in error wins over the extension", func(t *testing.T) {
		p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) { res(b, 1)["status"] = "entered-in-error" }))
		if p.Change.Reason.System != fhirmap.CancellationReasonSystem || p.Change.Reason.Code != fhirmap.CancelledInError {
			t.Errorf("reason %+v", p.Change.Reason)
		}
	})
	t.Run("ServiceRequest without id: its fullUrl, as the referral recorded it", func(t *testing.T) {
		p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) { delete(res(b, 1), "id") }))
		if p.Target.ServiceRequestID != "urn:uuid:"+referralSR || p.Paths.ID != "Bundle.entry[1].fullUrl" {
			t.Errorf("target %+v paths %+v", p.Target, p.Paths)
		}
	})
}

func TestEventRefusals(t *testing.T) {
	cases := map[string]struct {
		file string
		f    func(b map[string]any)
		w    want
	}{
		"cancellation: invalid NHS number": {cancelMsg, func(b map[string]any) {
			res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = "9990000019"
		}, want{fhirmap.IssueValue, "Bundle.entry[2].resource.identifier[0].value"}},
		"cancellation: no subject": {cancelMsg, func(b map[string]any) { delete(res(b, 1), "subject") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.subject"}},
		"cancellation: subject not in the bundle": {cancelMsg, func(b map[string]any) {
			res(b, 1)["subject"] = map[string]any{"reference": "Patient/elsewhere"}
		}, want{fhirmap.IssueNotFound, "Bundle.entry[1].resource.subject.reference"}},
		"cancellation: no intent": {cancelMsg, func(b map[string]any) { delete(res(b, 1), "intent") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.intent"}},
		"cancellation: reason extension without a value": {cancelMsg, func(b map[string]any) {
			res(b, 1)["extension"] = []any{map[string]any{"url": fhirmap.CancellationReasonExtension, "valueString": "no"}}
		}, want{fhirmap.IssueRequired, "Bundle.entry[1].resource.extension[0].valueCodeableConcept"}},
		"cancellation: no id and no fullUrl": {cancelTx, func(b map[string]any) {
			delete(res(b, 0), "id")
			delete(entries(b)[0].(map[string]any), "fullUrl")
		}, want{fhirmap.IssueRequired, "Bundle.entry[0].resource.id"}},
		"other statuses are still refused": {cancelMsg, func(b map[string]any) { res(b, 1)["status"] = "completed" },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource.status"}},
		"on-hold is refused": {one, func(b map[string]any) { res(b, 1)["status"] = "on-hold" },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource.status"}},
		"collection: unknown reason": {collectMsg, func(b map[string]any) {
			res(b, 1)["reasonCode"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] = "upgrade"
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.reasonCode[0].coding[0].code"}},
		"collection: reason in another system": {collectMsg, func(b map[string]any) {
			res(b, 1)["reasonCode"] = []any{map[string]any{"text": "not needed"}}
		}, want{fhirmap.IssueRequired, "Bundle.entry[1].resource.reasonCode"}},
		"collection: no reason": {collectMsg, func(b map[string]any) { delete(res(b, 1), "reasonCode") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.reasonCode"}},
		"collection: no basedOn": {collectMsg, func(b map[string]any) { delete(res(b, 1), "basedOn") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.basedOn"}},
		"collection: basedOn a Patient": {collectMsg, func(b map[string]any) {
			res(b, 1)["basedOn"] = []any{map[string]any{"reference": "Patient/c37b310c-9b17-5ba6-81a3-76c230fc79bc"}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.basedOn[0].reference"}},
		"collection: basedOn a bare id": {collectMsg, func(b map[string]any) {
			res(b, 1)["basedOn"] = []any{map[string]any{"reference": referralSR}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.basedOn[0].reference"}},
		"collection: basedOn typed otherwise": {collectMsg, func(b map[string]any) {
			res(b, 1)["basedOn"] = []any{map[string]any{"reference": "ServiceRequest/" + referralSR, "type": "CarePlan"}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.basedOn[0].type"}},
		"collection: basedOn itself": {collectMsg, func(b map[string]any) {
			res(b, 1)["basedOn"] = []any{map[string]any{"reference": fullURL(b, 1)}}
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.basedOn[0].reference"}},
		"collection: identifier in another system": {collectTx, func(b map[string]any) {
			res(b, 0)["basedOn"] = []any{map[string]any{"identifier": map[string]any{"system": "https://example.org/other", "value": "1"}}}
		}, want{fhirmap.IssueRequired, "Bundle.entry[0].resource.basedOn[0].reference"}},
		"collection: two referrals": {collectMsg, func(b map[string]any) {
			bo := res(b, 1)["basedOn"].([]any)
			res(b, 1)["basedOn"] = append(bo, map[string]any{"reference": "ServiceRequest/another"})
		}, want{fhirmap.IssueNotSupported, "Bundle.entry[1].resource.basedOn[1]"}},
		"collection: not active": {collectMsg, func(b map[string]any) { res(b, 1)["status"] = "revoked" },
			want{fhirmap.IssueBusinessRule, "Bundle.entry[1].resource.status"}},
		"collection: invalid NHS number": {collectMsg, func(b map[string]any) {
			res(b, 2)["identifier"].([]any)[0].(map[string]any)["value"] = "9990000019"
		}, want{fhirmap.IssueValue, "Bundle.entry[2].resource.identifier[0].value"}},
		"unknown request kind": {collectMsg, func(b map[string]any) {
			res(b, 1)["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"] = "repair"
		}, want{fhirmap.IssueInvalid, "Bundle.entry[1].resource.code.coding[0].code"}},
		"amendment: the referral's strict checks apply": {"amendment-1-line.json", func(b map[string]any) { delete(res(b, 1), "requester") },
			want{fhirmap.IssueRequired, "Bundle.entry[1].resource.requester"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			expectInvalid(t, mutate(t, c.file, c.f), c.w)
		})
	}
}

func TestCollectionBasedOn(t *testing.T) {
	cases := map[string]struct {
		basedOn      map[string]any
		srID, refID  string
		extraEntries bool
	}{
		"relative":       {map[string]any{"reference": "ServiceRequest/" + referralSR}, referralSR, "", false},
		"versioned":      {map[string]any{"reference": "ServiceRequest/" + referralSR + "/_history/2"}, referralSR, "", false},
		"absolute":       {map[string]any{"reference": "https://epr.example.org/fhir/ServiceRequest/" + referralSR}, referralSR, "", false},
		"typed":          {map[string]any{"reference": "ServiceRequest/" + referralSR, "type": "ServiceRequest"}, referralSR, "", false},
		"urn:uuid":       {map[string]any{"reference": "urn:uuid:" + referralSR}, "urn:uuid:" + referralSR, "", false},
		"referral id":    {map[string]any{"identifier": map[string]any{"system": fhirmap.ReferralIDSystem, "value": referralOne}}, "", referralOne, false},
		"in the message": {map[string]any{"reference": "urn:uuid:" + referralSR}, referralSR, "", true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, mutate(t, collectMsg, func(b map[string]any) {
				res(b, 1)["basedOn"] = []any{c.basedOn}
				if c.extraEntries {
					// The original ServiceRequest sent along in the message.
					orig := map[string]any{}
					_ = mutate(t, one, func(o map[string]any) { orig = entries(o)[1].(map[string]any) })
					b["entry"] = append(entries(b), orig)
				}
			}))
			if p.Target.ServiceRequestID != c.srID || p.Target.ReferralID != c.refID {
				t.Errorf("target %+v", p.Target)
			}
		})
	}
}

func TestEventTimestamp(t *testing.T) {
	p := mustParse(t, mutate(t, cancelMsg, func(b map[string]any) { b["timestamp"] = "yesterday" }))
	if !p.Timestamp.IsZero() || len(p.Issues) != 1 || p.Issues[0].Expression != "Bundle.timestamp" || p.Issues[0].Severity != fhirmap.SeverityWarning {
		t.Errorf("timestamp %v issues %+v", p.Timestamp, p.Issues)
	}
	// A referral does not use Bundle.timestamp: no warning.
	p = mustParse(t, mutate(t, one, func(b map[string]any) { b["timestamp"] = 12 }))
	if len(p.Issues) != 0 || !p.Timestamp.IsZero() {
		t.Errorf("referral: timestamp %v issues %+v", p.Timestamp, p.Issues)
	}
}
