package postgres

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/iceshub/iceshub/internal/store"
)

// Commit's group commit. The outcomes of deliveries that arrive together
// (every partner's queue hands out several copies at once) are written as
// one batch: one round trip and a few statements of arrays for the group,
// where each outcome alone spent three round trips and five or six
// statements: the cost is per round trip and per statement, hardly per
// row. A group that fails is written again one outcome at a time, so
// that one outcome's failure is its own and no other's.

// commitRequest is one caller's batch, waiting for its group.
type commitRequest struct {
	ctx  context.Context
	w    *preparedBatch
	done chan error // buffered: the committer never waits for the caller
}

// maxCommitGroup bounds how many batches share one transaction, and how
// many questions one read.
const maxCommitGroup = 64

// commitGroups runs until ctx ends, writing each time what has arrived
// meanwhile.
func (p *Postgres) commitGroups(ctx context.Context) {
	defer close(p.committing)
	inGroups(ctx, p.commits, p.commitGroup)
}

// inGroups hands handle what arrives on ch, as it comes, until ctx ends:
// each time the first request with whatever else waits already, up to
// maxCommitGroup; no waiting for more, so a lone request goes at once.
func inGroups[R any](ctx context.Context, ch <-chan R, handle func(context.Context, []R)) {
	for {
		var first R
		select {
		case <-ctx.Done():
			return
		case first = <-ch:
		}
		group := []R{first}
	gather:
		for len(group) < maxCommitGroup {
			select {
			case r := <-ch:
				group = append(group, r)
			default:
				break gather
			}
		}
		handle(ctx, group)
	}
}

// commitGroup writes group's batches in one transaction, or one by one
// when that fails, and answers each caller.
func (p *Postgres) commitGroup(ctx context.Context, group []*commitRequest) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // gave up before its turn: nothing written
			continue
		}
		live = append(live, r)
	}
	ctx, cancel := whileAnyWaits(ctx, live, func(r *commitRequest) context.Context { return r.ctx })
	defer cancel()
	if len(live) > 1 {
		ws := make([]*preparedBatch, len(live))
		for i, r := range live {
			ws[i] = r.w
		}
		merged := mergeBatches(ws)
		if err := p.writeOutcome(ctx, merged); err == nil {
			p.callers.Add(int64(len(live) - 1)) // writeOutcome counted one
			for _, r := range live {
				r.done <- nil
			}
			return
		}
	}
	for _, r := range live {
		r.done <- p.writeOutcome(r.ctx, r.w)
	}
}

