package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
)

// consumerGroup is the row of a topic's offsets table the hub's queues use:
// the name Watermill's SQLite subscriber gives it, so that a database
// written by an earlier hub goes on from where it was.
const consumerGroup = "default"

// batchSize bounds how many messages a queue reads from disk at a time.
const batchSize = 100

// subscriber reads this store's topics as ordered queues (message.Subscriber).
//
// It is the hub's own, rather than Watermill's SQLite subscriber, for three
// reasons the bench showed (README, Performance): Watermill's takes the
// database's write lock on every poll of every topic, busy or idle, with an
// fsync each time, which contends with intake's commits; it sleeps a poll
// interval between batches even when a commit has just published; and it
// hands out one message at a time. This one reads on the reader
// connections (no write to look for work), is woken by the commit that
// publishes to its topic, and lets up to Options.InFlight messages of a
// topic be handled at once, never two about the same referral
// (intake.MetaReferralID): copies about one referral keep their order.
//
// Acknowledgement is at least once: the offset of the last message handled
// (every message before it handled too) is written in a group commit at
// most every saveEvery, without making the handler wait for it. After a crash the
// messages handled since the last written offset are offered again; every
// handler recognises a repeat (idempotency keys, delivery receipts).
type subscriber struct {
	s        *SQLite
	inFlight int
	poll     time.Duration
	log      watermill.LoggerAdapter
	running  store.Subscriptions
}

// NewSubscriber returns a subscriber to this store's topics. A message is
// offered until it is acknowledged; a nacked message is offered again after
// the poll interval. Close ends every subscription; messages in flight then
// are offered again by the next subscriber.
func (s *SQLite) NewSubscriber() (message.Subscriber, error) {
	return &subscriber{s: s, inFlight: s.opts.InFlight, poll: s.opts.PollInterval, log: s.opts.Logger}, nil
}

// Subscribe starts reading topic from the first message not yet
// acknowledged.
func (sub *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := sub.s.EnsureTopics(topic); err != nil {
		return nil, err
	}
	offset, err := sub.s.startOffset(ctx, topic)
	if err != nil {
		return nil, err
	}
	q := &queue{
		s: sub.s, topic: topic, read: offset, acked: offset, inFlight: max(sub.inFlight, 1), poll: sub.poll,
		log: sub.log.With(watermill.LogFields{"topic": topic}), out: make(chan *message.Message),
		results: make(chan result), busy: map[string]bool{}, done: map[int64]bool{},
		wake: sub.s.wakers.On(topic), saved: offset, stale: true,
	}
	if err := sub.running.Start(ctx, func(ctx context.Context) {
		defer sub.s.wakers.Stop(topic, q.wake)
		q.run(ctx)
	}); err != nil {
		sub.s.wakers.Stop(topic, q.wake)
		return nil, err
	}
	return q.out, nil
}

// Close ends every subscription and waits for them to stop.
func (sub *subscriber) Close() error { return sub.running.Close() }

// startOffset returns the topic's acknowledged offset, creating its row.
func (s *SQLite) startOffset(ctx context.Context, topic string) (int64, error) {
	var offset int64
	err := s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `INSERT INTO 'watermill_offsets_`+topic+`' (consumer_group, offset_acked, locked_until)
			VALUES (?, 0, 0) ON CONFLICT(consumer_group) DO NOTHING`, &sqlitex.ExecOptions{Args: []any{consumerGroup}}); err != nil {
			return err
		}
		return sqlitex.Execute(conn, `SELECT offset_acked FROM 'watermill_offsets_`+topic+`' WHERE consumer_group = ?`,
			&sqlitex.ExecOptions{Args: []any{consumerGroup}, ResultFunc: func(st *sqlite.Stmt) error {
				offset = st.ColumnInt64(0)
				return nil
			}})
	})
	if err != nil {
		return 0, fmt.Errorf("store: start reading %s: %w", topic, err)
	}
	return offset, nil
}

// saveOffset records that every message of topic up to offset is handled.
// It never moves the offset back.
func (s *SQLite) saveOffset(ctx context.Context, topic string, offset int64) error {
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		return sqlitex.Execute(conn, `UPDATE 'watermill_offsets_`+topic+`' SET offset_acked = ?
			WHERE consumer_group = ? AND offset_acked < ?`, &sqlitex.ExecOptions{Args: []any{offset, consumerGroup, offset}})
	})
}

// stored is one message as read from a topic's table, still sealed.
type stored struct {
	offset   int64
	uuid     string
	payload  []byte
	metadata message.Metadata
}

