// Package console is the operators' console: server-rendered pages under
// /console/ for the people who run an equipment service (a service desk,
// council case officers, the data protection officer). It shows journeys
// and statuses with as little personal data as the task needs, resolves
// held messages and dead letters through the same use cases as the admin
// API and the command line (routes.Held, the store's dead-letter replay
// and discard), and answers subject access requests.
//
// Operators sign in with accounts kept in the store (store.Operators).
// Their sessions are kept in the store too (store.ConsoleSessions), so
// that every hub on it knows them, behind an HttpOnly, SameSite=Strict
// cookie (Secure over TLS) whose value the store never holds. Every form
// carries the session's CSRF token; after MaxFailures failed sign-ins in a
// row an account is locked for LockFor. Every action, and every view of
// personal values, is appended to the operator record, a hash chain like
// the disclosure record. Personal values are shown to the dpo role only,
// on the subject access page only.
//
// Every asset is embedded; pages load nothing from another host.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

// Defaults of Config.
const (
	DefaultMaxFailures = 5
	DefaultLockFor     = 15 * time.Minute
	DefaultIdle        = 30 * time.Minute
	DefaultLifetime    = 8 * time.Hour
)

// Reader is what the pages read of the store.
type Reader interface {
	store.Operators
	store.ConsoleSessions
	store.Activity
	Queues(ctx context.Context) ([]store.QueueStat, error)
	DeadLetters(ctx context.Context) ([]store.DeadLetter, error)
	DeadLetter(ctx context.Context, id int64) (store.DeadLetter, error)
	DeadLetterCounts(ctx context.Context) ([]store.DeadLetterCount, error)
	ParkedDeliveries(ctx context.Context) ([]store.Parked, error)
	AllHeld(ctx context.Context) ([]store.Hold, error)
	Deliveries(ctx context.Context, referralID string) ([]store.Delivered, error)
	Disclosures(ctx context.Context, referralID string) ([]store.Disclosure, error)
	DisclosuresBySubject(ctx context.Context, subject string) ([]store.Disclosure, error)
	VerifyDisclosures(ctx context.Context) (store.VerifyReport, error)
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// HeldResolver resolves held messages: *routes.Held, the use case the
// admin API and `iceshub held` use.
type HeldResolver interface {
	Route(ctx context.Context, id int64, council, by, reason string) (routes.Resolved, error)
	Release(ctx context.Context, id int64, perm store.PermissionRecord, by, reason string) (routes.Resolved, error)
	Close(ctx context.Context, id int64, by, reason string) (routes.Resolved, error)
}

// DeadLetterActions replays and discards dead letters, as the admin API
// and `iceshub dlq` do.
type DeadLetterActions interface {
	Replay(ctx context.Context, id int64, by, reason string) (model.Delivery, error)
	Discard(ctx context.Context, id int64, by, reason string) error
}

// Partner is a configured partner, as the overview lists it.
type Partner struct {
	ID, Name, Kind string
}

// PolicyRow is one row of `iceshub policy explain`.
type PolicyRow struct {
	Flow, Recipient, Field, Class, Transform, How, Purpose, Article6, Article9 string
}

// SubjectReport is a subject access report, as `iceshub audit subject`
// makes it: Download is its JSON form, byte for byte.
type SubjectReport struct {
	NHSNumber       string
	GeneratedAt     time.Time
	RequestReceived string
	ReplyDueBy      string
	DeadlineRule    string
	Integrity       store.VerifyReport
	Disclosures     []store.Disclosure
	Download        []byte
}

// Config is what a Console needs.
type Config struct {
	Store      Reader
	Held       HeldResolver
	DeadLetter DeadLetterActions
	// Subject is the keyed hash of an NHS number (internal/subject), as the
	// disclosure record names people.
	Subject func(nhsNumber string) string
	// SubjectAccess makes the report of one person (`audit subject`);
	// received is when the request arrived.
	SubjectAccess func(ctx context.Context, nhsNumber string, received time.Time) (SubjectReport, error)
	Partners      []Partner
	// BreakerOpen reports whether a partner's circuit breaker is open; nil
	// shows none.
	BreakerOpen func(partner string) bool
	Policy      []PolicyRow
	// Stats publishes the statistics of q's months under the hub's
	// disclosure control (hub.PublishStats, as 'iceshub stats'); nil shows
	// none. A mistake in q wraps stats.ErrRequest.
	Stats func(ctx context.Context, q stats.Query) (stats.Table, error)
	// SecureCookies marks the cookies Secure; they are also when a request
	// came over TLS.
	SecureCookies bool
	MaxFailures   int
	LockFor       time.Duration
	Idle          time.Duration
	Lifetime      time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Console serves the console's pages. It is safe for concurrent use.
type Console struct {
	cfg      Config
	log      *slog.Logger
	pages    map[string]*template.Template
	static   http.Handler
	councils []string
}

// New returns the console of cfg; every dependency is required but
// BreakerOpen and Policy.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("console: no store")
	case cfg.Held == nil:
		return nil, errors.New("console: no held message resolver")
	case cfg.DeadLetter == nil:
		return nil, errors.New("console: no dead letter actions")
	case cfg.Subject == nil || cfg.SubjectAccess == nil:
		return nil, errors.New("console: no subject key")
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.LockFor <= 0 {
		cfg.LockFor = DefaultLockFor
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"), pages: pages,
		static: http.StripPrefix(Prefix+"static/", http.FileServerFS(static))}
	for _, p := range cfg.Partners {
		if p.Kind == "council" {
			c.councils = append(c.councils, p.ID)
		}
	}
	return c, nil
}

// Mount adds the console to mux under Prefix.
func (c *Console) Mount(mux *http.ServeMux) {
	mux.Handle("GET /console", http.RedirectHandler(Prefix, http.StatusSeeOther))
	mux.Handle(Prefix, c.Handler())
}

// Handler returns the console's handler; it expects paths under Prefix.
func (c *Console) Handler() http.Handler {
	m := http.NewServeMux()
	m.Handle("GET "+Prefix+"static/", c.static)
	m.HandleFunc("GET "+Prefix+"login", c.loginPage)
	m.HandleFunc("POST "+Prefix+"login", c.login)
	m.Handle("POST "+Prefix+"logout", c.need(store.RoleViewer, c.logout))

	m.Handle("GET "+Prefix+"{$}", c.need(store.RoleViewer, c.overview))
	m.Handle("GET "+Prefix+"held", c.need(store.RoleViewer, c.heldPage))
	m.Handle("POST "+Prefix+"held/{id}/{action}", c.need(store.RoleOperator, c.resolveHeld))
	m.Handle("GET "+Prefix+"dead-letters", c.need(store.RoleViewer, c.deadLetters))
	m.Handle("GET "+Prefix+"dead-letters/{id}", c.need(store.RoleViewer, c.deadLetter))
	m.Handle("POST "+Prefix+"dead-letters/{id}/{action}", c.need(store.RoleOperator, c.resolveDeadLetter))
	m.Handle("GET "+Prefix+"search", c.need(store.RoleViewer, c.searchPage))
	m.Handle("POST "+Prefix+"search", c.need(store.RoleViewer, c.search))
	m.Handle("GET "+Prefix+"referrals/{id}", c.need(store.RoleViewer, c.journey))
	m.Handle("GET "+Prefix+"subject-access", c.need(store.RoleDPO, c.subjectAccessPage))
	m.Handle("POST "+Prefix+"subject-access", c.need(store.RoleDPO, c.subjectAccess))
	m.Handle("GET "+Prefix+"policy", c.need(store.RoleViewer, c.policy))
	m.Handle("GET "+Prefix+"record", c.need(store.RoleViewer, c.record))
	m.Handle("GET "+Prefix+"stats", c.need(store.RoleViewer, c.statsPage))
	m.Handle(Prefix, c.need(store.RoleViewer, func(w http.ResponseWriter, r *http.Request, s *session) {
		c.render(w, r, s, http.StatusNotFound, "error", "Page not found", errorPage{Message: "There is no such page in the console."})
	}))
	return securityHeaders(m)
}

// securityHeaders forbids what the pages never need: scripts, frames,
// other hosts, caching of what they show.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// record appends an entry to the operator record. A failure to record is
// logged and answered by the caller: an action nobody can account for
// must not pass silently.
func (c *Console) recordAction(ctx context.Context, s *session, action, target, outcome, detail string) error {
	err := c.cfg.Store.RecordOperatorAction(ctx, store.OperatorAction{At: c.cfg.Now(), Operator: s.name, Action: action,
		Target: target, Outcome: outcome, Detail: detail})
	if err != nil {
		c.log.Error("operator record not written", "error", err)
		return fmt.Errorf("the operator record could not be written: %w", err)
	}
	return nil
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"join": strings.Join,
		"ago":  ago,
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// ago says how long before now t was, roughly.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// page is what every page's template gets.
type page struct {
	Title    string
	Page     string
	Operator string
	Role     string
	CSRF     string
	Flash    string
	CanAct   bool
	IsDPO    bool
	Data     any
}

type errorPage struct{ Message string }

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	p := page{Title: title, Page: name, Data: data}
	if s != nil {
		p.Operator, p.Role, p.CSRF = s.name, s.role, s.csrf
		p.Flash = c.takeFlash(r.Context(), s)
		p.CanAct = rank(s.role) >= rank(store.RoleOperator)
		p.IsDPO = s.role == store.RoleDPO
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		c.log.Error("console page failed", "error", err, "path", name)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail answers a request the store or a use case could not serve.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := http.StatusInternalServerError
	msg := "The hub could not complete the request. The error is in the hub's log."
	switch {
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, "Not found: "+err.Error()
	case errors.Is(err, store.ErrResolved), errors.Is(err, store.ErrHoldResolved):
		status, msg = http.StatusConflict, "Already resolved: "+err.Error()
	case errors.Is(err, routes.ErrCannotResolve), errors.Is(err, store.ErrNotReplayable):
		status, msg = http.StatusUnprocessableEntity, "Not possible: "+err.Error()
	case errors.Is(err, store.ErrReasonRequired), errors.Is(err, store.ErrByRequired), errors.Is(err, store.ErrPermissionRequired):
		status, msg = http.StatusBadRequest, "Missing: "+err.Error()
	default:
		c.log.Error("console request failed", "error", err)
	}
	c.render(w, r, s, status, "error", "Not done", errorPage{Message: msg})
}
