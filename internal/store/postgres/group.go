package postgres

import (
	"context"
)

// Commit's group commit. The outcomes of deliveries that arrive together
// (every partner's queue hands out several copies at once) are written as
// one batch: one round trip and a few statements of arrays for the group,
// where each outcome alone spent a round trip and five or six statements.
// PostgreSQL's cost here is per statement, not per row. A group that fails
// is written again one outcome at a time, so that one outcome's failure
// is its own and no other's.

// commitRequest is one caller's batch, waiting for its group.
type commitRequest struct {
	ctx  context.Context
	w    *preparedBatch
	done chan error // buffered: the committer never waits for the caller
}

// maxCommitGroup bounds how many batches share one transaction.
const maxCommitGroup = 64

// commitGroups runs until ctx ends, writing each time what has arrived
// meanwhile: no waiting for more, so a lone outcome is written at once.
func (p *Postgres) commitGroups(ctx context.Context) {
	defer close(p.committing)
	for {
		var first *commitRequest
		select {
		case <-ctx.Done():
			return
		case first = <-p.commits:
		}
		group := []*commitRequest{first}
	gather:
		for len(group) < maxCommitGroup {
			select {
			case r := <-p.commits:
				group = append(group, r)
			default:
				break gather
			}
		}
		p.commitGroup(ctx, group)
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
