package crm

import (
	"errors"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/jsonlimit"
	"github.com/iceshub/iceshub/mappings/inbound"
)

// FuzzParseEvent: whatever a council's webhook receives, ParseEvent returns
// either an event that names how to find its referral, or a refusal the
// handler can answer 400 with; never a panic, never anything else.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"event":"complaint.created","timestamp":"2026-11-20T10:00:00Z","data":{"complaintReference":"C-1","orderReference":"ORD-1","summary":"late","contactAllowed":true,"contact":{"phone":"01632 960123"}}}`,
		`{"event":"collection.requested","timestamp":"2026-11-20T10:00:00Z","data":{"caseReference":"CASE-1","reason":"moved"}}`,
		`{"event":"complaint.created","timestamp":"2026-11-20T10:00:00Z","data":{"complaintReference":"C-1","summary":"x","contactAllowed":false,"contact":{"email":"a@b.c"}}}`,
		`{"event":"unknown","timestamp":"x","data":null}`,
		`{"event":`, `{}`, ``,
		// A repeated member name, which encoding/json would resolve to
		// its last value and another reader to its first: refused.
		`{"event":"collection.requested","timestamp":"2026-11-20T10:00:00Z","data":{"caseReference":"CASE-1","reason":"moved","caseReference":"CASE-2"}}`,
		`{"event":"collection.requested","timestamp":"2026-11-20T10:00:00Z","data":{"caseReference":"CASE-1","reason":"moved"},"Timestamp":"2026-11-20T09:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseEvent(body, "council-a", now)
		if err != nil {
			var ie *inbound.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			return
		}
		if in.Event.Kind == "" || in.Event.From != "council-a" || (in.OrderReference == "" && in.CaseReference == "") {
			t.Fatalf("accepted an event that cannot be placed: %+v", in)
		}
		if d := jsonlimit.FindDuplicate(body); d != nil {
			t.Fatalf("accepted a body that repeats a member name: %v", d)
		}
		if c := in.Event.Complaint; c != nil && !c.ContactAllowed && len(c.Contact) > 0 {
			t.Fatalf("contact details kept although the council did not allow contact: %+v", c)
		}
	})
}
