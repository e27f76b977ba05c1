package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// notifyChannel is the channel a commit that publishes notifies, with the
// topic as payload, so that every hub's queues of that topic look at once.
const notifyChannel = "iceshub_topics"

// execer is what the write functions need of a transaction: the
// transaction itself, or a pipeline, which sends what it is given in one
// round trip when the caller is done (the writes whose outcome decides
// nothing: a delivery's outcome, a referral's copies).
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pipeline queues statements for one round trip (pgx's batch).
type pipeline struct{ b pgx.Batch }

func (pl *pipeline) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	pl.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// send runs what was queued in tx, in order, in one round trip.
func (pl *pipeline) send(ctx context.Context, tx pgx.Tx) error {
	if pl.b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, &pl.b).Close(); err != nil {
		return fmt.Errorf("store: write: %w", err)
	}
	return nil
}

// outgoing is a message ready for the messages table: payload sealed,
// metadata encoded, before the transaction.
type outgoing struct {
	topic, uuid, lane string
	payload, metadata []byte
}

func (p *Postgres) sealMessage(topic string, msg *message.Message) (outgoing, error) {
	sealed, err := p.sealer.Seal(msg.Payload)
	if err != nil {
		return outgoing{}, fmt.Errorf("store: publish to %s: %w", topic, err)
	}
	meta, err := json.Marshal(msg.Metadata)
	if err != nil {
		return outgoing{}, fmt.Errorf("store: publish to %s: metadata of %s: %w", topic, msg.UUID, err)
	}
	// A message about no referral is a lane of its own: nothing waits
	// behind it.
	lane := msg.Metadata.Get(intake.MetaReferralID)
	if lane == "" {
		lane = "message:" + msg.UUID
	}
	return outgoing{topic: topic, uuid: msg.UUID, lane: lane, payload: sealed, metadata: meta}, nil
}

func (p *Postgres) sealMessages(msgs []store.TopicMessage) ([]outgoing, error) {
	out := make([]outgoing, 0, len(msgs))
	for _, m := range msgs {
		if !topicPattern.MatchString(m.Topic) {
			return nil, fmt.Errorf("store: invalid topic name %q", m.Topic)
		}
		o, err := p.sealMessage(m.Topic, m.Message)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// insertMessages writes msgs in the caller's transaction, in order, and
// notifies their topics when it commits.
func insertMessages(ctx context.Context, tx execer, msgs []outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	topics, uuids, lanes := make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs))
	payloads, metas := make([][]byte, len(msgs)), make([][]byte, len(msgs))
	for i, m := range msgs {
		topics[i], uuids[i], lanes[i], payloads[i], metas[i] = m.topic, m.uuid, m.lane, m.payload, m.metadata
	}
	// WITH ORDINALITY: ids follow the order of the batch, so that copies
	// about one referral are offered in the order they were written. The
	// other hubs are notified after the commit (notifyOthers), not in the
	// transaction: a NOTIFY makes every committing transaction that
	// notified wait for the others' commits.
	if _, err := tx.Exec(ctx, `INSERT INTO messages (topic, uuid, lane, payload, metadata)
			SELECT t, u, l, p, m FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[])
				WITH ORDINALITY AS x(t, u, l, p, m, n) ORDER BY n`,
		topics, uuids, lanes, payloads, metas); err != nil {
		return fmt.Errorf("store: publish to %s: %w", strings.Join(uniq(topics), ", "), err)
	}
	return nil
}

