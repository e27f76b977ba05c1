// Package partnersim is the common core of the partner simulators
// (adapters/provider.Simulator, adapters/crm.Simulator): an in-memory
// implementation of one "create" endpoint of a partner API that the hub
// defines, used by the demo and by tests.
//
// A Sim checks what the contract requires of every request (bearer token,
// JSON content type, Idempotency-Key, a body that decodes strictly into the
// contract's type and passes its validation), records every request it
// receives, de-duplicates by Idempotency-Key (a repeated key with the same
// body gets the original answer and creates nothing; with a different body
// it gets 409), and can be told to fail. It is safe for concurrent use.
package partnersim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBodyBytes is the largest request body a Sim reads; larger ones get 413.
const MaxBodyBytes = 1 << 20

// Problem is one reason a request was refused.
type Problem struct {
	// Field is a JSON path into the request body ("items[0].quantity"), or
	// the header name.
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ErrorBody is the body of every error answer in the hub's partner
// contracts. It never echoes values from the request.
type ErrorBody struct {
	Code     string    `json:"code"`
	Message  string    `json:"message"`
	Problems []Problem `json:"problems,omitempty"`
}

// Contract describes the endpoint a Sim implements.
type Contract[T any] struct {
	// Path is the endpoint's path, such as "/orders".
	Path string
	// InvalidCode is the error code of a body that fails Validate, such as
	// "invalid-order".
	InvalidCode string
	// Validate returns the problems with a decoded body; idempotencyKey is
	// the request's Idempotency-Key header.
	Validate func(idempotencyKey string, body *T) []Problem
	// Reference returns the partner reference of the n-th record (from 1).
	Reference func(n int) string
	// Answer returns the body of a success answer for a record.
	Answer func(reference string) any
}

// Header is what a Sim records of a request's headers.
type Header struct {
	Authorization  string
	IdempotencyKey string
	CorrelationID  string
	ContentType    string
	UserAgent      string
}

// Received is one request a Sim received and what it answered.
type Received[T any] struct {
	At     time.Time
	Method string
	Path   string
	Header Header
	// Body is the decoded body; the zero value when it did not decode.
	Body T
	// Decoded reports whether Body holds the request's body.
	Decoded bool
	// Status is the HTTP status the Sim answered.
	Status int
	// Reference is the partner reference answered, empty when refused.
	Reference string
	// Repeat reports that the Idempotency-Key had been seen before, so the
	// original record was answered and nothing was created.
	Repeat bool
}

// Stats counts what a Sim received.
type Stats struct {
	// Requests is every request received.
	Requests int
	// Created is how many distinct records were created: one per
	// Idempotency-Key accepted.
	Created int
	// Repeats is how many requests repeated an accepted Idempotency-Key
	// with the same body and were answered with the original record.
	Repeats int
	// Refused is how many requests were refused (4xx) by the contract's
	// checks, including a key reused with a different body.
	Refused int
	// Failed is how many requests were answered with an injected failure.
	Failed int
}

type record struct {
	reference   string
	fingerprint [sha256.Size]byte
}

// Sim is a simulated partner endpoint. Its zero value is not usable; call
// New.
type Sim[T any] struct {
	c Contract[T]

	mu                 sync.Mutex
	token              string
	failNext           int
	failNextStatus     int
	failNextRetryAfter string
	failAlways         int
	n                  int
	byKey              map[string]record
	received           []Received[T]
	stats              Stats
}

// New returns a Sim implementing c. It panics if c lacks a function or a
// path: contracts are fixed at compile time by the adapters.
func New[T any](c Contract[T]) *Sim[T] {
	if c.Path == "" || c.Validate == nil || c.Reference == nil || c.Answer == nil {
		panic("partnersim: incomplete contract")
	}
	if c.InvalidCode == "" {
		c.InvalidCode = "invalid-request"
	}
	return &Sim[T]{c: c, byKey: map[string]record{}}
}

// RequireToken makes the Sim refuse (401) any request whose Authorization
// is not "Bearer <token>". An empty token requires none, but an
// Authorization header that is present must still be a bearer token.
func (s *Sim[T]) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// FailNext makes the next n requests fail with status, sending Retry-After:
// retryAfter when it is not empty. The failing requests are recorded but
// create nothing.
func (s *Sim[T]) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failNextStatus, s.failNextRetryAfter = n, status, retryAfter
}

// SetFailure makes every request fail with status until ClearFailure.
func (s *Sim[T]) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAlways = status
}

// ClearFailure ends SetFailure and cancels what is left of FailNext.
func (s *Sim[T]) ClearFailure() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAlways, s.failNext = 0, 0
}

