package provider

import (
	"errors"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/jsonlimit"
	"github.com/iceshub/iceshub/mappings/inbound"
)

// FuzzParseEvent: whatever the provider's webhook receives, ParseEvent
// returns either an event that names how to find its referral, or a
// refusal the handler can answer 400 with; never a panic, never anything
// else. The seeds run in every go test; .ci/run fuzzes briefly.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"eventId":"e1","type":"order.scheduled","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","scheduledDate":"2026-12-01"}`,
		`{"eventId":"e2","type":"order.failed-delivery","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","reason":{"code":"no-access","text":"No answer"}}`,
		`{"eventId":"e3","type":"equipment.issue","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","issueType":"unsafe","description":"rail loose"}`,
		`{"eventId":"e4","type":"safeguarding.concern","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","description":"x","category":"neglect"}`,
		`{"eventId":"e5","type":"complaint.reply","complaintReference":"C-1","occurredAt":"2026-11-20T10:00:00Z","reply":"sorry"}`,
		`{"eventId":"e6","type":"order.collected","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","extra":1}`,
		`{"type":`, `[]`, `null`, ``,
		// A repeated member name, which encoding/json would resolve to
		// its last value and another reader to its first: refused.
		`{"eventId":"e7","type":"order.delivered","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","type":"order.cancelled"}`,
		`{"eventId":"e8","type":"order.failed-delivery","orderReference":"ORD-1","occurredAt":"2026-11-20T10:00:00Z","reason":{"code":"no-access","Code":"refused"}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseEvent(body, "provider", now)
		if err != nil {
			var ie *inbound.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			return
		}
		if in.Event.Kind == "" || in.Event.From != "provider" || (in.OrderReference == "" && in.ComplaintReference == "") {
			t.Fatalf("accepted an event that cannot be placed: %+v", in)
		}
		if d := jsonlimit.FindDuplicate(body); d != nil {
			t.Fatalf("accepted a body that repeats a member name: %v", d)
		}
	})
}
