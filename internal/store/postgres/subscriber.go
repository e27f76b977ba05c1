package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// subscriber reads the store's topics as queues shared by every hub on the
// database (message.Subscriber).
//
// A hub takes messages by claiming them: it leases them for
// Options.Lease (FOR UPDATE SKIP LOCKED, so two hubs never claim the same
// message), renews the lease while it works on them, and acknowledges
// each when its handler has. Only the first unacknowledged message of a
// lane (the referral it is about) can be claimed, so copies about one
// referral are handled one after another, in the order they were written,
// whichever hubs handle them. A hub that dies holds its messages until
// their leases pass; then any hub takes them. Acknowledgement is at least
// once: a message handled but not acknowledged when its hub died is
// offered again, and every handler recognises a repeat (idempotency keys,
// delivery receipts).
//
// A commit that publishes notifies the topic (LISTEN/NOTIFY), so every
// hub's queue looks at once; each queue also looks every poll interval, in
// case a notification was lost with a connection.
type subscriber struct {
	p       *Postgres
	running store.Subscriptions
}

// NewSubscriber returns a subscriber to the store's topics.
func (p *Postgres) NewSubscriber() (message.Subscriber, error) {
	return &subscriber{p: p}, nil
}

// Subscribe starts taking topic's messages.
func (sub *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := sub.p.EnsureTopics(topic); err != nil {
		return nil, err
	}
	p := sub.p
	q := &queue{
		p: p, topic: topic, inFlight: max(p.opts.InFlight, 1),
		log: p.opts.Logger.With(watermill.LogFields{"topic": topic}), out: make(chan *message.Message),
		results: make(chan result), held: map[int64]bool{}, wake: p.wakers.On(topic), abandon: make(chan struct{}), stale: true,
	}
	if err := sub.running.Start(ctx, func(ctx context.Context) {
		defer p.wakers.Stop(topic, q.wake)
		q.run(ctx)
	}); err != nil {
		p.wakers.Stop(topic, q.wake)
		return nil, err
	}
	return q.out, nil
}

// Close ends every subscription and waits for them to stop.
func (sub *subscriber) Close() error { return sub.running.Close() }

// queue is one subscription on one hub.
type queue struct {
	p        *Postgres
	topic    string
	inFlight int
	log      watermill.LoggerAdapter
	out      chan *message.Message
	wake     chan struct{}
	results  chan result
	// abandon is closed when the queue stops waiting for its handlers.
	abandon chan struct{}

	pending []item // claimed, not yet handed out, in order
	again   []item // nacked, offered again after a pause
	handed  int    // handed out (or in again) and not yet answered
	// held: leased by this hub and not yet acknowledged, each with
	// whether a later message of its lane may wait behind it.
	held  map[int64]bool
	toAck []int64 // answered ack, not yet written
	// stale: the topic may hold messages this hub could claim.
	stale bool
	// ackFailed: the last write of acknowledgements failed; the next poll
	// tries again rather than the next turn of the loop.
	ackFailed bool
	// ackWaited: the first of toAck has waited ackGather for others.
	ackWaited bool
	// followed: a message of toAck may have a later message of its lane
	// waiting, which its acknowledgement makes claimable.
	followed bool
	// failing is when the queue's reads or writes began to fail, zero
	// while they work; loggedAt when that was last logged.
	failing, loggedAt time.Time
}

// failureLogEvery is how often a queue whose database stays unreachable
// says so again: once at first, then this often, then once when it is
// back, rather than at every poll of every topic.
const failureLogEvery = 30 * time.Second

// failed logs err, at most every failureLogEvery while failures go on.
func (q *queue) failed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	if q.failing.IsZero() {
		q.failing = now
	}
	if now.Sub(q.loggedAt) >= failureLogEvery {
		q.loggedAt = now
		q.log.Error(what+"; trying again", err, watermill.LogFields{"failing_for": now.Sub(q.failing).Round(time.Second).String()})
	}
}

