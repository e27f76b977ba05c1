package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Operator roles, least to most: a viewer sees, an operator also acts
// (routes, releases and closes held messages, replays and discards dead
// letters), a dpo (data protection officer) also answers subject access
// requests, the only place personal values are shown.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleDPO      = "dpo"
)

// ValidRole reports whether role is one of the operator roles.
func ValidRole(role string) bool {
	return role == RoleViewer || role == RoleOperator || role == RoleDPO
}

// ErrOperatorExists is returned by AddOperator for a name already taken.
var ErrOperatorExists = errors.New("store: an operator of that name exists")

// Operator is a person who may sign in to the console.
type Operator struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// PasswordHash is the bcrypt (or argon2id) hash of the password, in
	// its encoded form; the store never sees a password.
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"createdAt"`
	// FailedSignIns counts failed sign-ins since the last successful one;
	// LastFailedAt is when the latest failed. The console locks an account
	// out from them.
	FailedSignIns int       `json:"failedSignIns"`
	LastFailedAt  time.Time `json:"lastFailedAt,omitzero"`
}

// OperatorAction is one entry of the operator record: something an
// operator did in the console (signed in, routed a held message, viewed a
// person's subject access report). It names references and outcomes,
// never a person's values: Target is a hold, a dead letter, a referral id
// or a subject's keyed hash.
type OperatorAction struct {
	// ID is the entry's place in the record, set when read back.
	ID       int64     `json:"id,omitempty"`
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Action   string    `json:"action"`
	Target   string    `json:"target,omitempty"`
	Outcome  string    `json:"outcome"`
	Detail   string    `json:"detail,omitempty"`
	// PrevHash and Hash chain the entry (Digest).
	PrevHash string `json:"-"`
	Hash     string `json:"hash,omitempty"`
}

// Digest returns the hex SHA-256 of the entry chained to prev: a version
// tag, then prev, the id, the time (RFC 3339, nanoseconds, UTC) and every
// other field, each as an 8-byte big-endian length and its bytes, so that
// no two different entries encode alike. Every engine chains with it, so
// a record verifies the same whichever engine holds it.
func (a OperatorAction) Digest(prev string) string {
	h := sha256.New()
	for _, v := range []string{"iceshub/operator-record/v1", prev, strconv.FormatInt(a.ID, 10),
		a.At.UTC().Format(time.RFC3339Nano), a.Operator, a.Action, a.Target, a.Outcome, a.Detail} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Operators are the console's accounts and the operator record, a hash
// chain like the disclosure record.
type Operators interface {
	// AddOperator stores a new operator; ErrOperatorExists when the name is
	// taken.
	AddOperator(ctx context.Context, o Operator) error
	// Operator returns the operator of that name, or ErrNotFound.
	Operator(ctx context.Context, name string) (Operator, error)
	// ListOperators returns every operator, by name.
	ListOperators(ctx context.Context) ([]Operator, error)
	// DisableOperator stops an operator signing in and ends its console
	// sessions; ErrNotFound for an unknown name.
	DisableOperator(ctx context.Context, name string) error
	// SetOperatorPassword replaces an operator's password hash, clears
	// its failed sign-ins and ends its console sessions (whoever knew the
	// old password is signed out); ErrNotFound for an unknown name.
	SetOperatorPassword(ctx context.Context, name, hash string) error
	// SignInFailed counts a failed sign-in at at and returns the count
	// since the last success; ErrNotFound for an unknown name.
	SignInFailed(ctx context.Context, name string, at time.Time) (int, error)
	// SignInSucceeded clears the failed sign-ins.
	SignInSucceeded(ctx context.Context, name string) error
	// RecordOperatorAction appends a to the operator record, chained to
	// the entry before it.
	RecordOperatorAction(ctx context.Context, a OperatorAction) error
	// OperatorActions returns the newest limit entries, newest first.
	OperatorActions(ctx context.Context, limit int) ([]OperatorAction, error)
	// VerifyOperatorRecord recomputes the chain and reports the first entry
	// changed, removed or out of place, as VerifyDisclosures does.
	VerifyOperatorRecord(ctx context.Context) (VerifyReport, error)
}

// DeliveredHour is how many deliveries one partner accepted in one hour.
type DeliveredHour struct {
	Recipient string    `json:"recipient"`
	Hour      time.Time `json:"hour"`
	Count     int64     `json:"count"`
}

// Activity is what the console's overview reads beyond the queues.
type Activity interface {
	// DeliveredSince returns, per recipient and hour (UTC), the deliveries
	// partners accepted from since on, ordered by recipient and hour.
	DeliveredSince(ctx context.Context, since time.Time) ([]DeliveredHour, error)
	// DeliveredTotals returns every delivery partners accepted, by
	// recipient.
	DeliveredTotals(ctx context.Context) (map[string]int64, error)
	// ReferralsByCorrelation returns the ids of the referrals whose
	// disclosure record names correlation id id, oldest first.
	ReferralsByCorrelation(ctx context.Context, id string) ([]string, error)
}

// NextOperatorAction returns a as the entry after lastID in the operator
// record, following the entry whose hash is prev: its id, its time as an
// engine keeps it (Timestamp: now when zero) and its hash set. An engine
// stores the result as it is.
func NextOperatorAction(lastID int64, prev string, a OperatorAction) OperatorAction {
	a.ID, a.PrevHash = lastID+1, prev
	a.At = ParseTimestamp(Timestamp(a.At))
	a.Hash = a.Digest(prev)
	return a
}

// CheckOperatorLink checks a, the next entry of the operator record, with
// c (NewChainCheck(0, ""): the operator record has no checkpoints).
func CheckOperatorLink(c *ChainCheck, a OperatorAction) {
	c.AddLink(a.ID, a.PrevHash, a.Hash, a.Digest(a.PrevHash) == a.Hash)
}

// CheckOperator refuses an operator without a name, with an unknown role
// or without a password hash; it returns o with its name trimmed.
func CheckOperator(o Operator) (Operator, error) {
	o.Name = strings.TrimSpace(o.Name)
	switch {
	case o.Name == "":
		return o, errors.New("store: an operator needs a name")
	case !ValidRole(o.Role):
		return o, fmt.Errorf("store: unknown operator role %q", o.Role)
	case o.PasswordHash == "":
		return o, errors.New("store: an operator needs a password hash")
	}
	return o, nil
}

// CheckOperatorAction refuses an entry without its operator or action.
func CheckOperatorAction(a OperatorAction) error {
	if strings.TrimSpace(a.Operator) == "" || strings.TrimSpace(a.Action) == "" {
		return errors.New("store: an operator action needs its operator and action")
	}
	return nil
}

// ConsoleSession is one operator signed in to the console. Sessions are
// kept in the store, so that every hub on it knows them: a load balancer
// may send an operator's requests to any hub, and a hub's restart signs
// nobody out.
type ConsoleSession struct {
	// ID is SessionID of the session cookie's value: the store never
	// holds the cookie, so whoever reads the database cannot sign in with
	// what they read.
	ID       string
	Operator string
	Role     string
	// CSRF is the token every form of the session carries.
	CSRF    string
	Started time.Time
	Seen    time.Time
	// Flash is the message the next page shows, once: the outcome of the
	// form before it, naming references, never a person's values.
	Flash string
}

// SessionID returns the ID under which a store keeps the session of the
// cookie value token: its SHA-256, in hex.
func SessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ConsoleSessions are the console's sessions. The console decides when
// one has expired; the store keeps them, with times to the nanosecond.
type ConsoleSessions interface {
	// StartConsoleSession stores s, after ending every session seen before
	// seenBefore or started before startedBefore (expired).
	StartConsoleSession(ctx context.Context, s ConsoleSession, seenBefore, startedBefore time.Time) error
	// UseConsoleSession returns session id, marked seen at now, when it
	// was seen at or after seenAfter and started at or after startedAfter;
	// otherwise it ends it and returns ErrNotFound, as for a session it
	// does not know.
	UseConsoleSession(ctx context.Context, id string, now, seenAfter, startedAfter time.Time) (ConsoleSession, error)
	// SetConsoleFlash sets the session's flash message; nothing when the
	// session has ended.
	SetConsoleFlash(ctx context.Context, id, msg string) error
	// TakeConsoleFlash returns the session's flash message and clears it.
	TakeConsoleFlash(ctx context.Context, id string) (string, error)
	// EndConsoleSession ends one session (signing out).
	EndConsoleSession(ctx context.Context, id string) error
}
