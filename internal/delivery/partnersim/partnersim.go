// Package partnersim is the common core of the partner simulators
// (adapters/provider.Simulator, adapters/crm.Simulator): an in-memory
// implementation of the "create" endpoints of a partner API that the hub
// defines, used by the demo and by tests.
//
// A Sim implements one endpoint. It checks what the contract requires of
// every request (bearer token, JSON content type, Idempotency-Key, a body
// that decodes strictly into the contract's type and passes its validation),
// records every request it receives, de-duplicates by Idempotency-Key (a
// repeated key with the same body gets the original answer and creates
// nothing; with a different body it gets 409), and can be told to fail.
//
// The Sims of one simulated partner share a Partner (NewOn): its bearer
// token, its injected failures (FailNext, SetFailure, FailWhen), the
// references it created (Known) and one journal of every request, numbered
// in the order answered (Journal), so a test can see that an order reached
// the provider before its cancellation. Everything is safe for concurrent
// use.
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
	// Path is the endpoint's path, such as "/orders", or a pattern whose
	// {name} segments match any one non-empty segment, such as
	// "/orders/{ref}/cancellation" (see Params).
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
	// Check, when not nil, is asked after Validate whether the partner can
	// act on the request at all, with the values of the path's {name}
	// segments: a note for a case it never created, say. A non-nil Refusal
	// is answered and nothing is created.
	Check func(params map[string]string, body *T) *Refusal
}

// Refusal is an answer Contract.Check gives instead of creating a record.
type Refusal struct {
	Status  int
	Code    string
	Message string
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
	// Seq numbers the requests of one Partner, across its Sims, in the order
	// they were answered, from 1.
	Seq    int
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
// New or NewOn.
//
// Its lock is taken before its Partner's, never after: a Partner calls into
// no Sim.
type Sim[T any] struct {
	c Contract[T]
	p *Partner

	mu       sync.Mutex
	n        int
	byKey    map[string]record
	received []Received[T]
	stats    Stats
}

// New returns a Sim implementing c on a Partner of its own. It panics if c
// lacks a function or a path: contracts are fixed at compile time by the
// adapters.
func New[T any](c Contract[T]) *Sim[T] { return NewOn(NewPartner(), c) }

// NewOn returns a Sim implementing c as one endpoint of p: it shares p's
// token, injected failures, references and journal with p's other Sims. It
// panics if p is nil or c lacks a function or a path.
func NewOn[T any](p *Partner, c Contract[T]) *Sim[T] {
	if p == nil || c.Path == "" || c.Validate == nil || c.Reference == nil || c.Answer == nil {
		panic("partnersim: incomplete contract")
	}
	if c.InvalidCode == "" {
		c.InvalidCode = "invalid-request"
	}
	return &Sim[T]{c: c, p: p, byKey: map[string]record{}}
}

// Partner returns the Partner the Sim is an endpoint of.
func (s *Sim[T]) Partner() *Partner { return s.p }

// Matches reports whether path (as escaped in the request URL) is this
// Sim's endpoint.
func (s *Sim[T]) Matches(path string) bool {
	_, ok := Params(s.c.Path, path)
	return ok
}

// RequireToken is s.Partner().RequireToken: it applies to every endpoint of
// the partner.
func (s *Sim[T]) RequireToken(token string) { s.p.RequireToken(token) }

// FailNext is s.Partner().FailNext: it applies to every endpoint of the
// partner.
func (s *Sim[T]) FailNext(n, status int, retryAfter string) { s.p.FailNext(n, status, retryAfter) }

// SetFailure is s.Partner().SetFailure: it applies to every endpoint of the
// partner.
func (s *Sim[T]) SetFailure(status int) { s.p.SetFailure(status) }

// FailWhen is s.Partner().FailWhen: it applies to every endpoint of the
// partner.
func (s *Sim[T]) FailWhen(f FailFunc) { s.p.FailWhen(f) }

// ClearFailure is s.Partner().ClearFailure.
func (s *Sim[T]) ClearFailure() { s.p.ClearFailure() }

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
		At: time.Now(), Method: r.Method, Path: r.URL.EscapedPath(),
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

	if status, retryAfter, ok := s.p.injectedFailure(rec.Path, rec.Header.IdempotencyKey, raw); ok {
		s.stats.Failed++
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.answerError(w, &rec, status, "simulated-failure", "the simulator was told to fail this request", nil)
		return
	}

	if !s.admit(w, r, &rec, readErr, decodeErr) {
		return
	}
	s.create(w, &rec)
}

