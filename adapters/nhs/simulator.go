package nhs

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/nhsnumber"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// MaxBodyBytes is the largest request body the Simulator reads; larger ones
// get 413.
const MaxBodyBytes = 1 << 20

// SimHeader is what the Simulator records of a request's headers.
type SimHeader struct {
	Authorization  string
	IdempotencyKey string
	RequestID      string
	CorrelationID  string
	ContentType    string
	Accept         string
	IfNoneExist    string
	UserAgent      string
}

// Received is one request the Simulator received and what it answered.
type Received struct {
	At     time.Time
	Method string
	Path   string
	Header SimHeader
	// Task or Communication is the decoded resource, nil when the body did
	// not decode as the resource the endpoint takes.
	Task          *fhirmap.Task
	Communication *fhirmap.Communication
	// Status is the HTTP status answered.
	Status int
	// ID and Version name the resource version answered; empty and 0 when
	// the request was refused.
	ID      string
	Version int
	// Repeat reports that nothing was created or changed: the same
	// Idempotency-Key with the same body, a PUT of the Task as it already
	// stood, or a conditional create (If-None-Exist) that matched.
	Repeat bool
	// Problems are the refusal's issues, as expression: diagnostics.
	Problems []string
}

// SimStats counts what the Simulator received.
type SimStats struct {
	// Requests is every request received.
	Requests int
	// Created counts resources created: a Task's first version, or a
	// Communication.
	Created int
	// Updated counts new versions of an existing Task.
	Updated int
	// Repeats counts requests that changed nothing (see Received.Repeat).
	Repeats int
	// Refused counts requests refused (4xx) by the checks.
	Refused int
	// Failed counts requests answered with an injected failure.
	Failed int
}

// Simulator is an in-memory FHIR R4 endpoint of a requesting organisation,
// implementing what the hub sends to one (openapi.yaml): PUT /Task/{id}
// (update as create) and POST /Communication. It is an http.Handler; mount
// it at the endpoint's base URL, with the prefix stripped.
//
// It checks the bearer token (RequireToken), the Content-Type
// (application/fhir+json), the X-Request-ID (a UUID) and, for POST, the
// Idempotency-Key; that the body is one JSON resource of the endpoint's
// resourceType with only the elements the hub's contract defines, its
// required R4 elements (Task: status, intent; Communication: status) and
// their codes; and that an NHS number identifier holds a valid NHS number.
// Refusals are OperationOutcomes naming the element. It records every
// request (Received) and keeps every Task version (TaskHistory). A request
// that repeats an Idempotency-Key with the same body, a PUT of the Task as
// it stands, and a POST whose If-None-Exist matches a Communication held
// change nothing and get the original answer; an Idempotency-Key reused with
// a different body gets 409, and so does a PUT that would move a Task out
// of a final status (completed, cancelled...: FHIR's Task lifecycle). It
// fails on demand (FailNext, SetFailure,
// ClearFailure). It is safe for concurrent use.
type Simulator struct {
	mu                 sync.Mutex
	token              string
	failNext           int
	failNextStatus     int
	failNextRetryAfter string
	failAlways         int

	tasks    map[string][]storedTask
	comms    []fhirmap.Communication
	byKey    map[string]keyed
	received []Received
	stats    SimStats
}

type storedTask struct {
	task        fhirmap.Task
	fingerprint [sha256.Size]byte
}

// keyed is what an Idempotency-Key was first answered with.
type keyed struct {
	fingerprint [sha256.Size]byte
	resource    string // "Task" or "Communication"
	id          string
	version     int
}

// NewSimulator returns a Simulator holding nothing that requires no token.
func NewSimulator() *Simulator {
	return &Simulator{tasks: map[string][]storedTask{}, byKey: map[string]keyed{}}
}

// RequireToken makes the Simulator refuse (401) any request whose
// Authorization is not "Bearer <token>". An empty token requires none, but
// an Authorization header that is present must still be a bearer token.
func (s *Simulator) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// FailNext makes the next n requests fail with status, sending
// Retry-After: retryAfter when it is not empty. They are recorded but change
// nothing.
func (s *Simulator) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failNextStatus, s.failNextRetryAfter = n, status, retryAfter
}

// SetFailure makes every request fail with status until ClearFailure.
func (s *Simulator) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAlways = status
}

// ClearFailure ends SetFailure and cancels what is left of FailNext.
func (s *Simulator) ClearFailure() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAlways, s.failNext = 0, 0
}

