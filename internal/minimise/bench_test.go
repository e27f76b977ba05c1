package minimise

import "testing"

// BenchmarkApply cuts a full referral to the provider's field list of the
// built-in routes: the per-recipient cut of every copy.
func BenchmarkApply(b *testing.B) {
	full := fullReferral()
	rules := []Rule{{Field: "person.nhsNumber"}, {Field: "person.name"}, {Field: "person.address"}, {Field: "person.telecom"},
		{Field: "requester.practitioner"}, {Field: "requester.organisation"}, {Field: "requester.contact"}, {Field: "priority"},
		{Field: "deliverySetting"}, {Field: "accessNotes"}, {Field: "equipment"}, {Field: "clinical.weight"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(&full, rules, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
