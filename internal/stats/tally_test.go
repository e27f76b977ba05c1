package stats

import (
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

func TestISOClass(t *testing.T) {
	for code, want := range map[string]string{
		"12 22 18": "12 22", "12.22.18": "12 22", "122218": "12 22", "12 22": "12 22", "04 33 06": "04 33",
		"": UnknownClass, "12": UnknownClass, "12 22 18 01": UnknownClass, "12 22 ": UnknownClass, "12  22": UnknownClass,
		"BED-PROFILING-01": UnknownClass, "1a 22 18": UnknownClass, "123 22": UnknownClass, "12-22-18": UnknownClass,
	} {
		if got := ISOClass(code); got != want {
			t.Errorf("ISOClass(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestClassOfFirstISOLine(t *testing.T) {
	items := []model.EquipmentItem{{Code: "BED-LEVER-01"}, {Code: "18 12 10"}, {Code: "12 22 18"}}
	if got := ClassOf(items); got != "18 12" {
		t.Errorf("ClassOf = %q, want 18 12", got)
	}
	if got := ClassOf(nil); got != UnknownClass {
		t.Errorf("ClassOf(nil) = %q", got)
	}
}

func TestForEvent(t *testing.T) {
	accepted := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	ref := &model.Referral{ReceivedAt: accepted, Priority: model.PriorityUrgent,
		DeliverySetting: model.DeliverySetting{Kind: model.SettingHome}, Equipment: []model.EquipmentItem{{Code: "12 22 18"}}}
	at := accepted.Add(25 * time.Hour) // in February, 2 days (rounded up)
	ev := func(k model.Kind) *model.Event { return &model.Event{Kind: k, ReceivedAt: at} }
	key := Key{Month: "2026-02", Council: "council-a", Priority: "urgent", Setting: "home", Class: "12 22"}
	cases := []struct {
		name     string
		kind     model.Kind
		from, to model.OrderStatus
		want     []Increment
	}{
		{"delivered", model.KindOrderStatus, model.StatusScheduled, model.StatusDelivered, []Increment{{key, Delivered, 2}}},
		{"installed straight from ordered", model.KindOrderStatus, "", model.StatusInstalled, []Increment{{key, Delivered, 2}}},
		{"installed after delivered", model.KindOrderStatus, model.StatusDelivered, model.StatusInstalled, nil},
		{"delivered again", model.KindOrderStatus, model.StatusDelivered, model.StatusDelivered, nil},
		{"failed", model.KindOrderStatus, model.StatusScheduled, model.StatusFailedDelivery, []Increment{{key, FailedDeliveries, NoDays}}},
		{"failed again", model.KindOrderStatus, model.StatusFailedDelivery, model.StatusFailedDelivery, []Increment{{key, FailedDeliveries, NoDays}}},
		{"scheduled", model.KindOrderStatus, model.StatusAccepted, model.StatusScheduled, []Increment{{key, Scheduled, NoDays}}},
		{"rescheduled", model.KindOrderStatus, model.StatusScheduled, model.StatusScheduled, nil},
		{"collected", model.KindOrderStatus, model.StatusCollectionRequested, model.StatusCollected, []Increment{{key, Collected, NoDays}}},
		{"cancelled", model.KindCancellation, model.StatusAccepted, model.StatusCancelled, []Increment{{key, Cancelled, NoDays}}},
		{"accepted", model.KindOrderStatus, "", model.StatusAccepted, nil},
		{"complaint", model.KindComplaint, model.StatusDelivered, "", []Increment{{key, Complaints, NoDays}}},
		{"safeguarding", model.KindSafeguarding, model.StatusDelivered, "", []Increment{{key, SafeguardingConcerns, NoDays}}},
		{"equipment issue", model.KindEquipmentIssue, model.StatusDelivered, "", []Increment{{key, EquipmentIssues, NoDays}}},
		{"amendment", model.KindAmendment, model.StatusAccepted, "", nil},
	}
	for _, c := range cases {
		got := ForEvent(ref, "council-a", ev(c.kind), c.from, c.to)
		if len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	if got := ForReferral(ref, "", time.Now()); len(got) != 1 || got[0].Month != "2026-01" || got[0].Council != "" || got[0].Measure != Referrals {
		t.Errorf("ForReferral = %+v", got)
	}
}

func TestDaysBetween(t *testing.T) {
	a := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]int{0: 0, -time.Hour: 0, time.Minute: 1, 24 * time.Hour: 1, 24*time.Hour + time.Second: 2,
		20 * 365 * 24 * time.Hour: MaxDays} {
		if got := DaysBetween(a, a.Add(d)); got != want {
			t.Errorf("DaysBetween(+%s) = %d, want %d", d, got, want)
		}
	}
	if DaysBetween(time.Time{}, a) != 0 {
		t.Error("an unknown start gives days")
	}
}
