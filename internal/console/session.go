package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/iceshub/iceshub/internal/store"
)

// Cookie names: the session, and the token of the sign-in form (before
// there is a session, its CSRF token is this cookie's value, double
// submitted).
const (
	SessionCookie = "iceshub_console"
	LoginCookie   = "iceshub_console_login"
	// CSRFField is the name of every form's CSRF token field.
	CSRFField = "csrf"
)

// bcryptCost is the cost of password hashes: bcrypt's default (10) takes
// about 60 ms on the build machine, which a sign-in can afford and a
// guesser cannot.
// Tests lower it.
var bcryptCost = bcrypt.DefaultCost

// MinPasswordLength is the shortest password HashPassword takes.
const MinPasswordLength = 12

// HashPassword returns the bcrypt hash of password, which must have at
// least MinPasswordLength characters and at most 72 bytes (bcrypt's
// limit).
func HashPassword(password string) (string, error) {
	switch {
	case len([]rune(password)) < MinPasswordLength:
		return "", fmt.Errorf("a password needs at least %d characters", MinPasswordLength)
	case len(password) > 72:
		return "", errors.New("a password may have at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	return string(h), err
}

// NewPassword returns a random password of 20 characters (120 bits), for
// a one-time operator account such as the demo's.
func NewPassword() string {
	return randomToken(15)
}

// dummyHash is compared against when the name is unknown, so that a
// sign-in takes as long whether the account exists or not.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("iceshub-no-such-operator"), bcryptCost)
	return h
})

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// session is one operator signed in, as this request found it in the
// store (store.ConsoleSession).
type session struct {
	// id is the store's ID of the session (store.SessionID of the
	// cookie), never the cookie.
	id, name, role, csrf string
	flash                string
}

func rank(role string) int {
	switch role {
	case store.RoleViewer:
		return 1
	case store.RoleOperator:
		return 2
	case store.RoleDPO:
		return 3
	}
	return 0
}

func (c *Console) secure(r *http.Request) bool { return c.cfg.SecureCookies || r.TLS != nil }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

// current returns the session of r, marked seen; nil when not signed in
// or expired. Sessions are in the store: a session begun on one hub is
// found on any other hub of the same store, and outlives a restart. An
// error is the store's.
func (c *Console) current(r *http.Request) (*session, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	now := c.cfg.Now()
	cs, err := c.cfg.Store.UseConsoleSession(r.Context(), store.SessionID(ck.Value), now, now.Add(-c.cfg.Idle), now.Add(-c.cfg.Lifetime))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console: read the session: %w", err)
	}
	return &session{id: cs.ID, name: cs.Operator, role: cs.Role, csrf: cs.CSRF, flash: cs.Flash}, nil
}

// setFlash leaves msg for the session's next page. The action it reports
// is done by then: a store error is logged, not shown.
func (c *Console) setFlash(ctx context.Context, s *session, msg string) {
	if err := c.cfg.Store.SetConsoleFlash(ctx, s.id, msg); err != nil {
		c.log.Warn("console flash message not kept", "error", err)
	}
}

// takeFlash returns the session's flash message, once: the store is asked
// only when the session held one as the request began.
func (c *Console) takeFlash(ctx context.Context, s *session) string {
	if s.flash == "" {
		return ""
	}
	msg, err := c.cfg.Store.TakeConsoleFlash(ctx, s.id)
	if err != nil {
		c.log.Warn("console flash message not read", "error", err)
		return ""
	}
	return msg
}

// need lets a request through when it comes from a session whose role is
// at least role, and, for anything but GET, carries that session's CSRF
// token. Not signed in: to the sign-in page. Signed in without the role:
// 403.
func (c *Console) need(role string, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.current(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			c.render(w, r, nil, http.StatusForbidden, "error", "Not signed in", errorPage{Message: "Sign in first."})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// A form is a few short fields.
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameToken(r.PostFormValue(CSRFField), s.csrf) {
				c.render(w, r, s, http.StatusForbidden, "error", "Refused", errorPage{
					Message: "The form was refused: it did not carry this session's security token. Go back, reload the page and try again."})
				return
			}
		}
		if rank(s.role) < rank(role) {
			c.render(w, r, s, http.StatusForbidden, "error", "Not allowed", errorPage{
				Message: fmt.Sprintf("Your role (%s) may not do this: it needs the %s role.", s.role, role)})
			return
		}
		h(w, r, s)
	})
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type loginData struct {
	Error, CSRF string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	s, err := c.current(r)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if s != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken(24)
	c.setCookie(w, r, LoginCookie, token, 600)
	c.render(w, r, nil, status, "login", "Sign in", loginData{Error: msg, CSRF: token})
}

// signInRefused is what every refused sign-in says, so that it tells a
// guesser nothing about the account.
const signInRefused = "Sign-in refused: the name or password is wrong, or the account is disabled or locked. " +
	"After repeated failures an account is locked for a while."

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	ck, err := r.Cookie(LoginCookie)
	if err != nil || !sameToken(r.PostFormValue(CSRFField), ck.Value) {
		c.render(w, r, nil, http.StatusForbidden, "error", "Refused", errorPage{
			Message: "The sign-in form was refused: it did not carry its security token. Reload the sign-in page and try again."})
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	password := r.PostFormValue("password")
	now := c.cfg.Now()
	op, err := c.cfg.Store.Operator(r.Context(), name)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			c.fail(w, r, nil, err)
			return
		}
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		c.log.Info("console sign-in refused", "status", "unknown")
		c.showLogin(w, r, http.StatusUnauthorized, signInRefused)
		return
	}
	locked := op.FailedSignIns >= c.cfg.MaxFailures && now.Sub(op.LastFailedAt) < c.cfg.LockFor
	match := bcrypt.CompareHashAndPassword([]byte(op.PasswordHash), []byte(password)) == nil
	if locked || op.Disabled || !match {
		outcome := "refused"
		switch {
		case locked:
			outcome = "locked"
		case op.Disabled:
			outcome = "disabled"
		}
		if !locked {
			// A locked account's failures do not extend its lock: a
			// guesser cannot keep it locked for ever by trying.
			if n, err := c.cfg.Store.SignInFailed(r.Context(), op.Name, now); err == nil && n >= c.cfg.MaxFailures {
				outcome = "locked"
			}
		}
		_ = c.cfg.Store.RecordOperatorAction(r.Context(), store.OperatorAction{At: now, Operator: op.Name, Action: "sign-in", Outcome: outcome})
		c.log.Info("console sign-in refused", "status", outcome)
		c.showLogin(w, r, http.StatusUnauthorized, signInRefused)
		return
	}
	if err := c.cfg.Store.SignInSucceeded(r.Context(), op.Name); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	token := randomToken(32)
	s := &session{id: store.SessionID(token), name: op.Name, role: op.Role, csrf: randomToken(32)}
	if err := c.recordAction(r.Context(), s, "sign-in", "", "ok", op.Role); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	cs := store.ConsoleSession{ID: s.id, Operator: s.name, Role: s.role, CSRF: s.csrf, Started: now, Seen: now}
	if err := c.cfg.Store.StartConsoleSession(r.Context(), cs, now.Add(-c.cfg.Idle), now.Add(-c.cfg.Lifetime)); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setCookie(w, r, LoginCookie, "", -1)
	c.setCookie(w, r, SessionCookie, token, 0)
	c.log.Info("console sign-in", "status", "ok")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.cfg.Store.EndConsoleSession(r.Context(), s.id); err != nil {
		c.fail(w, r, s, err)
		return
	}
	_ = c.recordAction(r.Context(), s, "sign-out", "", "ok", "")
	c.setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
