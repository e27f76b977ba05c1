// Package stats is the statistics of the service that commissioners may
// see (issue 19, flow F9): what each step of the work adds to the
// statistics table (this file), the disclosure control applied before
// any of it is published (disclosure.go), and the forms it is published in
// (format.go). It does no I/O of its own: the store keeps the counts, and
// the stats command and the admin API give format.go where to write.
//
// A count is kept per cell: month (UTC, YYYY-MM), council, priority,
// delivery setting kind and ISO 9999 class, never per person. The time
// from a referral's acceptance to its delivery is kept as a histogram of
// whole days per cell, which is enough for medians and percentiles later
// without one row per referral.
package stats

import (
	"math"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

// Measure names what a count counts.
type Measure string

// The measures kept, each counted once per accepted step.
const (
	// Referrals: referrals accepted (duplicates are not steps).
	Referrals Measure = "referrals"
	// OrdersPlaced: orders the provider accepted (the hub's copy of a
	// referral delivered to the provider), counted in the month of the
	// acceptance.
	OrdersPlaced Measure = "orders_placed"
	// Scheduled: orders that moved to scheduled from another status.
	Scheduled Measure = "scheduled"
	// Delivered: orders that reached delivered or installed for the first
	// time; each carries its days from acceptance (DaysToDelivery).
	Delivered Measure = "delivered"
	// FailedDeliveries: every failed-delivery report accepted (an order
	// may fail more than once).
	FailedDeliveries Measure = "failed_deliveries"
	// Collected: orders that moved to collected.
	Collected Measure = "collected"
	// Cancelled: orders that moved to cancelled.
	Cancelled Measure = "cancelled"
	// Complaints, SafeguardingConcerns, EquipmentIssues: events of those
	// kinds accepted.
	Complaints           Measure = "complaints"
	SafeguardingConcerns Measure = "safeguarding_concerns"
	EquipmentIssues      Measure = "equipment_issues"
)

// Measures returns every measure, in the order they are published.
func Measures() []Measure {
	return []Measure{Referrals, OrdersPlaced, Scheduled, Delivered, FailedDeliveries, Collected, Cancelled,
		Complaints, SafeguardingConcerns, EquipmentIssues}
}

// UnknownClass is the class of a referral none of whose equipment codes
// looks like an ISO 9999 code.
const UnknownClass = "unknown"

// NoDays is the Days of a count that is not a duration.
const NoDays = -1

// MaxDays bounds a duration kept: longer ones are kept as MaxDays, so
// that the table stays small whatever a clock says.
const MaxDays = 3650

// Key is a cell of the statistics table. None of its parts identifies a
// person: a month, a partner id, and codes from short fixed lists.
type Key struct {
	Month    string // YYYY-MM, UTC
	Council  string // partner id of the referral's council; "" when unknown
	Priority string // model.Priority, "" when the referral gave none
	Setting  string // model.SettingKind, "" when the referral gave none
	Class    string // ISO 9999 class ("12 22") or UnknownClass
}

// Increment is one step to add to the table: one more Measure in Key,
// with Days from acceptance to delivery for Delivered (else NoDays).
type Increment struct {
	Key
	Measure Measure
	Days    int
}

// Month returns the month of t in UTC, as the table keys it.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// ISOClass returns the first two levels of an ISO 9999 code ("12 22" from
// "12 22 18"), or UnknownClass when code does not look like one: two or
// three pairs of digits, separated by single spaces or dots or not at
// all ("12 22 18", "12.22.18", "122218", "12 22").
func ISOClass(code string) string {
	var digits [6]byte
	n, i := 0, 0
	for i < len(code) {
		if n == 6 || i+1 >= len(code) || !isDigit(code[i]) || !isDigit(code[i+1]) {
			return UnknownClass
		}
		digits[n], digits[n+1] = code[i], code[i+1]
		n += 2
		i += 2
		if i < len(code) && (code[i] == ' ' || code[i] == '.') {
			i++
			if i == len(code) {
				return UnknownClass
			}
		}
	}
	if n < 4 {
		return UnknownClass
	}
	return string(digits[0:2]) + " " + string(digits[2:4])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ClassOf returns the class of a referral: that of its first equipment
// line whose code looks like an ISO 9999 code, else UnknownClass. Each
// referral has one class, so that totals over classes count it once.
func ClassOf(items []model.EquipmentItem) string {
	for _, it := range items {
		if c := ISOClass(it.Code); c != UnknownClass {
			return c
		}
	}
	return UnknownClass
}

// KeyOf returns the cell of a referral whose council is council, for a
// step that happened at at.
func KeyOf(ref *model.Referral, council string, at time.Time) Key {
	return Key{Month: Month(at), Council: council, Priority: string(ref.Priority),
		Setting: string(ref.DeliverySetting.Kind), Class: ClassOf(ref.Equipment)}
}

// ForReferral returns what accepting ref adds: one referral in the month
// it was received (now when it has no time).
func ForReferral(ref *model.Referral, council string, now time.Time) []Increment {
	at := ref.ReceivedAt
	if at.IsZero() {
		at = now
	}
	return []Increment{{Key: KeyOf(ref, council, at), Measure: Referrals, Days: NoDays}}
}

// ForOrderPlaced returns what the provider's acceptance of an order adds:
// one order placed, at at, in the cell of its referral (cell, from the
// referral's copy, and council, from its record).
func ForOrderPlaced(cell model.StatsCell, council string, at time.Time) []Increment {
	class := cell.Class
	if class == "" {
		class = UnknownClass
	}
	return []Increment{{Key: Key{Month: Month(at), Council: council, Priority: cell.Priority, Setting: cell.Setting, Class: class},
		Measure: OrdersPlaced, Days: NoDays}}
}

// CellOf returns the part of ref's cell that comes from the referral
// itself (KeyOf without month and council), for its copies to carry.
func CellOf(ref *model.Referral) model.StatsCell {
	return model.StatsCell{Priority: string(ref.Priority), Setting: string(ref.DeliverySetting.Kind), Class: ClassOf(ref.Equipment)}
}

// ForEvent returns what accepting ev about ref adds, when it moves the
// order from status from to status to (to is "" when it moves nothing).
// Steps are counted in the month the hub accepted the event
// (ev.ReceivedAt), and a delivery's days run from the referral's
// acceptance (ref.ReceivedAt) to the event's, rounded up to whole days: a
// delivery within N days was accepted within N times 24 hours.
func ForEvent(ref *model.Referral, council string, ev *model.Event, from, to model.OrderStatus) []Increment {
	key := KeyOf(ref, council, ev.ReceivedAt)
	one := func(m Measure) []Increment { return []Increment{{Key: key, Measure: m, Days: NoDays}} }
	switch ev.Kind {
	case model.KindComplaint:
		return one(Complaints)
	case model.KindSafeguarding:
		return one(SafeguardingConcerns)
	case model.KindEquipmentIssue:
		return one(EquipmentIssues)
	}
	if to == "" {
		return nil
	}
	if from == "" {
		from = model.StatusOrdered
	}
	switch {
	case to == model.StatusFailedDelivery:
		return one(FailedDeliveries)
	case to == from:
		return nil
	case to == model.StatusScheduled:
		return one(Scheduled)
	case to == model.StatusCollected:
		return one(Collected)
	case to == model.StatusCancelled:
		return one(Cancelled)
	case (to == model.StatusDelivered || to == model.StatusInstalled) && !deliveredAlready(from):
		return []Increment{{Key: key, Measure: Delivered, Days: DaysBetween(ref.ReceivedAt, ev.ReceivedAt)}}
	}
	return nil
}

// deliveredAlready reports whether an order at s was delivered before.
func deliveredAlready(s model.OrderStatus) bool {
	switch s {
	case model.StatusDelivered, model.StatusInstalled, model.StatusCollectionRequested, model.StatusCollected:
		return true
	}
	return false
}

// DaysBetween returns the whole days from a to b, rounded up, from 0 to
// MaxDays; 0 when either is unknown or b is not after a.
func DaysBetween(a, b time.Time) int {
	if a.IsZero() || b.IsZero() || !b.After(a) {
		return 0
	}
	d := math.Ceil(b.Sub(a).Hours() / 24)
	if d > MaxDays {
		return MaxDays
	}
	return int(d)
}