// worked logs, once, that the queue works again after failures.
func (q *queue) worked() {
	if q.failing.IsZero() {
		return
	}
	q.log.Info("the queue reads and writes its messages again", watermill.LogFields{"failed_for": time.Since(q.failing).Round(time.Second).String()})
	q.failing, q.loggedAt = time.Time{}, time.Time{}
}

// ackGather is how long an acknowledgement may wait for others to be
// written with it.
const ackGather = 3 * time.Millisecond

type item struct {
	msg    *message.Message
	id     int64
	cancel context.CancelFunc // of the message's context, once handed out
}

type result struct {
	item
	acked bool
}

func (q *queue) run(ctx context.Context) {
	defer close(q.out)
	defer q.stop()
	poll := time.NewTicker(q.p.opts.PollInterval)
	defer poll.Stop()
	renew := time.NewTicker(q.p.opts.Lease / 3)
	defer renew.Stop()
	var retry, ackDue <-chan time.Time
	for {
		// Acknowledgements are written together, when enough of them wait
		// or ackGather after the first; claims are made when the messages
		// in flight have fallen to half: one statement for many messages
		// either way. An acknowledgement that makes a lane's next message
		// claimable goes with the claim when the queue wants more work
		// (q.claim); otherwise alone, and no claim is made for it: a claim
		// after every acknowledgement, finding nothing most of the time,
		// was most of the database's work at a few referrals a second.
		ackNow := (len(q.toAck) >= max(1, q.inFlight/2) || q.ackWaited) && !q.ackFailed && len(q.toAck) > 0
		if (q.stale || (ackNow && q.followed)) && len(q.pending) == 0 && q.handed <= q.inFlight/2 {
			q.claim(ctx)
		} else if ackNow {
			q.flushAcks(ctx)
		}
		q.ackWaited = false
		if len(q.toAck) == 0 {
			ackDue = nil
		} else if ackDue == nil {
			ackDue = time.After(ackGather)
		}
		var out chan *message.Message
		var next item
		fromAgain := false
		switch {
		case len(q.again) > 0 && retry == nil:
			next, out, fromAgain = q.again[0], q.out, true
		case len(q.pending) > 0 && q.handed < q.inFlight:
			next, out = q.pending[0], q.out
		}
		if out != nil && next.cancel == nil {
			// The message's context ends when its handler answers, as
			// Watermill's subscribers do.
			mctx, cancel := context.WithCancel(ctx)
			next.msg.SetContext(mctx)
			next.cancel = cancel
			if fromAgain {
				q.again[0] = next
			} else {
				q.pending[0] = next
			}
		}
		select {
		case <-ctx.Done():
			return
		case out <- next.msg:
			if fromAgain {
				q.again = q.again[1:]
			} else {
				q.pending = q.pending[1:]
				q.handed++
			}
			go q.await(next)
		case r := <-q.results:
			if !r.acked {
				m := message.NewMessage(r.msg.UUID, r.msg.Payload)
				m.Metadata = r.msg.Metadata
				r.msg, r.cancel = m, nil
				q.again = append(q.again, r.item)
				retry = time.After(q.p.opts.PollInterval)
				continue
			}
			q.handed--
			q.toAck = append(q.toAck, r.id)
			q.followed = q.followed || q.held[r.id]
		case <-retry:
			retry = nil
		case <-ackDue:
			ackDue, q.ackWaited = nil, true
		case <-q.wake:
			q.stale = true
			q.mayBeFollowed()
		case <-poll.C:
			q.stale, q.ackFailed = true, false
			q.mayBeFollowed()
		case <-renew.C:
			q.renew(ctx)
		}
	}
}