// whileAnyWaits is ctx, ended too once every request's own context has:
// a shared write or read goes on while anyone waits for it, and no longer.
func whileAnyWaits[R any](ctx context.Context, live []R, ctxOf func(R) context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	left := new(atomic.Int32)
	left.Store(int32(len(live)))
	stops := make([]func() bool, 0, len(live))
	for _, r := range live {
		stops = append(stops, context.AfterFunc(ctxOf(r), func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// writeOutcome writes w in one round trip on the queues' pool, whose
// commits do not wait for the disk: see Commit.
func (p *Postgres) writeOutcome(ctx context.Context, w *preparedBatch) error {
	return p.inOneTrip(ctx, p.queues, func(pl *pipeline) error { return w.write(ctx, pl) })
}

// mergeBatches is ws as one batch, in their order. Every field of
// store.Batch is carried (TestMergeBatchesCarriesEveryField).
func mergeBatches(ws []*preparedBatch) *preparedBatch {
	m := &preparedBatch{}
	for _, w := range ws {
		b := w.b
		m.b.Messages = append(m.b.Messages, b.Messages...)
		m.b.Disclosures = append(m.b.Disclosures, b.Disclosures...)
		m.b.Holds = append(m.b.Holds, b.Holds...)
		m.b.DeadLetters = append(m.b.DeadLetters, b.DeadLetters...)
		m.b.Delivered = append(m.b.Delivered, b.Delivered...)
		m.b.Refs = append(m.b.Refs, b.Refs...)
		m.b.Park = append(m.b.Park, b.Park...)
		m.b.Reschedule = append(m.b.Reschedule, b.Reschedule...)
		m.b.Unpark = append(m.b.Unpark, b.Unpark...)
		m.b.Stats = append(m.b.Stats, b.Stats...)
		m.msgs = append(m.msgs, w.msgs...)
		m.holds = append(m.holds, w.holds...)
		m.deadPayloads = append(m.deadPayloads, w.deadPayloads...)
		m.deadAnswers = append(m.deadAnswers, w.deadAnswers...)
		m.parked = append(m.parked, w.parked...)
	}
	return m
}

// The deliveries' reads are shared the same way: each delivery asks, before
// it sends, whether its copy went already, whether its lane is parked and
// what the referral's references are (DeliveryState); the questions that
// arrive together are answered by one statement.

// stateQuestion is one DeliveryState's arguments.
type stateQuestion struct{ referralID, key, partner, lane, casePurpose string }

type stateAnswer struct {
	st  store.DeliveryState
	err error
}

type stateRequest struct {
	ctx  context.Context
	q    stateQuestion
	done chan stateAnswer // buffered
}

// stateReaders is how many shared reads may run at once.
const stateReaders = 2

// readStates answers the questions waiting, a group at a time, until ctx
// ends; the last of the stateReaders to stop closes reading.
func (p *Postgres) readStates(ctx context.Context, left *atomic.Int32) {
	defer func() {
		if left.Add(-1) == 0 {
			close(p.reading)
		}
	}()
	inGroups(ctx, p.stateReads, p.readGroup)
}

// readGroup answers group in one statement. Each referral is looked up by
// its key (LIMIT 1 keeps the planner from turning the lookups into a join
// that scans the table).
func (p *Postgres) readGroup(ctx context.Context, group []*stateRequest) {
	live := group[:0:0]
	cols := make([][]string, 5)
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- stateAnswer{err: err}
			continue
		}
		live = append(live, r)
		for j, v := range []string{r.q.referralID, r.q.key, r.q.partner, r.q.lane, r.q.casePurpose} {
			cols[j] = append(cols[j], v)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := whileAnyWaits(ctx, live, func(r *stateRequest) context.Context { return r.ctx })
	defer cancel()
	answers := make([]stateAnswer, len(live))
	rows, err := p.pool.Query(ctx, `SELECT q.n,
			EXISTS(SELECT 1 FROM receipts WHERE referral_id = q.referral_id AND idempotency_key = q.key),
			EXISTS(SELECT 1 FROM parked WHERE partner = q.partner AND lane = q.lane),
			COALESCE(r.service_request_id, ''), COALESCE(r.requester_ods, ''), COALESCE(r.council, ''),
			COALESCE(r.order_reference, ''), COALESCE(r.task_id, ''),
			CASE WHEN q.purpose = '' THEN '' ELSE
				COALESCE((SELECT c.case_reference FROM case_refs c WHERE c.referral_id = q.referral_id AND c.council = q.partner
					AND c.purpose = q.purpose ORDER BY c.at LIMIT 1), '') END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS q(referral_id, key, partner, lane, purpose, n)
		LEFT JOIN LATERAL (SELECT * FROM referrals WHERE referral_id = q.referral_id LIMIT 1) r ON true`,
		cols[0], cols[1], cols[2], cols[3], cols[4])
	if err == nil {
		seen := 0
		for rows.Next() {
			var n int64
			var st store.DeliveryState
			r := &st.Refs
			if err = rows.Scan(&n, &st.Delivered, &st.LaneBusy, &r.ServiceRequestID, &r.RequesterODS, &r.Council,
				&r.OrderReference, &r.TaskID, &r.CaseReference); err != nil {
				break
			}
			if n < 1 || int(n) > len(live) {
				err = fmt.Errorf("answer %d of %d questions", n, len(live))
				break
			}
			answers[n-1].st = st
			seen++
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err == nil && seen != len(live) {
			err = fmt.Errorf("%d answers to %d questions", seen, len(live))
		}
	}
	for i, r := range live {
		if err != nil {
			answers[i] = stateAnswer{err: fmt.Errorf("store: read delivery state: %w", err)}
		}
		r.done <- answers[i]
	}
}
