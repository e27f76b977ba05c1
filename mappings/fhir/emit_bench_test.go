package fhir

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

// BenchmarkTaskEncode maps an order status copy to the referral's Task,
// with the disclosure record of what it holds, and encodes it: what the NHS
// adapter does before HTTP.
func BenchmarkTaskEncode(b *testing.B) {
	d := model.Delivery{
		Kind: model.KindOrderStatus, Recipient: "nhs-trust", IdempotencyKey: "k",
		Fields: []string{"person.nhsNumber", "requester.organisation", "event.scheduledDate", "event.reason"},
		Referral: model.Referral{
			ID: "ref-1", ReceivedAt: time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC),
			Person:    model.Person{NHSNumber: "9990000018"},
			Requester: model.Requester{OrganisationODS: "RX1", OrganisationName: "Fictional Community Trust"},
			Event: &model.Event{ID: "evt-1", Kind: model.KindOrderStatus, ReferralID: "ref-1", From: "provider",
				OccurredAt: time.Date(2025, 6, 5, 14, 5, 30, 0, time.UTC), Status: model.StatusScheduled, ScheduledDate: "2025-06-09"},
		},
		Refs: model.References{ServiceRequestID: "sr-1", RequesterODS: "RX1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		task, err := TaskFor(d, EmitOptions{Provider: "provider"})
		if err != nil {
			b.Fatal(err)
		}
		if fields := TaskFields(d, task); len(fields) == 0 {
			b.Fatal("no fields")
		}
		if _, err := json.Marshal(task); err != nil {
			b.Fatal(err)
		}
	}
}