// readAfter returns up to limit messages of topic after offset, in order.
func (s *SQLite) readAfter(ctx context.Context, topic string, offset int64, limit int) ([]stored, error) {
	var out []stored
	var decodeErr error
	err := s.read(ctx, `SELECT "offset", uuid, payload, metadata FROM 'watermill_`+topic+`' WHERE "offset" > ? ORDER BY "offset"`,
		[]any{offset}, func(st *sqlite.Stmt) error {
			if len(out) == limit {
				return errEnoughRows
			}
			m := stored{offset: st.ColumnInt64(0), uuid: st.ColumnText(1)}
			m.payload = make([]byte, st.ColumnLen(2))
			st.ColumnBytes(2, m.payload)
			meta := make([]byte, st.ColumnLen(3))
			st.ColumnBytes(3, meta)
			if err := json.Unmarshal(meta, &m.metadata); err != nil {
				decodeErr = fmt.Errorf("store: metadata of message %d on %s: %w", m.offset, topic, err)
				return decodeErr
			}
			out = append(out, m)
			return nil
		})
	if decodeErr != nil {
		return out, decodeErr
	}
	if errors.Is(err, errEnoughRows) {
		err = nil
	}
	return out, err
}

// errEnoughRows stops a read that has as many rows as it wants. Reads that
// want a number of rows stop this way rather than with a bound LIMIT ?:
// SQLite looks at a bound LIMIT when it plans, so a statement with one is
// prepared again at every run (2% of the hub's CPU, from the queues'
// reads). They read in the order of an index, so stopping early reads no
// more than a LIMIT would.
var errEnoughRows = errors.New("store: enough rows")

// queue is one subscription: it reads a topic in order and hands messages
// out, at most inFlight at once and one at a time per referral.
type queue struct {
	s        *SQLite
	topic    string
	inFlight int
	poll     time.Duration
	log      watermill.LoggerAdapter
	out      chan *message.Message
	wake     chan struct{}
	results  chan result

	// read is the offset of the last message read from disk; acked the
	// offset up to which every message is handled; saved what the offsets
	// table holds, or is being written.
	read, acked, saved int64
	// pending are read and not yet handed out, in order; handed counts
	// those handed out and not yet acknowledged.
	pending []item
	offsets []int64 // of every message read and not yet acked, in order
	handed  int
	busy    map[string]bool // referral ids with a message in flight
	done    map[int64]bool  // acked offsets not yet contiguous
	saving  chan error      // the offset write in progress, or nil
	// lastSave is when the offset was last written; saveDue fires when the
	// next write may go (saveEvery after it), or is nil.
	lastSave time.Time
	saveDue  <-chan time.Time
	blocked  bool // a payload could not be opened: stop here
	// stale is true when the topic may hold messages not yet read: at
	// start, after a commit published to it, after a poll interval (a
	// message published by another process, such as `iceshub dlq
	// replay`), and while the last read filled the batch.
	stale bool
}

// item is one message of the queue with where it is in the topic.
type item struct {
	msg    *message.Message
	offset int64
	key    string             // the referral it is about
	cancel context.CancelFunc // of the message's context, once handed out
}

// result is a handler's answer to one message.
type result struct {
	item
	acked bool
}

func (q *queue) run(ctx context.Context) {
	defer close(q.out)
	defer q.finalSave()
	idle := time.NewTimer(q.poll)
	defer idle.Stop()
	var again []item // nacked, to be offered again after a pause
	var retry <-chan time.Time
	for {
		// Read again only once the pending messages run low, so that a
		// busy queue reads in batches rather than after every commit.
		if q.stale && len(q.pending) < q.lowWater() && !q.blocked {
			if err := q.fill(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				q.log.Error("reading the queue failed; trying again", err, nil)
			}
		}
		var out chan *message.Message
		var next item
		idx := -1
		if len(again) > 0 && retry == nil {
			next, idx, out = again[0], -2, q.out
		} else if n, i := q.next(); i >= 0 {
			next, idx, out = n, i, q.out
		}
		if out != nil && next.cancel == nil {
			// The message's context ends when its handler answers, as
			// Watermill's subscribers do.
			mctx, cancel := context.WithCancel(ctx)
			next.msg.SetContext(mctx)
			next.cancel = cancel
			if idx == -2 {
				again[0] = next
			} else {
				q.pending[idx] = next
			}
		}
		idle.Reset(q.poll)
		select {
		case <-ctx.Done():
			return
		case out <- next.msg:
			if idx == -2 {
				again = again[1:]
			} else {
				q.pending = append(q.pending[:idx:idx], q.pending[idx+1:]...)
				q.handed++
				q.busy[next.key] = true
			}
			go q.await(ctx, next)
		case r := <-q.results:
			if !r.acked {
				// Offered again after a pause, still counted in flight,
				// so that nothing about the same referral overtakes it.
				m := message.NewMessage(r.msg.UUID, r.msg.Payload)
				m.Metadata = r.msg.Metadata
				r.msg, r.cancel = m, nil
				again = append(again, r.item)
				retry = time.After(q.poll)
				continue
			}
			q.handed--
			delete(q.busy, r.key)
			q.ackOffset(ctx, r.offset)
		case <-retry:
			retry = nil
		case <-q.saveDue:
			q.saveDue = nil
			q.save(ctx)
		case err := <-q.saving:
			q.saving = nil
			if err != nil && ctx.Err() == nil {
				q.log.Error("recording the queue's position failed; messages since may be offered again after a restart", err, nil)
			}
			q.save(ctx)
		case <-q.wake:
			q.stale = true
		case <-idle.C:
			q.stale = true
		}
	}
}