// Received returns every request received, in the order answered. The
// resources are shared with the Simulator: treat them as read-only.
func (s *Simulator) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Stats returns the counts of what was received.
func (s *Simulator) Stats() SimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Task returns the current version of the Task with id, as the Simulator
// holds it (with meta.versionId), and whether there is one.
func (s *Simulator) Task(id string) (fhirmap.Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.tasks[id]
	if len(h) == 0 {
		return fhirmap.Task{}, false
	}
	return h[len(h)-1].task, true
}

// TaskHistory returns every version of the Task with id, oldest first.
func (s *Simulator) TaskHistory(id string) []fhirmap.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]fhirmap.Task, 0, len(s.tasks[id]))
	for _, v := range s.tasks[id] {
		out = append(out, v.task)
	}
	return out
}

// Communications returns the Communications created, in order.
func (s *Simulator) Communications() []fhirmap.Communication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comms)
}

// issue is one OperationOutcome issue.
type issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

type operationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []issue `json:"issue"`
}

// refusal is a 4xx answer.
type refusal struct {
	status int
	issues []issue
}

func refuse(status int, code, expression, diagnostics string) *refusal {
	is := issue{Severity: "error", Code: code, Diagnostics: diagnostics}
	if expression != "" {
		is.Expression = []string{expression}
	}
	return &refusal{status: status, issues: []issue{is}}
}

var simTaskPath = regexp.MustCompile(`^/Task/([^/]+)$`)

// ServeHTTP implements the endpoint.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Received{
		At: time.Now(), Method: r.Method, Path: r.URL.Path,
		Header: SimHeader{
			Authorization:  r.Header.Get("Authorization"),
			IdempotencyKey: r.Header.Get("Idempotency-Key"),
			RequestID:      r.Header.Get("X-Request-ID"),
			CorrelationID:  r.Header.Get("X-Correlation-ID"),
			ContentType:    r.Header.Get("Content-Type"),
			Accept:         r.Header.Get("Accept"),
			IfNoneExist:    r.Header.Get("If-None-Exist"),
			UserAgent:      r.Header.Get("User-Agent"),
		},
	}
	if rec.Header.CorrelationID != "" {
		w.Header().Set("X-Correlation-ID", rec.Header.CorrelationID)
	}
	if rec.Header.RequestID != "" {
		w.Header().Set("X-Request-ID", rec.Header.RequestID)
	}
	// Read the whole body first, so that every answer, even an injected
	// failure, is given after the request has arrived in full.
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	if status, retryAfter, ok := s.injectedFailure(); ok {
		s.stats.Failed++
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.answerOutcome(w, &rec, &refusal{status: status, issues: []issue{{Severity: "error", Code: "transient",
			Diagnostics: "the simulator was told to fail this request"}}})
		return
	}
	if f := s.serve(w, r, &rec, raw, readErr); f != nil {
		s.stats.Refused++
		s.answerOutcome(w, &rec, f)
	}
}

// serve checks and applies one request, answering it unless it returns a
// refusal. s.mu is held.
func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, rec *Received, raw []byte, readErr error) *refusal {
	var taskID string
	switch m := simTaskPath.FindStringSubmatch(r.URL.Path); {
	case m != nil:
		taskID = m[1]
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", http.MethodPut)
			return refuse(http.StatusMethodNotAllowed, "not-supported", "", "this endpoint takes PUT /Task/{id}")
		}
	case r.URL.Path == "/Communication":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			return refuse(http.StatusMethodNotAllowed, "not-supported", "", "this endpoint takes POST /Communication")
		}
	default:
		return refuse(http.StatusNotFound, "not-found", "", "no such endpoint: the hub sends PUT /Task/{id} and POST /Communication")
	}
	if msg, ok := s.authorised(rec.Header.Authorization); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fhir"`)
		return refuse(http.StatusUnauthorized, "login", "http.Authorization", msg)
	}
	if mt, _, err := mime.ParseMediaType(rec.Header.ContentType); err != nil || mt != ContentTypeFHIRJSON {
		return refuse(http.StatusUnsupportedMediaType, "not-supported", "http.Content-Type", "send "+ContentTypeFHIRJSON)
	}
	if _, err := uuid.Parse(rec.Header.RequestID); err != nil {
		return refuse(http.StatusBadRequest, "required", "http.X-Request-ID", "send an X-Request-ID header holding a UUID")
	}
	key := rec.Header.IdempotencyKey
	if len(key) > 255 || (key == "" && r.Method == http.MethodPost) {
		return refuse(http.StatusBadRequest, "required", "http.Idempotency-Key", "send an Idempotency-Key header of 1 to 255 characters")
	}
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, "too-costly", "", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes))
		}
		return refuse(http.StatusBadRequest, "structure", "", "the body could not be read")
	}

	if taskID != "" {
		var t fhirmap.Task
		if f := decodeResource(raw, "Task", &t); f != nil {
			return f
		}
		rec.Task = &t
		if t.ID != taskID {
			return refuse(http.StatusBadRequest, "invalid", "Task.id", "Task.id must equal the id in the URL")
		}
		if problems := validateTask(&t); len(problems) > 0 {
			return &refusal{status: http.StatusUnprocessableEntity, issues: problems}
		}
		return s.putTask(w, r, rec, key, t)
	}
	var c fhirmap.Communication
	if f := decodeResource(raw, "Communication", &c); f != nil {
		return f
	}
	rec.Communication = &c
	if c.ID != "" {
		return refuse(http.StatusBadRequest, "invalid", "Communication.id", "a create (POST) must not carry an id: the server assigns it")
	}
	if problems := validateCommunication(&c); len(problems) > 0 {
		return &refusal{status: http.StatusUnprocessableEntity, issues: problems}
	}
	return s.postCommunication(w, r, rec, key, c)
}