// Received returns every request received, in the order answered. The
// records' bodies are shared with the Sim: treat them as read-only.
func (s *Sim[T]) Received() []Received[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Created returns the requests that created a record (one per distinct
// Idempotency-Key), in order.
func (s *Sim[T]) Created() []Received[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Received[T]
	for _, r := range s.received {
		if r.Reference != "" && !r.Repeat {
			out = append(out, r)
		}
	}
	return out
}

// Stats returns the counts of what was received.
func (s *Sim[T]) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ServeHTTP implements the endpoint.
func (s *Sim[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Received[T]{
		At: time.Now(), Method: r.Method, Path: r.URL.Path,
		Header: Header{
			Authorization:  r.Header.Get("Authorization"),
			IdempotencyKey: r.Header.Get("Idempotency-Key"),
			CorrelationID:  r.Header.Get("X-Correlation-ID"),
			ContentType:    r.Header.Get("Content-Type"),
			UserAgent:      r.Header.Get("User-Agent"),
		},
	}
	if rec.Header.CorrelationID != "" {
		w.Header().Set("X-Correlation-ID", rec.Header.CorrelationID)
	}

	// Read the whole body first, so that every answer, even an injected
	// failure, is given after the request has arrived in full.
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var decodeErr error
	if readErr == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		decodeErr = dec.Decode(&rec.Body)
		if decodeErr == nil && len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
			decodeErr = errTrailing
		}
		rec.Decoded = decodeErr == nil
		if !rec.Decoded {
			var zero T
			rec.Body = zero
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++

	if status, retryAfter, ok := s.injectedFailure(); ok {
		s.stats.Failed++
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.answerError(w, &rec, status, "simulated-failure", "the simulator was told to fail this request", nil)
		return
	}

	switch {
	case r.URL.Path != s.c.Path:
		s.refuse(w, &rec, http.StatusNotFound, "not-found", "no such endpoint", nil)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, &rec, http.StatusMethodNotAllowed, "method-not-allowed", "use POST", nil)
		return
	}
	if msg, ok := s.authorised(rec.Header.Authorization); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="partner"`)
		s.refuse(w, &rec, http.StatusUnauthorized, "unauthorised", msg, nil)
		return
	}
	if mt, _, err := mime.ParseMediaType(rec.Header.ContentType); err != nil || mt != "application/json" {
		s.refuse(w, &rec, http.StatusUnsupportedMediaType, "unsupported-media-type", "send application/json", nil)
		return
	}
	key := rec.Header.IdempotencyKey
	if key == "" || len(key) > 255 {
		s.refuse(w, &rec, http.StatusBadRequest, "idempotency-key-required", "send an Idempotency-Key header of 1 to 255 characters",
			[]Problem{{Field: "Idempotency-Key", Message: "required, at most 255 characters"}})
		return
	}
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			s.refuse(w, &rec, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes), nil)
			return
		}
		s.refuse(w, &rec, http.StatusBadRequest, "unreadable-body", "the body could not be read", nil)
		return
	}
	if decodeErr != nil {
		// Only the kind of error, never the offending value.
		s.refuse(w, &rec, http.StatusBadRequest, "invalid-json", describe(decodeErr), nil)
		return
	}
	if problems := s.c.Validate(key, &rec.Body); len(problems) > 0 {
		s.refuse(w, &rec, http.StatusUnprocessableEntity, s.c.InvalidCode, "the request breaks the contract", problems)
		return
	}

	canonical, err := json.Marshal(rec.Body)
	if err != nil {
		s.answerError(w, &rec, http.StatusInternalServerError, "internal", "the simulator could not encode the body", nil)
		return
	}
	fp := sha256.Sum256(canonical)
	if prev, seen := s.byKey[key]; seen {
		if prev.fingerprint != fp {
			s.refuse(w, &rec, http.StatusConflict, "idempotency-key-reused",
				"this Idempotency-Key was used for a different request", []Problem{{Field: "Idempotency-Key", Message: "reused with a different body"}})
			return
		}
		s.stats.Repeats++
		rec.Repeat, rec.Reference = true, prev.reference
		s.answer(w, &rec, http.StatusOK, s.c.Answer(prev.reference))
		return
	}
	s.n++
	ref := s.c.Reference(s.n)
	s.byKey[key] = record{reference: ref, fingerprint: fp}
	s.stats.Created++
	rec.Reference = ref
	s.answer(w, &rec, http.StatusCreated, s.c.Answer(ref))
}

// injectedFailure consumes one injected failure, if any. s.mu is held.
func (s *Sim[T]) injectedFailure() (status int, retryAfter string, ok bool) {
	if s.failNext > 0 {
		s.failNext--
		return s.failNextStatus, s.failNextRetryAfter, true
	}
	if s.failAlways != 0 {
		return s.failAlways, "", true
	}
	return 0, "", false
}

func (s *Sim[T]) authorised(h string) (string, bool) {
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

func (s *Sim[T]) refuse(w http.ResponseWriter, rec *Received[T], status int, code, msg string, problems []Problem) {
	s.stats.Refused++
	s.answerError(w, rec, status, code, msg, problems)
}

func (s *Sim[T]) answerError(w http.ResponseWriter, rec *Received[T], status int, code, msg string, problems []Problem) {
	s.answer(w, rec, status, ErrorBody{Code: code, Message: msg, Problems: problems})
}

// answer writes body as JSON and records the request. s.mu is held.
func (s *Sim[T]) answer(w http.ResponseWriter, rec *Received[T], status int, body any) {
	rec.Status = status
	s.received = append(s.received, *rec)
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

var errTrailing = errors.New("trailing data after the JSON value")

// describe names what is wrong with a body without quoting it.
func describe(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be a JSON %s", typ.Field, typ.Type.Kind())
	case errors.Is(err, errTrailing):
		return "the body holds more than one JSON value"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "the body has a member the contract does not define: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	return "the body does not match the contract"
}
