package store

import (
	"sort"
	"time"
)

// RetentionPolicy says what ApplyRetention may delete.
type RetentionPolicy struct {
	// MessagesBefore: acknowledged topic messages and idempotency records
	// created before it are deleted. Zero deletes none.
	MessagesBefore time.Time
	// SubjectsInactiveSince: disclosure entries of people whose latest
	// entry is before it are deleted (see PruneInactiveSubjects). Zero
	// deletes none.
	SubjectsInactiveSince time.Time
}

// StatisticsKeyPrefix begins the idempotency key of each month's
// statistics published to a commissioner ("statistics:PARTNER:YYYY-MM",
// routes.StatisticsKey). Retention keeps those keys: they name no one,
// there are twelve a year per commissioner, and without them a month
// published could be published again.
const StatisticsKeyPrefix = "statistics:"

// RetentionReport counts what ApplyRetention deleted. It holds no personal
// data, so it may be logged.
type RetentionReport struct {
	// Messages is the number of messages deleted per topic (topics with
	// none are absent).
	Messages        map[string]int `json:"messages"`
	IdempotencyKeys int            `json:"idempotencyKeys"`
	// Referrals counts the referral records (full record and
	// cross-references) of closed orders deleted.
	Referrals int `json:"referrals"`
	// Receipts counts the delivery receipts deleted.
	Receipts    int `json:"receipts"`
	Disclosures int `json:"disclosures"`
}

// MessageCount is the total of Messages.
func (r RetentionReport) MessageCount() int {
	n := 0
	for _, c := range r.Messages {
		n += c
	}
	return n
}

// SortedTopics returns the topics of r.Messages in order, for printing.
func (r RetentionReport) SortedTopics() []string {
	out := make([]string, 0, len(r.Messages))
	for t := range r.Messages {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
