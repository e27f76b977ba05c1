package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

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

// session is one operator signed in.
type session struct {
	id, name, role, csrf string
	started, seen        time.Time
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

// current returns the session of r, nil when not signed in or expired.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[ck.Value]
	if !ok {
		return nil
	}
	if now.Sub(s.seen) > c.cfg.Idle || now.Sub(s.started) > c.cfg.Lifetime {
		delete(c.sessions, ck.Value)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (c *Console) setFlash(s *session, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if live, ok := c.sessions[s.id]; ok {
		live.flash = msg
	}
}

func (c *Console) takeFlash(s *session) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	live, ok := c.sessions[s.id]
	if !ok {
		return ""
	}
	f := live.flash
	live.flash = ""
	return f
}

// need lets a request through when it comes from a session whose role is
// at least role, and, for anything but GET, carries that session's CSRF
// token. Not signed in: to the sign-in page. Signed in without the role:
// 403.
func (c *Console) need(role string, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
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
	if c.current(r) != nil {
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
	s := &session{id: randomToken(32), name: op.Name, role: op.Role, csrf: randomToken(32), started: now, seen: now}
	if err := c.recordAction(r.Context(), s, "sign-in", "", "ok", op.Role); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.mu.Lock()
	for id, old := range c.sessions { // drop the expired
		if now.Sub(old.seen) > c.cfg.Idle || now.Sub(old.started) > c.cfg.Lifetime {
			delete(c.sessions, id)
		}
	}
	c.sessions[s.id] = s
	c.mu.Unlock()
	c.setCookie(w, r, LoginCookie, "", -1)
	c.setCookie(w, r, SessionCookie, s.id, 0)
	c.log.Info("console sign-in", "status", "ok")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.mu.Lock()
	delete(c.sessions, s.id)
	c.mu.Unlock()
	_ = c.recordAction(r.Context(), s, "sign-out", "", "ok", "")
	c.setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
