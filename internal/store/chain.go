package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"
)

// The disclosure record is an append-only hash chain, the same in every
// engine. Each entry's hash is SHA-256 over a canonical encoding
// (ChainEntry.Digest) of the previous entry's hash and every column of the
// entry, its id included, so that changing, removing or reordering an
// entry breaks the chain at that entry. Ids are consecutive: a gap is a
// removed entry, and an id given out beyond the last entry is a removed
// tail. Retention removes only a prefix, and writes a checkpoint (the id
// and hash of the last removed entry) in the same transaction;
// verification starts from the latest checkpoint.
//
// What the chain cannot prove on its own: someone able to rewrite the whole
// database can recompute every hash. Recording VerifyReport.Head somewhere
// else (a ticket, a partner, a signed log) from time to time anchors the
// record up to that point.

// ChainEntry is one entry of the disclosure record as an engine stores it:
// the hash covers these exact strings, so an engine keeps them as they are
// (At as Timestamp wrote it, Fields as JSON) and a copy between engines
// keeps the chain.
type ChainEntry struct {
	ID                                             int64
	At, ReferralID, CorrelationID, Recipient, Kind string
	Fields, Purpose, LawfulBasis, Outcome, Detail  string
	Subject, PrevHash, Hash                        string
}

// NewChainEntry returns d as entry id of the chain, following the entry
// whose hash is prev, its hash computed.
func NewChainEntry(id int64, prev string, d Disclosure) (ChainEntry, error) {
	fields, err := json.Marshal(d.Fields)
	if err != nil {
		return ChainEntry{}, fmt.Errorf("store: encode disclosed field names: %w", err)
	}
	e := ChainEntry{
		ID: id, At: Timestamp(d.At), ReferralID: d.ReferralID, CorrelationID: d.CorrelationID, Recipient: d.Recipient, Kind: d.Kind,
		Fields: string(fields), Purpose: d.Purpose, LawfulBasis: d.LawfulBasis, Outcome: d.Outcome, Detail: d.Detail,
		Subject: d.Subject, PrevHash: prev,
	}
	e.Hash = e.Digest()
	return e, nil
}

// Digest returns the hex SHA-256 of a version tag followed by each value as
// an 8-byte big-endian length and its bytes, so that no two different
// entries encode alike.
func (e ChainEntry) Digest() string {
	h := sha256.New()
	write := func(h hash.Hash, s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(h, "iceshub/disclosure/v1")
	for _, v := range []string{e.PrevHash, strconv.FormatInt(e.ID, 10), e.At, e.ReferralID, e.CorrelationID, e.Recipient,
		e.Kind, e.Fields, e.Purpose, e.LawfulBasis, e.Outcome, e.Detail, e.Subject} {
		write(h, v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Disclosure returns the entry as the record's users read it.
func (e ChainEntry) Disclosure() (Disclosure, error) {
	d := Disclosure{
		ID: e.ID, At: ParseTimestamp(e.At), ReferralID: e.ReferralID, CorrelationID: e.CorrelationID, Recipient: e.Recipient,
		Kind: e.Kind, Purpose: e.Purpose, LawfulBasis: e.LawfulBasis, Outcome: e.Outcome, Detail: e.Detail, Subject: e.Subject,
	}
	if err := json.Unmarshal([]byte(e.Fields), &d.Fields); err != nil {
		return Disclosure{}, fmt.Errorf("store: decode disclosed field names of entry %d: %w", e.ID, err)
	}
	return d, nil
}

// ChainCheck verifies a hash chain as an engine reads it, entry by entry
// in id order, from the latest checkpoint: the disclosure record (Add) and
// the operator record (AddLink).
type ChainCheck struct {
	rep    VerifyReport
	next   int64
	failed bool
}

// NewChainCheck starts a verification after the checkpoint upto (0 and ""
// when there is none), whose hash is head.
func NewChainCheck(upto int64, head string) *ChainCheck {
	return &ChainCheck{rep: VerifyReport{Checkpoint: upto, Head: head}, next: upto + 1}
}

// Add checks the next entry of the disclosure record; after the first bad
// one it does nothing.
func (c *ChainCheck) Add(e ChainEntry) { c.AddLink(e.ID, e.PrevHash, e.Hash, e.Digest() == e.Hash) }

// AddLink checks the next entry of a chain: its id, the hash it says it
// follows, its own hash, and whether its contents still match that hash
// (intact). After the first bad entry it does nothing.
func (c *ChainCheck) AddLink(id int64, prev, hash string, intact bool) {
	if c.failed {
		return
	}
	switch {
	case id <= c.rep.Checkpoint:
		c.fail(id, "entry %d is covered by checkpoint %d but was not removed", id, c.rep.Checkpoint)
	case id != c.next:
		c.fail(c.next, "entry %d is missing (the next entry is %d)", c.next, id)
	case prev != c.rep.Head:
		c.fail(id, "entry %d does not follow the entry before it (previous hash differs)", id)
	case !intact:
		c.fail(id, "entry %d was changed (its contents do not match its hash)", id)
	default:
		c.rep.Entries++
		c.rep.Head = hash
		c.next++
	}
}

func (c *ChainCheck) fail(id int64, format string, args ...any) {
	c.failed, c.rep.BadID, c.rep.Problem = true, id, fmt.Sprintf(format, args...)
}

// Report ends the verification: issued is the last id the engine gave out,
// so that a removed tail is found too.
func (c *ChainCheck) Report(issued int64) VerifyReport {
	if !c.failed && issued >= c.next {
		c.fail(c.next, "entry %d is missing (entries up to %d were recorded)", c.next, issued)
	}
	c.rep.OK = !c.failed
	return c.rep
}

// SubjectKeyCheck is the keyed check value an engine keeps of the subject
// key (never the key itself), to refuse a different key later
// (ErrSubjectKeyMismatch).
func SubjectKeyCheck(key []byte) (string, error) {
	if len(key) < 32 {
		return "", errors.New("store: subject key shorter than 32 bytes")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("iceshub/subject-key-check/v1"))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Timestamp is how engines keep a time as text: RFC 3339 in UTC with
// nanoseconds; the zero time stands for now.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ParseTimestamp reads a time Timestamp wrote; the zero time when it
// cannot.
func ParseTimestamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