func uniq(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func topicsOf(msgs []outgoing) map[string]bool {
	out := map[string]bool{}
	for _, m := range msgs {
		out[m.topic] = true
	}
	return out
}

// Commit writes everything in b in one transaction, shared with the other
// batches that arrive meanwhile (group.go).
//
// The commit does not wait for the flush to disk (the queues' pool). A
// batch is what a route decided about a message still in its queue (its
// copies, its delivery's outcome), and that message's acknowledgement,
// committed after it, comes later in the write-ahead log: a crash of the
// database that loses the batch loses the acknowledgement too, and the
// message is handled again, its copy sent under the same Idempotency-Key
// and its receipt and disclosure recorded then, as after a hub's crash
// between sending and recording. What a partner is answered (an intake's
// 200) is flushed before it is given.
func (p *Postgres) Commit(ctx context.Context, b store.Batch) error {
	w, err := p.prepareBatch(b)
	if err != nil {
		return err
	}
	if p.closed.Load() {
		return store.ErrClosed
	}
	r := &commitRequest{ctx: ctx, w: w, done: make(chan error, 1)}
	select {
	case p.commits <- r:
	case <-p.committing:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Taken: the committer answers whatever happens (a statement timeout
	// bounds it), and the caller learns the outcome rather than guessing.
	if err := <-r.done; err != nil {
		return err
	}
	p.published(topicsOf(w.msgs))
	return nil
}

// preparedBatch is a Batch with its sealing done, ready for a transaction.
type preparedBatch struct {
	b    store.Batch
	msgs []outgoing
	// holds, deadLetters and parked hold the sealed payloads of b's.
	holds, deadPayloads, deadAnswers, parked [][]byte
}

func (p *Postgres) prepareBatch(b store.Batch) (*preparedBatch, error) {
	msgs, err := p.sealMessages(b.Messages)
	if err != nil {
		return nil, err
	}
	w := &preparedBatch{b: b, msgs: msgs}
	for _, h := range b.Holds {
		s, err := p.sealer.SealOptional(h.Payload)
		if err != nil {
			return nil, err
		}
		w.holds = append(w.holds, s)
	}
	for _, d := range b.DeadLetters {
		s, err := p.sealer.SealOptional(d.Payload)
		if err != nil {
			return nil, err
		}
		a, err := p.sealer.SealOptional([]byte(d.PartnerAnswer))
		if err != nil {
			return nil, err
		}
		w.deadPayloads, w.deadAnswers = append(w.deadPayloads, s), append(w.deadAnswers, a)
	}
	for _, pk := range b.Park {
		s, err := p.sealer.Seal(pk.Payload)
		if err != nil {
			return nil, err
		}
		w.parked = append(w.parked, s)
	}
	return w, nil
}

// write writes the batch in tx. The disclosure entries go last: appending
// them locks the head of the chain until the commit, and every other
// writer of the record waits for it.
func (w *preparedBatch) write(ctx context.Context, tx execer) error {
	b := w.b
	if err := insertMessages(ctx, tx, w.msgs); err != nil {
		return err
	}
	if err := applyRefUpdates(ctx, tx, b.Refs); err != nil {
		return err
	}
	if err := w.applyParking(ctx, tx); err != nil {
		return err
	}
	if err := addStatistics(ctx, tx, b.Stats); err != nil {
		return err
	}
	for i, h := range b.Holds {
		if _, err := tx.Exec(ctx, `INSERT INTO held (at, referral_id, kind, route, reason, payload) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (referral_id, kind, route) DO NOTHING`, store.Timestamp(h.At), h.ReferralID, h.Kind, h.Route, h.Reason, w.holds[i]); err != nil {
			return fmt.Errorf("store: hold message: %w", err)
		}
	}
	for i, d := range b.DeadLetters {
		if _, err := tx.Exec(ctx, `INSERT INTO dead_letters
			(at, recipient, kind, referral_id, idempotency_key, status_code, partner_answer, error, payload)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, store.Timestamp(d.At), d.Recipient, d.Kind, d.ReferralID, d.IdempotencyKey,
			d.StatusCode, nonNil(w.deadAnswers[i]), d.Error, w.deadPayloads[i]); err != nil {
			return fmt.Errorf("store: record dead letter: %w", err)
		}
	}
	if err := recordDeliveries(ctx, tx, b.Delivered); err != nil {
		return err
	}
	return appendDisclosures(ctx, tx, b.Disclosures)
}

// writeIn writes the batch in tx in one round trip.
func (w *preparedBatch) writeIn(ctx context.Context, tx pgx.Tx) error {
	var pl pipeline
	if err := w.write(ctx, &pl); err != nil {
		return err
	}
	return pl.send(ctx, tx)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// recordDeliveries writes the receipts of copies partners accepted, in one
// statement however many (a group commit carries several).
func recordDeliveries(ctx context.Context, tx execer, ds []store.Delivered) error {
	if len(ds) == 0 {
		return nil
	}
	cols := make([][]string, 6)
	codes := make([]int32, len(ds))
	for i, d := range ds {
		for j, v := range []string{d.ReferralID, d.IdempotencyKey, d.Recipient, d.Kind, d.PartnerReference, store.Timestamp(d.At)} {
			cols[j] = append(cols[j], v)
		}
		codes[i] = int32(d.StatusCode)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO receipts
		(referral_id, idempotency_key, recipient, kind, partner_reference, at, status_code)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
		ON CONFLICT DO NOTHING`, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], codes); err != nil {
		return fmt.Errorf("store: record delivery: %w", err)
	}
	return nil
}

// applyRefUpdates writes what a batch learnt about references: a statement
// per referral, however many of its updates a group commit carries, and
// one for every new case reference.
func applyRefUpdates(ctx context.Context, tx execer, ups []store.RefUpdate) error {
	now := store.Timestamp(time.Time{})
	cols := make([][]string, 5)
	row := map[string]int{} // referral id → its index in cols
	cases := make([][]string, 4)
	var permissions [][2]string // referral id, permission; rare (an operator's release)
	for _, u := range ups {
		if u.Council != "" || u.OrderReference != "" || u.OrderSentTo != "" || u.TaskID != "" {
			i, ok := row[u.ReferralID]
			if !ok {
				i = len(cols[0])
				row[u.ReferralID] = i
				for j, v := range []string{u.ReferralID, "", "", "", ""} {
					cols[j] = append(cols[j], v)
				}
			}
			// An empty value leaves its column as it is; of two updates
			// of one referral, the later value stands, as if in turn.
			for j, v := range []string{u.Council, u.OrderReference, u.OrderSentTo, u.TaskID} {
				if v != "" {
					cols[j+1][i] = v
				}
			}
		}
		if u.Permission != nil {
			perm, err := store.EncodePermission(u.Permission)
			if err != nil {
				return err
			}
			permissions = append(permissions, [2]string{u.ReferralID, perm})
		}
		if c := u.Case; c != nil && c.Reference != "" {
			for j, v := range []string{c.Council, c.Reference, u.ReferralID, c.Purpose} {
				cases[j] = append(cases[j], v)
			}
		}
	}
	// One statement per referral, by its key: a join with the arrays
	// was planned as a scan of the whole table while its statistics were
	// those of an empty one, and stayed so in the cached plan.
	for i, id := range cols[0] {
		if _, err := tx.Exec(ctx, `UPDATE referrals SET
			council = COALESCE(NULLIF($1, ''), council), order_reference = COALESCE(NULLIF($2, ''), order_reference),
			order_sent_to = COALESCE(NULLIF($3, ''), order_sent_to), task_id = COALESCE(NULLIF($4, ''), task_id), updated_at = $5
			WHERE referral_id = $6`, cols[1][i], cols[2][i], cols[3][i], cols[4][i], now, id); err != nil {
			return fmt.Errorf("store: update references of referral: %w", err)
		}
	}
	for _, p := range permissions {
		if _, err := tx.Exec(ctx, `UPDATE referrals SET permission = $1, updated_at = $2 WHERE referral_id = $3`, p[1], now, p[0]); err != nil {
			return fmt.Errorf("store: record the permission of referral: %w", err)
		}
	}
	if len(cases[0]) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO case_refs (council, case_reference, referral_id, purpose, at)
			SELECT *, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
			ON CONFLICT (council, case_reference) DO NOTHING`, cases[0], cases[1], cases[2], cases[3], now); err != nil {
			return fmt.Errorf("store: record case reference: %w", err)
		}
	}
	return nil
}

// AcceptOnce implements intake.Store (see store.Intake).
func (p *Postgres) AcceptOnce(ctx context.Context, keys []string, resp intake.Response, topic string, msg *message.Message, rec *intake.Record) (intake.Response, bool, error) {
	return p.AcceptWithBatch(ctx, keys, resp, rec, store.Batch{Messages: []store.TopicMessage{{Topic: topic, Message: msg}}})
}

// AcceptWithBatch records keys with resp, rec in the cross-reference and
// writes b, in one transaction, when none of keys has been seen; otherwise
// it writes nothing and returns the response stored with the first key
// seen.
func (p *Postgres) AcceptWithBatch(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, b store.Batch) (intake.Response, bool, error) {
	w, err := p.prepareBatch(b)
	if err != nil {
		return intake.Response{}, false, err
	}
	var body []byte
	var counts []stats.Increment
	if rec != nil {
		if body, err = p.sealJSON(rec.Referral); err != nil {
			return intake.Response{}, false, fmt.Errorf("store: referral record: %w", err)
		}
		counts = stats.ForReferral(&rec.Referral, rec.Refs.Council, time.Now())
	}
	return p.acceptOnce(ctx, keys, resp, w, func(pl execer) error {
		if rec != nil {
			if err := insertReferral(ctx, pl, rec, body); err != nil {
				return err
			}
		}
		return addStatistics(ctx, pl, counts)
	}, nil)
}

// AcceptEventOnce implements intake.EventStore.
func (p *Postgres) AcceptEventOnce(ctx context.Context, c intake.EventCommit) (intake.Response, bool, error) {
	w, err := p.prepareBatch(store.Batch{Messages: []store.TopicMessage{{Topic: c.Topic, Message: c.Message}}})
	if err != nil {
		return intake.Response{}, false, err
	}
	var amended []byte
	if c.Amended != nil {
		if amended, err = p.sealJSON(c.Amended); err != nil {
			return intake.Response{}, false, fmt.Errorf("store: amended referral: %w", err)
		}
	}
	return p.acceptOnce(ctx, c.Keys, c.Response, w, func(pl execer) error {
		return addStatistics(ctx, pl, c.Stats)
	}, func(tx pgx.Tx) error {
		// The status moves by compare and set, whose outcome decides.
		return eventChanges(ctx, tx, c, amended)
	})
}

// errKeyTaken: one of the keys is recorded (before, or by a transaction
// at the same time); the accept reads the answer stored with it.
var errKeyTaken = errors.New("store: idempotency key recorded meanwhile")

// acceptOnce records keys with resp and writes queued, decide and w, in
// one transaction, when none of keys has been seen; otherwise it returns
// the response stored with the first key seen and writes nothing.
//
// Without decide (statements whose outcome decides whether to go on), the
// whole is one round trip: the keys are inserted first, and a key recorded
// before, or by a transaction committing meanwhile, fails that insert,
// which ends the transaction before anything else is written. With decide,
// the keys are recorded in a round trip of their own, then decide runs,
// then the rest goes in one round trip.
func (p *Postgres) acceptOnce(ctx context.Context, keys []string, resp intake.Response, w *preparedBatch,
	queued func(pl execer) error, decide func(tx pgx.Tx) error) (intake.Response, bool, error) {
	respJSON, err := json.Marshal(resp)
	if err != nil {
		return intake.Response{}, false, fmt.Errorf("store: encode response: %w", err)
	}
	distinct := uniq(keys)
	for attempt := 0; ; attempt++ {
		if decide == nil {
			err = p.inOneTrip(ctx, p.pool, func(pl *pipeline) error {
				_, _ = pl.Exec(ctx, `INSERT INTO idempotency (key, response) SELECT unnest($1::text[]), $2`, distinct, respJSON)
				if err := queued(pl); err != nil {
					return err
				}
				return w.write(ctx, pl)
			})
			if keyTaken(err) {
				err = errKeyTaken
			}
		} else {
			err = p.inTx(ctx, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `INSERT INTO idempotency (key, response) SELECT unnest($1::text[]), $2 ON CONFLICT (key) DO NOTHING`, distinct, respJSON)
				if err != nil {
					return fmt.Errorf("store: record idempotency key: %w", err)
				}
				if tag.RowsAffected() != int64(len(distinct)) {
					return errKeyTaken // seen before, or being recorded now
				}
				if err := decide(tx); err != nil {
					return err
				}
				var pl pipeline
				if err := queued(&pl); err != nil {
					return err
				}
				if err := w.write(ctx, &pl); err != nil {
					return err
				}
				return pl.send(ctx, tx)
			})
		}
		if errors.Is(err, errKeyTaken) {
			first, seen, serr := p.StoredResponse(ctx, keys)
			if serr != nil {
				return intake.Response{}, false, serr
			}
			if seen {
				return first, true, nil
			}
			if attempt < 3 {
				continue // recorded by a transaction that then rolled back
			}
		}
		if err != nil {
			return intake.Response{}, false, err
		}
		p.published(topicsOf(w.msgs))
		return resp, false, nil
	}
}

// keyTaken reports whether err is the insert of an idempotency key that
// was recorded already.
func keyTaken(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "idempotency_pkey"
}

func insertReferral(ctx context.Context, tx execer, rec *intake.Record, body []byte) error {
	status := rec.Status
	if status == "" {
		status = model.StatusOrdered
	}
	now := store.Timestamp(time.Time{})
	if _, err := tx.Exec(ctx, `INSERT INTO referrals
		(referral_id, service_request_id, requester_ods, council, status, record, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, rec.Referral.ID, rec.Referral.Source.ServiceRequestID,
		rec.Referral.Requester.OrganisationODS, rec.Refs.Council, string(status), body, now); err != nil {
		return fmt.Errorf("store: record referral: %w", err)
	}
	return nil
}

// eventChanges writes what an accepted event changes in the referral's
// record: its status (compare and set), its amended content, a case.
func eventChanges(ctx context.Context, tx pgx.Tx, c intake.EventCommit, amended []byte) error {
	now := store.Timestamp(time.Time{})
	if c.Change.To != "" {
		from := c.Change.From
		if from == "" {
			from = model.StatusOrdered
		}
		tag, err := tx.Exec(ctx, `UPDATE referrals SET status = $1, updated_at = $2 WHERE referral_id = $3 AND status = $4`,
			string(c.Change.To), now, c.Change.ReferralID, string(from))
		if err != nil {
			return fmt.Errorf("store: change status: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return intake.ErrConflict
		}
	}
	if amended != nil {
		// An amendment that brings a permission of its own replaces the one
		// an operator recorded.
		if _, err := tx.Exec(ctx, `UPDATE referrals SET record = $1, requester_ods = $2, updated_at = $3,
			permission = CASE WHEN $5 THEN '' ELSE permission END WHERE referral_id = $4`,
			amended, c.Amended.Requester.OrganisationODS, now, c.Change.ReferralID, c.Amended.Permission != nil); err != nil {
			return fmt.Errorf("store: record amended referral: %w", err)
		}
	}
	if c.Case != nil {
		return applyRefUpdates(ctx, tx, []store.RefUpdate{{ReferralID: c.Change.ReferralID, Case: &store.CaseRef{
			Council: c.Case.Council, Reference: c.Case.Reference, Purpose: c.Case.Purpose}}})
	}
	return nil
}

// addStatistics adds incs to the statistics in the caller's transaction,
// as rows of statistics_pending, which no other transaction waits on; the
// hubs fold them into statistics (FoldStatistics).
func addStatistics(ctx context.Context, tx execer, incs []stats.Increment) error {
	if len(incs) == 0 {
		return nil
	}
	// One INSERT of arrays: a round trip, where COPY takes three.
	cols := make([][]string, 6)
	days := make([]int32, len(incs))
	for i, in := range incs {
		for j, v := range []string{in.Month, in.Council, in.Priority, in.Setting, in.Class, string(in.Measure)} {
			cols[j] = append(cols[j], v)
		}
		days[i] = int32(in.Days)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO statistics_pending (month, council, priority, setting, class, measure, days, n)
		SELECT *, 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])`,
		cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], days); err != nil {
		return fmt.Errorf("store: count in the statistics: %w", err)
	}
	return nil
}

// FoldStatistics adds the pending counts to the statistics table, in one
// transaction. Hubs folding at once each take rows of their own.
func (p *Postgres) FoldStatistics(ctx context.Context) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `WITH moved AS (
				DELETE FROM statistics_pending WHERE ctid IN (SELECT ctid FROM statistics_pending LIMIT 10000 FOR UPDATE SKIP LOCKED)
				RETURNING month, council, priority, setting, class, measure, days, n)
			INSERT INTO statistics (month, council, priority, setting, class, measure, days, n)
			SELECT month, council, priority, setting, class, measure, days, sum(n) FROM moved
			GROUP BY month, council, priority, setting, class, measure, days
			ORDER BY month, council, priority, setting, class, measure, days
			ON CONFLICT (month, council, priority, setting, class, measure, days) DO UPDATE SET n = statistics.n + excluded.n`)
		if err != nil {
			return fmt.Errorf("store: fold the statistics: %w", err)
		}
		return nil
	})
}

// StoredResponse implements intake.EventStore.
func (p *Postgres) StoredResponse(ctx context.Context, keys []string) (intake.Response, bool, error) {
	if p.closed.Load() {
		return intake.Response{}, false, store.ErrClosed
	}
	var stored []byte
	err := p.pool.QueryRow(ctx, `SELECT response FROM idempotency WHERE key = ANY($1) ORDER BY array_position($1, key) LIMIT 1`, keys).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return intake.Response{}, false, nil
	}
	if err != nil {
		return intake.Response{}, false, fmt.Errorf("store: look up idempotency key: %w", err)
	}
	var first intake.Response
	if err := json.Unmarshal(stored, &first); err != nil {
		return intake.Response{}, false, fmt.Errorf("store: decode stored response: %w", err)
	}
	return first, true, nil
}

// RecordRejection implements intake.EventStore.
func (p *Postgres) RecordRejection(ctx context.Context, r intake.Rejection) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rejected_events (at, sender, kind, sender_event, referral_id, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
			store.Timestamp(r.At), r.From, r.Kind, r.FromEventID, r.ReferralID, r.Reason); err != nil {
			return fmt.Errorf("store: record rejected event: %w", err)
		}
		return nil
	})
}

// Rejections returns the refused events, oldest first.
func (p *Postgres) Rejections(ctx context.Context) ([]intake.Rejection, error) {
	return query(ctx, p, `SELECT at, sender, kind, sender_event, referral_id, reason FROM rejected_events ORDER BY id`, nil,
		func(row pgx.CollectableRow) (intake.Rejection, error) {
			var r intake.Rejection
			var at string
			err := row.Scan(&at, &r.From, &r.Kind, &r.FromEventID, &r.ReferralID, &r.Reason)
			r.At = store.ParseTimestamp(at)
			return r, err
		})
}

// query runs a read and collects its rows with scan.
func query[T any](ctx context.Context, p *Postgres, sql string, args []any, scan pgx.RowToFunc[T]) ([]T, error) {
	if p.closed.Load() {
		return nil, store.ErrClosed
	}
	rows, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("store: query: %w", err)
	}
	return out, nil
}