// lowWater is how few pending messages make the queue read again.
func (q *queue) lowWater() int { return min(max(2*q.inFlight, 16), batchSize) }

// fill reads messages after the last one read: from the messages this
// process committed last (recentMessages) when they follow on, else from
// disk.
func (q *queue) fill(ctx context.Context) error {
	limit := batchSize - len(q.pending)
	if ms, more := q.s.recent.after(q.topic, q.read, limit); len(ms) > 0 {
		q.stale = more
		for _, m := range ms {
			// Metadata of its own: handlers may set theirs, and a kept
			// message can be read by more than one queue.
			q.take(ctx, m.offset, m.uuid, m.payload, maps.Clone(m.metadata))
		}
		return nil
	}
	rows, err := q.s.readAfter(ctx, q.topic, q.read, limit)
	// After a failed read the idle timer, not the next turn of the loop,
	// tries again: a store that keeps failing must not be read in a spin.
	q.stale = err == nil && len(rows) == limit
	for _, r := range rows {
		plain, oerr := q.s.sealer.Open(r.payload)
		if oerr != nil {
			// The data key that sealed it is missing (or the row was
			// changed). Skipping it would break the queue's order and
			// offering it again cannot help: the queue stops here until
			// the key is restored and the hub restarted. Nothing is lost.
			q.log.Error("stored message cannot be opened: this queue stops until the data key that sealed it is restored", oerr,
				watermill.LogFields{"message_uuid": r.uuid})
			q.blocked = true
			return nil
		}
		q.take(ctx, r.offset, r.uuid, plain, r.metadata)
	}
	return err
}

// take adds the message at offset to the pending ones.
func (q *queue) take(ctx context.Context, offset int64, uuid string, payload []byte, metadata message.Metadata) {
	m := message.NewMessage(uuid, payload)
	m.Metadata = metadata
	if m.Metadata == nil {
		m.Metadata = message.Metadata{}
	}
	m.SetContext(ctx)
	q.pending = append(q.pending, item{msg: m, offset: offset, key: m.Metadata.Get(intake.MetaReferralID)})
	q.offsets = append(q.offsets, offset)
	q.read = offset
}

// next returns the first pending message that may be handed out now, and
// its index, or -1: none while inFlight are out; not one whose referral
// has a message in flight or an earlier one pending.
func (q *queue) next() (item, int) {
	if q.handed >= q.inFlight {
		return item{}, -1
	}
	var waiting map[string]bool
	for i, it := range q.pending {
		if !q.busy[it.key] && !waiting[it.key] {
			return it, i
		}
		if waiting == nil {
			waiting = map[string]bool{}
		}
		waiting[it.key] = true
	}
	return item{}, -1
}

// await reports the handler's answer to it.
func (q *queue) await(ctx context.Context, it item) {
	defer it.cancel()
	r := result{item: it}
	select {
	case <-it.msg.Acked():
		r.acked = true
	case <-it.msg.Nacked():
	case <-ctx.Done():
		return
	}
	it.cancel()
	select {
	case q.results <- r:
	case <-ctx.Done():
	}
}

// ackOffset marks offset handled and moves the acknowledged offset over
// every handled message at the head of the queue.
func (q *queue) ackOffset(ctx context.Context, offset int64) {
	q.done[offset] = true
	for len(q.offsets) > 0 && q.done[q.offsets[0]] {
		delete(q.done, q.offsets[0])
		q.acked = q.offsets[0]
		q.offsets = q.offsets[1:]
	}
	q.save(ctx)
}

// saveEvery is the least time between two writes of a queue's offset: a
// busy queue acknowledges hundreds of messages a second, and each write is
// a statement in the one writer's transactions; after a crash, what was
// handled in the last saveEvery is offered again and recognised.
const saveEvery = 100 * time.Millisecond

// save writes the acknowledged offset when it moved, no write is in
// progress and saveEvery has passed since the last one (else it is written
// when it has); the write joins the next group commit, and the handlers
// never wait for it.
func (q *queue) save(ctx context.Context) {
	if q.saving != nil || q.acked == q.saved || q.saveDue != nil {
		return
	}
	if wait := saveEvery - time.Since(q.lastSave); wait > 0 {
		q.saveDue = time.After(wait)
		return
	}
	q.lastSave = time.Now()
	q.saved = q.acked
	done := make(chan error, 1)
	q.saving = done
	offset := q.acked
	go func() { done <- q.s.saveOffset(ctx, q.topic, offset) }()
}

// finalSave writes the acknowledged offset as the queue stops, so that
// the next start does not offer again what was handled.
func (q *queue) finalSave() {
	if q.saving != nil {
		if err := <-q.saving; err != nil {
			q.saved = -1 // cut short by the stop: write it again below
		}
	}
	if q.acked == q.saved {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.s.saveOffset(ctx, q.topic, q.acked); err != nil && !errors.Is(err, store.ErrClosed) {
		q.log.Error("recording the queue's position at stop failed; messages since may be offered again", err, nil)
	}
}