// claim leases the first messages of the topic that are the head of their
// lane and not leased by a live hub.
func (q *queue) claim(ctx context.Context) {
	want := 2*q.inFlight - q.handed
	var acked []int64
	if !q.ackFailed {
		acked = q.toAck
	}
	rows, err := q.p.claim(ctx, q.topic, want, acked)
	if err != nil {
		q.failed(ctx, "reading the queue failed", err)
		q.stale = false // the poll tries again, not the next turn of the loop
		q.ackFailed = q.ackFailed || len(acked) > 0
		return
	}
	q.acknowledged(len(acked))
	if len(acked) > 0 && len(q.toAck) == 0 {
		q.followed = false // this claim looked behind each of them
	}
	q.worked()
	q.stale = len(rows) == want
	for _, r := range rows {
		plain, err := q.p.sealer.Open(r.payload)
		if err != nil {
			// The data key that sealed it is missing. Its lease is not
			// renewed: when it passes, any hub may take it, one with the
			// key among them; this one tries again then (and says so
			// again, once a lease).
			q.log.Error("stored message cannot be opened: it waits for a hub with the data key that sealed it", err,
				watermill.LogFields{"message_uuid": r.uuid})
			continue
		}
		m := message.NewMessage(r.uuid, plain)
		m.Metadata = r.metadata
		if m.Metadata == nil {
			m.Metadata = message.Metadata{}
		}
		q.held[r.id] = r.followed
		q.pending = append(q.pending, item{msg: m, id: r.id})
	}
}

// await reports the handler's answer to it.
func (q *queue) await(it item) {
	defer it.cancel()
	r := result{item: it}
	select {
	case <-it.msg.Acked():
		r.acked = true
	case <-it.msg.Nacked():
	case <-q.abandon:
		return
	}
	it.cancel()
	select {
	case q.results <- r:
	case <-q.abandon:
	}
}

// flushAcks writes the acknowledgements waiting, and has the queue look
// for more work when a lane's next message may now be claimable.
func (q *queue) flushAcks(ctx context.Context) {
	if err := q.p.ack(ctx, q.toAck); err != nil {
		q.failed(ctx, "recording handled messages failed", err)
		q.ackFailed = true
		return
	}
	q.acknowledged(len(q.toAck))
	q.stale = q.stale || q.followed
	q.followed = false
}

// mayBeFollowed notes that a message was published to the topic (or may
// have been: a poll): it may belong to the lane of a message this queue
// holds, and wait behind it.
func (q *queue) mayBeFollowed() {
	for id := range q.held {
		q.held[id] = true
	}
}

// acknowledged forgets the first n of toAck, written.
func (q *queue) acknowledged(n int) {
	for _, id := range q.toAck[:n] {
		delete(q.held, id)
	}
	q.toAck = append(q.toAck[:0], q.toAck[n:]...)
}

// renew extends the lease of every message this queue holds.
func (q *queue) renew(ctx context.Context) {
	if len(q.held) == 0 {
		return
	}
	ids := make([]int64, 0, len(q.held))
	for id := range q.held {
		ids = append(ids, id)
	}
	if _, err := q.p.queues.Exec(ctx, `UPDATE messages SET lease_until = now() + $1 * interval '1 millisecond'
		WHERE id = ANY($2) AND leased_by = $3`, q.p.opts.Lease.Milliseconds(), ids, q.p.replica); err != nil && ctx.Err() == nil {
		q.log.Error("renewing the queue's leases failed; another hub may take its messages when they pass", err, nil)
	}
}

// stop waits a little for the handlers still at work (the router is
// closing them), writes what they acknowledged, and gives every other
// message back, so that other hubs take them at once.
func (q *queue) stop() {
	wait := time.NewTimer(min(q.p.opts.Lease/2, 5*time.Second))
	defer wait.Stop()
	for q.handed-len(q.again) > 0 {
		select {
		case r := <-q.results:
			q.handed--
			if r.acked {
				q.toAck = append(q.toAck, r.id)
			}
		case <-wait.C:
			q.handed = 0
		}
	}
	close(q.abandon)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if len(q.toAck) > 0 {
		if err := q.p.ack(ctx, q.toAck); err == nil {
			for _, id := range q.toAck {
				delete(q.held, id)
			}
		}
	}
	ids := make([]int64, 0, len(q.held))
	for id := range q.held {
		ids = append(ids, id)
	}
	q.release(ctx, ids)
}

