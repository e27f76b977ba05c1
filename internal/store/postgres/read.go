package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

var (
	_ intake.Store      = (*Postgres)(nil)
	_ intake.EventStore = (*Postgres)(nil)
)

// FindReferral implements intake.EventStore: the record of the referral l
// names, with its references. For a case or complaint reference without a
// council, the reference must be unique across councils (ErrAmbiguous).
func (p *Postgres) FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error) {
	id := l.ReferralID
	var err error
	switch {
	case id != "":
	case l.ServiceRequestID != "":
		// A ServiceRequest sent again as new (not as an amendment) makes a
		// second referral; events about it concern the latest.
		id, err = p.oneID(ctx, `SELECT referral_id FROM referrals WHERE service_request_id = $1 ORDER BY seq DESC LIMIT 1`, l.ServiceRequestID)
	case l.OrderReference != "":
		id, err = p.oneID(ctx, `SELECT referral_id FROM referrals WHERE order_reference = $1`, l.OrderReference)
	case l.CaseReference != "" || l.ComplaintReference != "":
		ref := l.CaseReference
		if ref == "" {
			ref = l.ComplaintReference
		}
		if l.Council != "" {
			id, err = p.oneID(ctx, `SELECT referral_id FROM case_refs WHERE case_reference = $1 AND council = $2`, ref, l.Council)
		} else {
			id, err = p.oneID(ctx, `SELECT referral_id FROM case_refs WHERE case_reference = $1`, ref)
		}
	}
	if err != nil || id == "" {
		return intake.Record{}, false, err
	}
	return p.referralRecord(ctx, id)
}

// oneID returns the single distinct referral id sql finds, "" for none.
func (p *Postgres) oneID(ctx context.Context, sql string, args ...any) (string, error) {
	ids, err := query(ctx, p, sql, args, func(r pgx.CollectableRow) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return "", err
	}
	for _, id := range ids[min(1, len(ids)):] {
		if id != ids[0] {
			return "", store.ErrAmbiguous
		}
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

func (p *Postgres) referralRecord(ctx context.Context, id string) (intake.Record, bool, error) {
	if p.closed.Load() {
		return intake.Record{}, false, store.ErrClosed
	}
	var rec intake.Record
	var body []byte
	var status string
	var permission string
	err := p.pool.QueryRow(ctx, `SELECT service_request_id, requester_ods, council, order_reference, order_sent_to, task_id, status, record,
			COALESCE((SELECT c.case_reference FROM case_refs c WHERE c.referral_id = r.referral_id AND c.council = r.council
				AND c.purpose = $2 ORDER BY c.at LIMIT 1), ''), permission
		FROM referrals r WHERE referral_id = $1`, id, store.CaseForOrder).Scan(
		&rec.Refs.ServiceRequestID, &rec.Refs.RequesterODS, &rec.Refs.Council, &rec.Refs.OrderReference, &rec.OrderSentTo,
		&rec.Refs.TaskID, &status, &body, &rec.Refs.CaseReference, &permission)
	if errors.Is(err, pgx.ErrNoRows) {
		return intake.Record{}, false, nil
	}
	if err != nil {
		return intake.Record{}, false, fmt.Errorf("store: read referral record: %w", err)
	}
	rec.Status = model.OrderStatus(status)
	if body, err = p.sealer.Open(body); err != nil {
		return intake.Record{}, false, fmt.Errorf("store: referral record %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &rec.Referral); err != nil {
		return intake.Record{}, false, fmt.Errorf("store: decode referral record %s: %w", id, err)
	}
	if err := store.RecordedPermission(&rec.Referral, permission); err != nil {
		return intake.Record{}, false, err
	}
	return rec, true, nil
}

// References returns the references of a referral as a recipient should
// see them.
func (p *Postgres) References(ctx context.Context, referralID, recipient string) (model.References, error) {
	st, err := p.DeliveryState(ctx, "", recipient, "", referralID, store.CaseForOrder)
	return st.Refs, err
}

// DeliveryState answers, in one read, whether the copy with
// idempotencyKey was delivered already, whether partner's lane holds a
// parked copy, and the references of the referral as partner sees them.
// The reads of deliveries asking at the same moment share one statement
// (readStates).
func (p *Postgres) DeliveryState(ctx context.Context, idempotencyKey, partner, lane, referralID, casePurpose string) (store.DeliveryState, error) {
	if p.closed.Load() {
		return store.DeliveryState{}, store.ErrClosed
	}
	r := &stateRequest{ctx: ctx, q: stateQuestion{referralID, idempotencyKey, partner, lane, casePurpose}, done: make(chan stateAnswer, 1)}
	select {
	case p.stateReads <- r:
	case <-p.reading:
		return store.DeliveryState{}, store.ErrClosed
	case <-ctx.Done():
		return store.DeliveryState{}, ctx.Err()
	}
	a := <-r.done
	return a.st, a.err
}

// WasDelivered reports whether the delivery about referralID with this
// idempotency key has been accepted by its partner already.
func (p *Postgres) WasDelivered(ctx context.Context, referralID, idempotencyKey string) (bool, error) {
	st, err := p.DeliveryState(ctx, idempotencyKey, "", "", referralID, "")
	return st.Delivered, err
}

// Deliveries returns the receipts of deliveries about one referral.
func (p *Postgres) Deliveries(ctx context.Context, referralID string) ([]store.Delivered, error) {
	return query(ctx, p, `SELECT idempotency_key, recipient, kind, referral_id, partner_reference, status_code, at
		FROM receipts WHERE referral_id = $1 ORDER BY at`, []any{referralID}, func(r pgx.CollectableRow) (store.Delivered, error) {
		var d store.Delivered
		var at string
		err := r.Scan(&d.IdempotencyKey, &d.Recipient, &d.Kind, &d.ReferralID, &d.PartnerReference, &d.StatusCode, &at)
		d.At = store.ParseTimestamp(at)
		return d, err
	})
}

// Statistics returns the rows of the statistics table for the months from
// to to (YYYY-MM, both included), unpublishable as they are: they must go
// through stats.Publish.
func (p *Postgres) Statistics(ctx context.Context, from, to string) ([]stats.Count, error) {
	return query(ctx, p, `SELECT month, council, priority, setting, class, measure, days, sum(n)::bigint FROM (
			SELECT month, council, priority, setting, class, measure, days, n FROM statistics WHERE month >= $1 AND month <= $2
			UNION ALL
			SELECT month, council, priority, setting, class, measure, days, n FROM statistics_pending WHERE month >= $1 AND month <= $2) AS c
		GROUP BY month, council, priority, setting, class, measure, days
		ORDER BY month, council, priority, setting, class, measure, days`,
		[]any{from, to}, func(r pgx.CollectableRow) (stats.Count, error) {
			var c stats.Count
			var measure string
			err := r.Scan(&c.Key.Month, &c.Key.Council, &c.Key.Priority, &c.Key.Setting, &c.Key.Class, &measure, &c.Days, &c.N)
			c.Measure = stats.Measure(measure)
			return c, err
		})
}