// finalTaskStatus are the R4 Task statuses a Task never leaves.
var finalTaskStatus = map[string]bool{"completed": true, "cancelled": true, "failed": true, "rejected": true, "entered-in-error": true}

func (s *Simulator) putTask(w http.ResponseWriter, r *http.Request, rec *Received, key string, t fhirmap.Task) *refusal {
	fp := fingerprint(t)
	if f, done := s.repeatedKey(w, r, rec, key, fp); done {
		return f
	}
	history := s.tasks[t.ID]
	if n := len(history); n > 0 && finalTaskStatus[history[n-1].task.Status] && t.Status != history[n-1].task.Status {
		// FHIR's Task lifecycle: a final Task is not reopened.
		return refuse(http.StatusConflict, "business-rule", "Task.status", "the Task is "+history[n-1].task.Status+", a final status: it cannot become "+t.Status)
	}
	status := http.StatusOK
	if len(history) > 0 && history[len(history)-1].fingerprint == fp {
		// The Task as it stands: no new version.
		s.stats.Repeats++
		rec.Repeat = true
	} else {
		if len(history) == 0 {
			s.stats.Created++
			status = http.StatusCreated
		} else {
			s.stats.Updated++
		}
		t.Meta = &fhirmap.Meta{VersionID: strconv.Itoa(len(history) + 1), LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)}
		s.tasks[t.ID] = append(history, storedTask{task: t, fingerprint: fp})
	}
	current := s.tasks[t.ID][len(s.tasks[t.ID])-1].task
	rec.ID, rec.Version = current.ID, len(s.tasks[t.ID])
	if key != "" {
		s.byKey[key] = keyed{fingerprint: fp, resource: "Task", id: current.ID, version: rec.Version}
	}
	s.answer(w, r, rec, status, "Task", current)
	return nil
}

func (s *Simulator) postCommunication(w http.ResponseWriter, r *http.Request, rec *Received, key string, c fhirmap.Communication) *refusal {
	fp := fingerprint(c)
	if f, done := s.repeatedKey(w, r, rec, key, fp); done {
		return f
	}
	if cond := rec.Header.IfNoneExist; cond != "" {
		q, err := url.ParseQuery(cond)
		want := q.Get("identifier")
		if err != nil || len(q) != 1 || want == "" {
			return refuse(http.StatusBadRequest, "not-supported", "http.If-None-Exist", "this server supports If-None-Exist: identifier=system|value only")
		}
		for _, held := range s.comms {
			for _, id := range held.Identifier {
				if id.System+"|"+id.Value == want {
					s.stats.Repeats++
					rec.Repeat, rec.ID, rec.Version = true, held.ID, 1
					s.byKey[key] = keyed{fingerprint: fp, resource: "Communication", id: held.ID, version: 1}
					s.answer(w, r, rec, http.StatusOK, "Communication", held)
					return nil
				}
			}
		}
	}
	c.ID = fmt.Sprintf("comm-%06d", len(s.comms)+1)
	c.Meta = &fhirmap.Meta{VersionID: "1", LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)}
	s.comms = append(s.comms, c)
	s.stats.Created++
	rec.ID, rec.Version = c.ID, 1
	s.byKey[key] = keyed{fingerprint: fp, resource: "Communication", id: c.ID, version: 1}
	s.answer(w, r, rec, http.StatusCreated, "Communication", c)
	return nil
}