// release gives ids back, unleased.
func (q *queue) release(ctx context.Context, ids []int64) {
	if len(ids) == 0 || q.p.closed.Load() {
		return
	}
	if _, err := q.p.queues.Exec(ctx, `UPDATE messages SET leased_by = NULL, lease_until = NULL
		WHERE id = ANY($1) AND leased_by = $2`, ids, q.p.replica); err != nil && !errors.Is(err, context.Canceled) {
		q.log.Error("giving messages back failed; they go to another hub when their leases pass", err, nil)
	}
	for _, id := range ids {
		delete(q.held, id)
	}
}

// claimed is one message as claimed, still sealed.
type claimed struct {
	id       int64
	uuid     string
	payload  []byte
	metadata message.Metadata
	// followed: a later message of its lane was waiting when it was claimed.
	followed bool
}

// claim deletes the acknowledged messages acked, then leases up to limit
// messages of topic for this hub: each the first unacknowledged message of
// its lane, not leased by a live hub, in order. Both in one round trip and
// one transaction: acknowledging is what makes the next message of a lane
// claimable, so the one is mostly followed by the other.
func (p *Postgres) claim(ctx context.Context, topic string, limit int, acked []int64) ([]claimed, error) {
	if p.closed.Load() {
		return nil, store.ErrClosed
	}
	// One statement, so no transaction of its own: it is atomic alone.
	// The head of the lane is found per candidate (a subplan on
	// messages_lane), walking the topic in id order, so that a claim
	// reads a few rows however long the queue; as NOT EXISTS the planner
	// chose an anti-join over the whole topic.
	var b pgx.Batch
	if len(acked) > 0 {
		b.Queue(`DELETE FROM messages WHERE id = ANY($1)`, acked)
	}
	b.Queue(`WITH c AS (
				SELECT m.id FROM messages m
				WHERE m.topic = $1
				  AND (m.lease_until IS NULL OR m.lease_until < now())
				  AND m.id = (SELECT e.id FROM messages e WHERE e.topic = m.topic AND e.lane = m.lane ORDER BY e.id LIMIT 1)
				ORDER BY m.id
				LIMIT $2
				FOR UPDATE OF m SKIP LOCKED)
			UPDATE messages u SET leased_by = $3, lease_until = now() + $4 * interval '1 millisecond'
			FROM c WHERE u.id = c.id
			RETURNING u.id, u.uuid, u.payload, u.metadata,
				EXISTS(SELECT 1 FROM messages e WHERE e.topic = u.topic AND e.lane = u.lane AND e.id > u.id)`,
		topic, limit, p.replica, p.opts.Lease.Milliseconds())
	br := p.queues.SendBatch(ctx, &b)
	defer br.Close()
	var err error
	if len(acked) > 0 {
		if _, err = br.Exec(); err != nil {
			return nil, fmt.Errorf("store: acknowledge messages: %w", err)
		}
	}
	rows, err := br.Query()
	var out []claimed
	if err == nil {
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
			var c claimed
			var meta []byte
			if err := r.Scan(&c.id, &c.uuid, &c.payload, &meta, &c.followed); err != nil {
				return c, err
			}
			if err := json.Unmarshal(meta, &c.metadata); err != nil {
				return c, fmt.Errorf("metadata of message %d on %s: %w", c.id, topic, err)
			}
			return c, nil
		})
	}
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("store: claim messages of %s: %w", topic, err)
	}
	slices.SortFunc(out, func(a, b claimed) int { return int(a.id - b.id) })
	return out, nil
}

// ack records that ids were handled: they are deleted (data minimisation
// too: a copy handled is not kept).
func (p *Postgres) ack(ctx context.Context, ids []int64) error {
	if p.closed.Load() {
		return store.ErrClosed
	}
	if _, err := p.queues.Exec(ctx, `DELETE FROM messages WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("store: acknowledge messages: %w", err)
	}
	return nil
}
