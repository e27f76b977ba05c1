package fhir

import (
	"encoding/json"
	"time"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// The resources the hub emits are built from these small structs, not from
// golang-fhir-models: its types marshal every variant of a required choice
// element (an empty codeReference beside codeCodeableConcept), which is
// invalid FHIR. Every field here is omitted when empty, so no empty object,
// array or string is ever written.

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type reference struct {
	Reference string `json:"reference,omitempty"`
}

type identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// operationOutcome is an R4 OperationOutcome.
type operationOutcome struct {
	ResourceType string         `json:"resourceType"` // "OperationOutcome"
	ID           string         `json:"id,omitempty"`
	Issue        []outcomeIssue `json:"issue"`
}

type outcomeIssue struct {
	Severity    string           `json:"severity"`
	Code        string           `json:"code"`
	Details     *codeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
	// Location is the deprecated form of Expression; FHIR uses it, not
	// Expression, for HTTP headers ("http.X-Request-ID"). Both are set
	// for a header so that either kind of client finds it.
	Location   []string `json:"location,omitempty"`
	Expression []string `json:"expression,omitempty"`
}

// bundle is an R4 Bundle as the hub writes one: a response message or a
// transaction-response or batch-response.
type bundle struct {
	ResourceType string        `json:"resourceType"` // "Bundle"
	ID           string        `json:"id,omitempty"`
	Identifier   *identifier   `json:"identifier,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleEntry struct {
	FullURL  string         `json:"fullUrl,omitempty"`
	Resource any            `json:"resource,omitempty"`
	Response *entryResponse `json:"response,omitempty"`
}

type entryResponse struct {
	Status       string            `json:"status"`
	Location     string            `json:"location,omitempty"`
	LastModified string            `json:"lastModified,omitempty"`
	Outcome      *operationOutcome `json:"outcome,omitempty"`
}

// messageHeader is an R4 MessageHeader of a response message.
type messageHeader struct {
	ResourceType string           `json:"resourceType"` // "MessageHeader"
	ID           string           `json:"id"`
	EventCoding  coding           `json:"eventCoding"`
	Source       messageSource    `json:"source"`
	Response     *messageResponse `json:"response,omitempty"`
	Focus        []reference      `json:"focus,omitempty"`
}

type messageSource struct {
	Name     string `json:"name,omitempty"`
	Software string `json:"software,omitempty"`
	Endpoint string `json:"endpoint"`
}

type messageResponse struct {
	Identifier string `json:"identifier"`
	Code       string `json:"code"` // ok | transient-error | fatal-error
}

// instant formats t as a FHIR instant, in UTC to the millisecond.
func instant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// issuesOutcome turns mapping issues into an OperationOutcome.
func issuesOutcome(id string, list []fhirmap.Issue) *operationOutcome {
	oo := &operationOutcome{ResourceType: "OperationOutcome", ID: id}
	for _, i := range list {
		oi := outcomeIssue{Severity: string(i.Severity), Code: string(i.Code), Diagnostics: i.Diagnostics}
		if i.Expression != "" {
			oi.Expression = []string{i.Expression}
		}
		oo.Issue = append(oo.Issue, oi)
	}
	return oo
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the structs above are marshalled; they always encode.
		panic("fhir adapter: marshal response: " + err.Error())
	}
	return b
}