// repeatedKey answers a request whose Idempotency-Key was seen before:
// with the original resource version for the same body (done, nil), or a
// refusal for a different one. s.mu is held.
func (s *Simulator) repeatedKey(w http.ResponseWriter, r *http.Request, rec *Received, key string, fp [sha256.Size]byte) (*refusal, bool) {
	prev, seen := s.byKey[key]
	if key == "" || !seen {
		return nil, false
	}
	if prev.fingerprint != fp {
		return refuse(http.StatusConflict, "conflict", "http.Idempotency-Key", "this Idempotency-Key was used for a different request"), true
	}
	s.stats.Repeats++
	rec.Repeat, rec.ID, rec.Version = true, prev.id, prev.version
	var body any
	if prev.resource == "Task" {
		body = s.tasks[prev.id][prev.version-1].task
	} else {
		for _, c := range s.comms {
			if c.ID == prev.id {
				body = c
			}
		}
	}
	s.answer(w, r, rec, http.StatusOK, prev.resource, body)
	return nil, true
}

// decodeResource decodes raw into v strictly: one JSON object of
// resourceType want, with no element the hub's contract does not define.
func decodeResource(raw []byte, want string, v any) *refusal {
	var head struct {
		ResourceType *string `json:"resourceType"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return refuse(http.StatusBadRequest, "structure", "", describeJSON(err))
	}
	if head.ResourceType == nil || *head.ResourceType != want {
		return refuse(http.StatusBadRequest, "invalid", "resourceType", "the body must be a "+want+" resource")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return refuse(http.StatusBadRequest, "structure", want, describeJSON(err))
	}
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return refuse(http.StatusBadRequest, "structure", "", "the body holds more than one JSON value")
	}
	return nil
}

// describeJSON names what is wrong with a body without quoting it.
func describeJSON(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be a JSON %s", typ.Field, typ.Type.Kind())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "an element the hub's contract does not define: " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "the body is not a resource of the hub's contract"
}

var (
	taskStatuses = []string{"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
		"on-hold", "failed", "completed", "entered-in-error"}
	taskIntents = []string{"unknown", "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
		"instance-order", "option"}
	communicationStatuses = []string{"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
		"entered-in-error", "unknown"}
	requestPriorities = []string{"routine", "urgent", "asap", "stat"}
)

// problems collects OperationOutcome issues.
type problems []issue

func (p *problems) add(code, expression, diagnostics string) {
	*p = append(*p, issue{Severity: "error", Code: code, Diagnostics: diagnostics, Expression: []string{expression}})
}

// code checks a required (or, with required false, optional) code.
func (p *problems) code(at, v string, required bool, allowed []string) {
	switch {
	case v == "" && required:
		p.add("required", at, at+" is required")
	case v != "" && !slices.Contains(allowed, v):
		p.add("code-invalid", at, at+" must be one of "+strings.Join(allowed, ", "))
	}
}

func (p *problems) dateTime(at, v string) {
	if v == "" {
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		p.add("value", at, at+" must be a dateTime with a time zone")
	}
}

// reference checks a Reference, and that a Patient named by NHS number is
// named by a valid one (a pseudonym in the NHS number system would fail).
func (p *problems) reference(at string, r *fhirmap.Reference) {
	if r == nil {
		return
	}
	if r.Reference == "" && r.Identifier == nil && r.Display == "" {
		p.add("required", at, at+" must hold a reference, an identifier or a display")
	}
	if id := r.Identifier; id != nil {
		if id.System == "" || id.Value == "" {
			p.add("required", at+".identifier", at+".identifier needs a system and a value")
		}
		if strings.EqualFold(id.System, nhsnumber.System) && nhsnumber.Check(id.Value) != nil {
			p.add("value", at+".identifier.value", "not a valid NHS number")
		}
	}
}

func (p *problems) concept(at string, c *fhirmap.CodeableConcept) {
	if c == nil {
		return
	}
	if len(c.Coding) == 0 && c.Text == "" {
		p.add("required", at, at+" must hold a coding or a text")
	}
	for i, cd := range c.Coding {
		if cd.Code == "" || cd.System == "" {
			p.add("required", fmt.Sprintf("%s.coding[%d]", at, i), "a coding needs a system and a code")
		}
	}
}

func validateTask(t *fhirmap.Task) []issue {
	var p problems
	p.code("Task.status", t.Status, true, taskStatuses)
	p.code("Task.intent", t.Intent, true, taskIntents)
	p.code("Task.priority", t.Priority, false, requestPriorities)
	for i, id := range t.Identifier {
		if id.System == "" || id.Value == "" {
			p.add("required", fmt.Sprintf("Task.identifier[%d]", i), "an identifier needs a system and a value")
		}
	}
	p.concept("Task.statusReason", t.StatusReason)
	p.concept("Task.businessStatus", t.BusinessStatus)
	p.concept("Task.code", t.Code)
	p.reference("Task.focus", t.Focus)
	p.reference("Task.for", t.For)
	p.reference("Task.requester", t.Requester)
	p.reference("Task.owner", t.Owner)
	p.dateTime("Task.authoredOn", t.AuthoredOn)
	p.dateTime("Task.lastModified", t.LastModified)
	for i, n := range t.Note {
		at := fmt.Sprintf("Task.note[%d]", i)
		if strings.TrimSpace(n.Text) == "" {
			p.add("required", at+".text", at+".text is required")
		}
		p.dateTime(at+".time", n.Time)
	}
	if t.Meta != nil {
		p.add("invalid", "Task.meta", "the hub does not send meta")
	}
	return p
}

func validateCommunication(c *fhirmap.Communication) []issue {
	var p problems
	p.code("Communication.status", c.Status, true, communicationStatuses)
	p.code("Communication.priority", c.Priority, false, requestPriorities)
	for i, id := range c.Identifier {
		if id.System == "" || id.Value == "" {
			p.add("required", fmt.Sprintf("Communication.identifier[%d]", i), "an identifier needs a system and a value")
		}
	}
	for i := range c.Category {
		p.concept(fmt.Sprintf("Communication.category[%d]", i), &c.Category[i])
	}
	p.concept("Communication.topic", c.Topic)
	for i := range c.ReasonCode {
		p.concept(fmt.Sprintf("Communication.reasonCode[%d]", i), &c.ReasonCode[i])
	}
	p.reference("Communication.subject", c.Subject)
	p.reference("Communication.sender", c.Sender)
	for i := range c.About {
		p.reference(fmt.Sprintf("Communication.about[%d]", i), &c.About[i])
	}
	for i := range c.Recipient {
		p.reference(fmt.Sprintf("Communication.recipient[%d]", i), &c.Recipient[i])
	}
	p.dateTime("Communication.sent", c.Sent)
	for i, pl := range c.Payload {
		if strings.TrimSpace(pl.ContentString) == "" {
			p.add("required", fmt.Sprintf("Communication.payload[%d].content[x]", i), "a payload needs content")
		}
	}
	if c.Meta != nil {
		p.add("invalid", "Communication.meta", "the hub does not send meta")
	}
	return p
}

func fingerprint(v any) [sha256.Size]byte {
	b, _ := json.Marshal(v) // the struct types always marshal
	return sha256.Sum256(b)
}

// injectedFailure consumes one injected failure, if any. s.mu is held.
func (s *Simulator) injectedFailure() (status int, retryAfter string, ok bool) {
	if s.failNext > 0 {
		s.failNext--
		return s.failNextStatus, s.failNextRetryAfter, true
	}
	if s.failAlways != 0 {
		return s.failAlways, "", true
	}
	return 0, "", false
}

func (s *Simulator) authorised(h string) (string, bool) {
	if s.token == "" {
		if h == "" || strings.HasPrefix(h, "Bearer ") {
			return "", true
		}
		return "Authorization must be a bearer token", false
	}
	if h == "" {
		return "send Authorization: Bearer <token>", false
	}
	if h != "Bearer "+s.token {
		return "the bearer token is not valid", false
	}
	return "", true
}

// answer writes a resource version with its Location and ETag and records
// the request. s.mu is held.
func (s *Simulator) answer(w http.ResponseWriter, r *http.Request, rec *Received, status int, resource string, body any) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Location", fmt.Sprintf("%s://%s/%s/%s/_history/%d", scheme, r.Host, resource, rec.ID, rec.Version))
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, rec.Version))
	s.write(w, rec, status, body)
}

func (s *Simulator) answerOutcome(w http.ResponseWriter, rec *Received, f *refusal) {
	for _, is := range f.issues {
		rec.Problems = append(rec.Problems, strings.Join(is.Expression, ",")+": "+is.Diagnostics)
	}
	s.write(w, rec, f.status, operationOutcome{ResourceType: "OperationOutcome", Issue: f.issues})
}

func (s *Simulator) write(w http.ResponseWriter, rec *Received, status int, body any) {
	rec.Status = status
	s.received = append(s.received, *rec)
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", ContentTypeFHIRJSON)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
