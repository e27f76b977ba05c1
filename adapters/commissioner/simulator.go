package commissioner

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
)

// Publication is one request the Simulator received and what it answered.
type Publication struct {
	IdempotencyKey string
	Month          string
	ContentType    string
	Body           string
	// Status is what the Simulator answered.
	Status int
}

// Simulator is an in-memory commissioner implementing openapi.yaml, for
// tests: POST /statistics. It is an http.Handler; mount it at the
// commissioner's base URL.
//
// It checks the bearer token (RequireToken), Content-Type (text/csv),
// X-Statistics-Month, the Idempotency-Key header and that the body is
// CSV; records every request; answers a repeated Idempotency-Key with the
// original answer (200) without recording the table again. SetFailure
// makes it answer every request with a status until ClearFailure, as a
// commissioner that is down. It is safe for concurrent use.
type Simulator struct {
	mu       sync.Mutex
	token    string
	failWith int
	received []Publication
	accepted map[string]Accepted
	tables   []Publication
}

// NewSimulator returns a Simulator that has received nothing and requires
// no token.
func NewSimulator() *Simulator { return &Simulator{accepted: map[string]Accepted{}} }

// RequireToken makes the Simulator refuse (401) any request whose
// Authorization is not "Bearer <token>"; empty requires none.
func (s *Simulator) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// SetFailure makes every request fail with status until ClearFailure.
func (s *Simulator) SetFailure(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = status
}

// ClearFailure ends SetFailure.
func (s *Simulator) ClearFailure() { s.SetFailure(0) }

// Received returns every request answered, in order.
func (s *Simulator) Received() []Publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Publication(nil), s.received...)
}

// Tables returns the publications recorded, one per Idempotency-Key, in
// order.
func (s *Simulator) Tables() []Publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Publication(nil), s.tables...)
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != StatisticsPath {
		writeError(w, http.StatusNotFound, "not-found", "no such endpoint", nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method-not-allowed", "POST only", nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, partnersim.MaxBodyBytes+1))
	p := Publication{IdempotencyKey: r.Header.Get("Idempotency-Key"), Month: r.Header.Get(MonthHeader),
		ContentType: r.Header.Get("Content-Type"), Body: string(body)}
	status := s.serve(w, r, &p, body, err)
	p.Status = status
	s.mu.Lock()
	s.received = append(s.received, p)
	s.mu.Unlock()
}

func (s *Simulator) serve(w http.ResponseWriter, r *http.Request, p *Publication, body []byte, readErr error) int {
	s.mu.Lock()
	token, failWith := s.token, s.failWith
	s.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		return writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", nil)
	}
	if failWith != 0 {
		return writeError(w, failWith, "unavailable", "the commissioner is not taking statistics now", nil)
	}
	if readErr != nil || len(body) > partnersim.MaxBodyBytes {
		return writeError(w, http.StatusRequestEntityTooLarge, "too-large", "the body is too large or could not be read", nil)
	}
	var problems []partnersim.Problem
	if mt, _, err := mime.ParseMediaType(p.ContentType); err != nil || mt != "text/csv" {
		problems = append(problems, partnersim.Problem{Field: "Content-Type", Message: "must be text/csv"})
	}
	if p.IdempotencyKey == "" {
		problems = append(problems, partnersim.Problem{Field: "Idempotency-Key", Message: "required"})
	}
	if !monthPattern.MatchString(p.Month) {
		problems = append(problems, partnersim.Problem{Field: MonthHeader, Message: "must be YYYY-MM"})
	}
	if err := checkCSV(p.Body); err != nil {
		problems = append(problems, partnersim.Problem{Field: "body", Message: err.Error()})
	}
	if len(problems) > 0 {
		return writeError(w, http.StatusBadRequest, "invalid-statistics", "the statistics could not be taken", problems)
	}
	s.mu.Lock()
	ack, repeat := s.accepted[p.IdempotencyKey]
	if !repeat {
		ack = Accepted{Reference: fmt.Sprintf("STAT-%06d", len(s.tables)+1), Month: p.Month}
		s.accepted[p.IdempotencyKey] = ack
		s.tables = append(s.tables, *p)
	}
	s.mu.Unlock()
	status := http.StatusCreated
	if repeat {
		status = http.StatusOK
	}
	return writeJSON(w, status, ack)
}

// checkCSV checks that body is a table: comment lines ("# ") first, then
// a header and rows of as many cells.
func checkCSV(body string) error {
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		if !strings.HasPrefix(l, "# ") {
			lines = append(lines, l)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(strings.Join(lines, ""))).ReadAll()
	if err != nil {
		return fmt.Errorf("not CSV: %v", err)
	}
	if len(rows) < 2 {
		return fmt.Errorf("want a header and at least one row")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return status
}

func writeError(w http.ResponseWriter, status int, code, msg string, problems []partnersim.Problem) int {
	return writeJSON(w, status, partnersim.ErrorBody{Code: code, Message: msg, Problems: problems})
}
