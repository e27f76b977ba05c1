package model

// Delivery is one recipient's copy of a message, as it waits on that
// recipient's delivery topic. Referral holds only the fields listed in Fields:
// the outbound mapping never sees the full record.
type Delivery struct {
	Kind Kind `json:"kind"`
	// Recipient is the configured partner id (for example "provider" or
	// "council-cwac").
	Recipient string `json:"recipient"`
	// IdempotencyKey is sent as the Idempotency-Key header; it is derived from
	// the referral and recipient so that it is the same on every retry,
	// redelivery and restart.
	IdempotencyKey string `json:"idempotencyKey"`
	// Fields are the labels of the fields the route lets the recipient
	// have (config.Route.Disclosed): what the copy was cut by and what the
	// outbound mapping checks it can carry. The disclosure record lists
	// only those the payload actually held (Receipt.Fields).
	Fields      []string `json:"fields"`
	Purpose     string   `json:"purpose"`
	LawfulBasis string   `json:"lawfulBasis"`
	// Subject is the person as a keyed hash of the NHS number, taken from
	// the full referral at fan-out (the copy may not hold the number), for
	// the disclosure record. Never sent to the partner.
	Subject  string   `json:"subject"`
	Referral Referral `json:"referral"`
	// Refs are the partners' references of the referral, filled in just
	// before sending (a copy may wait behind the message that creates
	// them), so that a partner receives its own reference back: the
	// provider's order reference, the recipient council's case reference,
	// the NHS Task id.
	Refs References `json:"refs"`
	// Cell is the statistics cell of a referral's copy (KindReferral),
	// taken from the full referral at fan-out (the copy may not hold what
	// it is made of), so that the provider's acceptance of the order is
	// counted in the referral's cell (internal/stats). Never sent to the
	// partner; nil in copies cut before it existed.
	Cell *StatsCell `json:"cell,omitempty"`
	// Statistics is the published table of a copy about no referral
	// (KindStatistics): Referral, Subject and Refs are then empty.
	Statistics *Statistics `json:"statistics,omitempty"`
}

// StatsCell is the part of a statistics cell that comes from the referral
// itself (internal/stats.Key without its month and council): codes from
// short fixed lists, never anything that identifies a person.
type StatsCell struct {
	Priority string `json:"priority,omitempty"`
	Setting  string `json:"setting,omitempty"`
	Class    string `json:"class,omitempty"`
}

// StatisticsLabel is what the disclosure record lists as sent in a copy of
// the statistics (Receipt.Fields): no field of anyone's, only the
// published, anonymised table.
const StatisticsLabel = "statistics (anonymised)"

// Statistics is a month of the statistics of the service as published:
// disclosure control applied, never raw counts.
type Statistics struct {
	// Month is the month published, YYYY-MM.
	Month string `json:"month"`
	// ContentType is the media type of Body ("text/csv; charset=utf-8").
	ContentType string `json:"contentType"`
	// Body is the published table, as 'iceshub stats' writes it.
	Body string `json:"body"`
}

// Receipt is what a partner answered when it accepted a delivery.
type Receipt struct {
	// PartnerReference is the partner's own reference for what it created
	// (the provider's order reference, the council's case reference).
	PartnerReference string `json:"partnerReference,omitempty"`
	StatusCode       int    `json:"statusCode"`
	// Fields are the labels of the canonical fields the payload sent held
	// (model.SentLabels), as its outbound mapping encoded them: what the
	// disclosure record lists. A sender returns them with an error too
	// when the payload went out (the partner refused it); nil when nothing
	// was encoded.
	Fields []string `json:"fields,omitempty"`
}
