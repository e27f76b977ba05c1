package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// The cross-reference: one row per accepted referral linking the NHS
// ServiceRequest, the provider's order reference, the NHS Task and each
// council's case references, so that an event from any partner finds its
// referral. The row also keeps the full canonical referral, which return
// flows cut per recipient long after its referral.received message has been
// purged, and the order status the events have moved it to.
// The tables are created by migrations/00001_initial.sql.

var (
	_ intake.Store      = (*SQLite)(nil)
	_ intake.EventStore = (*SQLite)(nil)
)

// newReferral is a referral's row in the cross-reference, its record already
// sealed: sealing (JSON and encryption) is done before the write
// transaction, so that the one writer does not wait on it.
type newReferral struct {
	rec  *intake.Record
	body []byte
}

// sealReferral prepares rec's row; nil rec gives nil.
func (s *SQLite) sealReferral(rec *intake.Record) (*newReferral, error) {
	if rec == nil {
		return nil, nil
	}
	body, err := s.sealJSON(rec.Referral)
	if err != nil {
		return nil, fmt.Errorf("store: referral record: %w", err)
	}
	return &newReferral{rec: rec, body: body}, nil
}

// insert records a newly accepted referral in the cross-reference.
func (r *newReferral) insert(conn *sqlite.Conn, now string) error {
	rec := r.rec
	status := rec.Status
	if status == "" {
		status = model.StatusOrdered
	}
	if err := sqlitex.Execute(conn, `INSERT INTO referrals
		(referral_id, service_request_id, requester_ods, council, status, record, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, &sqlitex.ExecOptions{Args: []any{
		rec.Referral.ID, rec.Referral.Source.ServiceRequestID, rec.Referral.Requester.OrganisationODS, rec.Refs.Council, string(status), r.body, now, now,
	}}); err != nil {
		return fmt.Errorf("store: record referral: %w", err)
	}
	return nil
}

// applyRefUpdates writes what a batch learnt about references.
func applyRefUpdates(conn *sqlite.Conn, ups []store.RefUpdate) error {
	now := ts(time.Time{})
	for _, u := range ups {
		if u.Council != "" || u.OrderReference != "" || u.OrderSentTo != "" || u.TaskID != "" {
			// An empty value leaves its column as it is.
			if err := sqlitex.Execute(conn, `UPDATE referrals SET
				council = COALESCE(NULLIF(?, ''), council), order_reference = COALESCE(NULLIF(?, ''), order_reference),
				order_sent_to = COALESCE(NULLIF(?, ''), order_sent_to), task_id = COALESCE(NULLIF(?, ''), task_id), updated_at = ?
				WHERE referral_id = ?`, &sqlitex.ExecOptions{Args: []any{u.Council, u.OrderReference, u.OrderSentTo, u.TaskID, now, u.ReferralID}}); err != nil {
				return fmt.Errorf("store: update references of referral: %w", err)
			}
		}
		if u.Permission != nil {
			perm, err := store.EncodePermission(u.Permission)
			if err != nil {
				return err
			}
			if err := sqlitex.Execute(conn, `UPDATE referrals SET permission = ?, updated_at = ? WHERE referral_id = ?`,
				&sqlitex.ExecOptions{Args: []any{perm, now, u.ReferralID}}); err != nil {
				return fmt.Errorf("store: record the permission of referral: %w", err)
			}
		}
		if c := u.Case; c != nil && c.Reference != "" {
			if err := sqlitex.Execute(conn, `INSERT INTO case_refs (council, case_reference, referral_id, purpose, at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT(council, case_reference) DO NOTHING`,
				&sqlitex.ExecOptions{Args: []any{c.Council, c.Reference, u.ReferralID, c.Purpose, now}}); err != nil {
				return fmt.Errorf("store: record case reference: %w", err)
			}
		}
	}
	return nil
}

// sealJSON encodes v and seals it for storage.
func (s *SQLite) sealJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return s.sealer.Seal(b)
}

// FindReferral implements intake.EventStore: the record of the referral l
// names, with its references. For a case or complaint reference without a
// council, the reference must be unique across councils (ErrAmbiguous).
func (s *SQLite) FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error) {
	id := l.ReferralID
	var err error
	switch {
	case id != "":
	case l.ServiceRequestID != "":
		// A ServiceRequest sent again as new (not as an amendment) makes a
		// second referral; events about it concern the latest.
		id, err = s.oneID(ctx, `SELECT referral_id FROM referrals WHERE service_request_id = ? ORDER BY rowid DESC LIMIT 1`, l.ServiceRequestID)
	case l.OrderReference != "":
		id, err = s.oneID(ctx, `SELECT referral_id FROM referrals WHERE order_reference = ?`, l.OrderReference)
	case l.CaseReference != "" || l.ComplaintReference != "":
		ref := l.CaseReference
		if ref == "" {
			ref = l.ComplaintReference
		}
		if l.Council != "" {
			id, err = s.oneID(ctx, `SELECT referral_id FROM case_refs WHERE case_reference = ? AND council = ?`, ref, l.Council)
		} else {
			id, err = s.oneID(ctx, `SELECT referral_id FROM case_refs WHERE case_reference = ?`, ref)
		}
	}
	if err != nil || id == "" {
		return intake.Record{}, false, err
	}
	return s.referralRecord(ctx, id)
}

// oneID returns the single distinct referral id query finds, "" for none.
func (s *SQLite) oneID(ctx context.Context, query string, args ...any) (string, error) {
	ids := map[string]bool{}
	var id string
	if err := s.read(ctx, query, args, func(st *sqlite.Stmt) error {
		id = st.ColumnText(0)
		ids[id] = true
		return nil
	}); err != nil {
		return "", err
	}
	if len(ids) > 1 {
		return "", store.ErrAmbiguous
	}
	return id, nil
}

func (s *SQLite) referralRecord(ctx context.Context, id string) (intake.Record, bool, error) {
	var rec intake.Record
	var body []byte
	found := false
	var err error
	var permission string
	err = s.read(ctx, `SELECT service_request_id, requester_ods, council, order_reference, order_sent_to, task_id, status, record, permission
		FROM referrals WHERE referral_id = ?`, []any{id}, func(st *sqlite.Stmt) error {
		found = true
		rec.Refs = model.References{
			ServiceRequestID: st.ColumnText(0), RequesterODS: st.ColumnText(1), Council: st.ColumnText(2),
			OrderReference: st.ColumnText(3), TaskID: st.ColumnText(5),
		}
		rec.OrderSentTo = st.ColumnText(4)
		rec.Status = model.OrderStatus(st.ColumnText(6))
		body = make([]byte, st.ColumnLen(7))
		st.ColumnBytes(7, body)
		permission = st.ColumnText(8)
		return nil
	})
	if err != nil || !found {
		return intake.Record{}, false, err
	}
	if body, err = s.sealer.Open(body); err != nil {
		return intake.Record{}, false, fmt.Errorf("store: referral record %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &rec.Referral); err != nil {
		return intake.Record{}, false, fmt.Errorf("store: decode referral record %s: %w", id, err)
	}
	if err := store.RecordedPermission(&rec.Referral, permission); err != nil {
		return intake.Record{}, false, err
	}
	if rec.Refs.Council != "" {
		if rec.Refs.CaseReference, err = s.caseRef(ctx, id, rec.Refs.Council); err != nil {
			return intake.Record{}, false, err
		}
	}
	return rec, true, nil
}

// CaseReference returns the council's case about the order of a referral,
// or "" when the council has none (yet).
func (s *SQLite) caseRef(ctx context.Context, referralID, council string) (string, error) {
	var ref string
	err := s.read(ctx, `SELECT case_reference FROM case_refs WHERE referral_id = ? AND council = ? AND purpose = ? ORDER BY at LIMIT 1`,
		[]any{referralID, council, store.CaseForOrder}, func(st *sqlite.Stmt) error {
			ref = st.ColumnText(0)
			return nil
		})
	return ref, err
}

// References returns the references of a referral as a recipient should
// see them: the council's case reference is the recipient's own (empty for
// a recipient that is not a council with a case).
func (s *SQLite) References(ctx context.Context, referralID, recipient string) (model.References, error) {
	st, err := s.DeliveryState(ctx, "", recipient, "", referralID, store.CaseForOrder)
	return st.Refs, err
}

// DeliveryState answers, in one read, whether the copy with
// idempotencyKey was delivered already, whether partner's lane holds a
// parked copy, and the references of the referral as partner sees them. It
// reads the reference columns only, never the sealed record: it runs before
// every delivery. casePurpose is the purpose of partner's own case whose
// reference it wants (CaseForOrder for a council); "" for a partner that
// has no cases, whose read then skips the case references (a third of the
// read's cost, after a commit has emptied the reader's page cache). The
// deliveries asking at the same time share one read transaction
// (readShared): half the CPU per read in groups of 16.
func (s *SQLite) DeliveryState(ctx context.Context, idempotencyKey, partner, lane, referralID, casePurpose string) (store.DeliveryState, error) {
	var out store.DeliveryState
	err := s.readShared(ctx, `SELECT
			EXISTS(SELECT 1 FROM receipts WHERE referral_id = ? AND idempotency_key = ?),
			EXISTS(SELECT 1 FROM parked WHERE partner = ? AND lane = ?),
			COALESCE(r.service_request_id, ''), COALESCE(r.requester_ods, ''), COALESCE(r.council, ''),
			COALESCE(r.order_reference, ''), COALESCE(r.task_id, ''),
			CASE WHEN ? = '' THEN '' ELSE
				COALESCE((SELECT c.case_reference FROM case_refs c WHERE c.referral_id = r.referral_id AND c.council = ? AND c.purpose = ?
				ORDER BY c.at LIMIT 1), '') END
		FROM (SELECT 1) LEFT JOIN referrals r ON r.referral_id = ?`,
		[]any{referralID, idempotencyKey, partner, lane, casePurpose, partner, casePurpose, referralID}, func(st *sqlite.Stmt) error {
			out = store.DeliveryState{Delivered: st.ColumnBool(0), LaneBusy: st.ColumnBool(1), Refs: model.References{
				ServiceRequestID: st.ColumnText(2), RequesterODS: st.ColumnText(3), Council: st.ColumnText(4),
				OrderReference: st.ColumnText(5), TaskID: st.ColumnText(6), CaseReference: st.ColumnText(7)}}
			return nil
		})
	return out, err
}

// AcceptEventOnce implements intake.EventStore.
func (s *SQLite) AcceptEventOnce(ctx context.Context, c intake.EventCommit) (intake.Response, bool, error) {
	if err := s.EnsureTopics(c.Topic); err != nil {
		return intake.Response{}, false, err
	}
	m, err := s.sealMessage(c.Topic, c.Message)
	if err != nil {
		return intake.Response{}, false, err
	}
	return s.acceptOnce(ctx, c.Keys, c.Response, nil, func(conn *sqlite.Conn) error {
		if err := s.eventChanges(conn, c); err != nil {
			return err
		}
		if err := addStatistics(conn, c.Stats); err != nil {
			return err
		}
		return s.insertMessage(conn, m)
	})
}

// eventChanges writes what an accepted event changes in the referral's
// record: its status (compare and set), its amended content, a case.
func (s *SQLite) eventChanges(conn *sqlite.Conn, c intake.EventCommit) error {
	now := ts(time.Time{})
	if c.Change.To != "" {
		if err := sqlitex.Execute(conn, `UPDATE referrals SET status = ?, updated_at = ? WHERE referral_id = ? AND status = ?`,
			&sqlitex.ExecOptions{Args: []any{string(c.Change.To), now, c.Change.ReferralID, string(orOrdered(c.Change.From))}}); err != nil {
			return fmt.Errorf("store: change status: %w", err)
		}
		if conn.Changes() != 1 {
			return intake.ErrConflict
		}
	}
	if c.Amended != nil {
		body, err := s.sealJSON(c.Amended)
		if err != nil {
			return fmt.Errorf("store: amended referral: %w", err)
		}
		// An amendment that brings a permission of its own replaces the one
		// an operator recorded.
		if err := sqlitex.Execute(conn, `UPDATE referrals SET record = ?, requester_ods = ?, updated_at = ?,
			permission = CASE WHEN ? THEN '' ELSE permission END WHERE referral_id = ?`,
			&sqlitex.ExecOptions{Args: []any{body, c.Amended.Requester.OrganisationODS, now, c.Amended.Permission != nil, c.Change.ReferralID}}); err != nil {
			return fmt.Errorf("store: record amended referral: %w", err)
		}
	}
	if c.Case != nil {
		return applyRefUpdates(conn, []store.RefUpdate{{ReferralID: c.Change.ReferralID, Case: &store.CaseRef{
			Council: c.Case.Council, Reference: c.Case.Reference, Purpose: c.Case.Purpose}}})
	}
	return nil
}

func orOrdered(s model.OrderStatus) model.OrderStatus {
	if s == "" {
		return model.StatusOrdered
	}
	return s
}

// StoredResponse implements intake.EventStore.
func (s *SQLite) StoredResponse(ctx context.Context, keys []string) (intake.Response, bool, error) {
	for _, k := range keys {
		var stored []byte
		if err := s.read(ctx, lookupResponse, []any{k}, func(st *sqlite.Stmt) error {
			stored = []byte(st.ColumnText(0))
			return nil
		}); err != nil {
			return intake.Response{}, false, err
		}
		if stored != nil {
			var first intake.Response
			if err := json.Unmarshal(stored, &first); err != nil {
				return intake.Response{}, false, fmt.Errorf("store: decode stored response: %w", err)
			}
			return first, true, nil
		}
	}
	return intake.Response{}, false, nil
}

// RecordRejection implements intake.EventStore.
func (s *SQLite) RecordRejection(ctx context.Context, r intake.Rejection) error {
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `INSERT INTO rejected_events (at, sender, kind, sender_event, referral_id, reason) VALUES (?, ?, ?, ?, ?, ?)`,
			&sqlitex.ExecOptions{Args: []any{ts(r.At), r.From, r.Kind, r.FromEventID, r.ReferralID, r.Reason}}); err != nil {
			return fmt.Errorf("store: record rejected event: %w", err)
		}
		return nil
	})
}

// Rejections returns the refused events, oldest first.
func (s *SQLite) Rejections(ctx context.Context) ([]intake.Rejection, error) {
	var out []intake.Rejection
	err := s.read(ctx, `SELECT at, sender, kind, sender_event, referral_id, reason FROM rejected_events ORDER BY id`, nil, func(st *sqlite.Stmt) error {
		out = append(out, intake.Rejection{At: parseTS(st.ColumnText(0)), From: st.ColumnText(1), Kind: st.ColumnText(2),
			FromEventID: st.ColumnText(3), ReferralID: st.ColumnText(4), Reason: st.ColumnText(5)})
		return nil
	})
	return out, err
}