// admit checks the request as the contract says, in order (endpoint,
// method, token, content type, idempotency key, body), and refuses it at
// the first problem. It runs under s.mu.
func (s *Sim[T]) admit(w http.ResponseWriter, r *http.Request, rec *Received[T], readErr, decodeErr error) bool {
	params, matched := Params(s.c.Path, rec.Path)
	switch {
	case !matched:
		s.refuse(w, rec, http.StatusNotFound, "not-found", "no such endpoint", nil)
		return false
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, rec, http.StatusMethodNotAllowed, "method-not-allowed", "use POST", nil)
		return false
	}
	if msg, ok := s.p.authorised(rec.Header.Authorization); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="partner"`)
		s.refuse(w, rec, http.StatusUnauthorized, "unauthorised", msg, nil)
		return false
	}
	if mt, _, err := mime.ParseMediaType(rec.Header.ContentType); err != nil || mt != "application/json" {
		s.refuse(w, rec, http.StatusUnsupportedMediaType, "unsupported-media-type", "send application/json", nil)
		return false
	}
	key := rec.Header.IdempotencyKey
	if key == "" || len(key) > 255 {
		s.refuse(w, rec, http.StatusBadRequest, "idempotency-key-required", "send an Idempotency-Key header of 1 to 255 characters",
			[]Problem{{Field: "Idempotency-Key", Message: "required, at most 255 characters"}})
		return false
	}
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			s.refuse(w, rec, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes), nil)
			return false
		}
		s.refuse(w, rec, http.StatusBadRequest, "unreadable-body", "the body could not be read", nil)
		return false
	}
	if decodeErr != nil {
		// Only the kind of error, never the offending value.
		s.refuse(w, rec, http.StatusBadRequest, "invalid-json", describe(decodeErr), nil)
		return false
	}
	if problems := s.c.Validate(key, &rec.Body); len(problems) > 0 {
		s.refuse(w, rec, http.StatusUnprocessableEntity, s.c.InvalidCode, "the request breaks the contract", problems)
		return false
	}
	if s.c.Check != nil {
		if no := s.c.Check(params, &rec.Body); no != nil {
			s.refuse(w, rec, no.Status, no.Code, no.Message, nil)
			return false
		}
	}
	return true
}

// create answers an admitted request: the first with a key makes a new
// reference (201), a repeat with the same body gets it again (200), the
// same key with another body is 409. It runs under s.mu.
func (s *Sim[T]) create(w http.ResponseWriter, rec *Received[T]) {
	key := rec.Header.IdempotencyKey

	canonical, err := json.Marshal(rec.Body)
	if err != nil {
		s.answerError(w, rec, http.StatusInternalServerError, "internal", "the simulator could not encode the body", nil)
		return
	}
	fp := sha256.Sum256(canonical)
	if prev, seen := s.byKey[key]; seen {
		if prev.fingerprint != fp {
			s.refuse(w, rec, http.StatusConflict, "idempotency-key-reused",
				"this Idempotency-Key was used for a different request", []Problem{{Field: "Idempotency-Key", Message: "reused with a different body"}})
			return
		}
		s.stats.Repeats++
		rec.Repeat, rec.Reference = true, prev.reference
		s.answer(w, rec, http.StatusOK, s.c.Answer(prev.reference))
		return
	}
	s.n++
	ref := s.c.Reference(s.n)
	s.byKey[key] = record{reference: ref, fingerprint: fp}
	s.p.created(ref)
	s.stats.Created++
	rec.Reference = ref
	s.answer(w, rec, http.StatusCreated, s.c.Answer(ref))
}

func (s *Sim[T]) refuse(w http.ResponseWriter, rec *Received[T], status int, code, msg string, problems []Problem) {
	s.stats.Refused++
	s.answerError(w, rec, status, code, msg, problems)
}

func (s *Sim[T]) answerError(w http.ResponseWriter, rec *Received[T], status int, code, msg string, problems []Problem) {
	s.answer(w, rec, status, ErrorBody{Code: code, Message: msg, Problems: problems})
}

// answer writes body as JSON and records the request, in the Sim and in
// the Partner's journal. s.mu is held.
func (s *Sim[T]) answer(w http.ResponseWriter, rec *Received[T], status int, body any) {
	rec.Status = status
	rec.Seq = s.p.journal(Entry{
		At: rec.At, Method: rec.Method, Path: rec.Path, Header: rec.Header, Status: status,
		Reference: rec.Reference, Repeat: rec.Repeat, Body: s.rawBody(rec),
	})
	s.received = append(s.received, *rec)
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// rawBody is the decoded body re-encoded for the journal, nil when the
// request's body did not decode.
func (s *Sim[T]) rawBody(rec *Received[T]) json.RawMessage {
	if !rec.Decoded {
		return nil
	}
	b, err := json.Marshal(rec.Body)
	if err != nil {
		return nil
	}
	return b
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
