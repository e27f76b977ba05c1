package routes

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/store"
)

// Park is how long a delivery that failed transiently waits before each
// further attempt, and for how long the hub keeps trying before it
// dead-letters the delivery for a person to decide. Waits double from First
// up to Max, with jitter so that a partner coming back is not hit by every
// parked delivery at once.
type Park struct {
	First   time.Duration
	Max     time.Duration
	Horizon time.Duration
	// Poll is how often an idle partner's parked lanes are looked at.
	Poll time.Duration
}

// DefaultPark is used for Config.Park fields left zero: partners have
// maintenance windows and weekend outages, so the horizon is three days.
var DefaultPark = Park{First: 2 * time.Second, Max: 5 * time.Minute, Horizon: 72 * time.Hour, Poll: 200 * time.Millisecond}

func (p Park) withDefaults() Park {
	if p.First <= 0 {
		p.First = DefaultPark.First
	}
	if p.Max <= 0 {
		p.Max = DefaultPark.Max
	}
	if p.Horizon <= 0 {
		p.Horizon = DefaultPark.Horizon
	}
	if p.Poll <= 0 {
		p.Poll = DefaultPark.Poll
	}
	return p
}

// wait returns how long to wait after the n-th failed attempt: First
// doubled n-1 times, at most Max, less up to a fifth at random; or longer
// when the partner's answer asked for longer (Retry-After), up to Horizon.
func (p Park) wait(n int, err error) time.Duration {
	w := p.First
	for i := 1; i < n && w < p.Max; i++ {
		w *= 2
	}
	w = min(w, p.Max)
	w -= time.Duration(rand.Int64N(int64(w)/5 + 1))
	var de *delivery.Error
	if errors.As(err, &de) && de.RetryAfter > w {
		w = min(de.RetryAfter, p.Horizon)
	}
	return w
}

// TopicParked names the stream of one partner's parked deliveries that are
// due; it is not a store topic but what parkedSubscriber serves.
func TopicParked(partnerID string) string { return "parked." + partnerID }

// parkedStore is what the parked lanes need from storage.
type parkedStore interface {
	DueParked(ctx context.Context, partner string, now time.Time, limit int, except ...int64) ([]store.Parked, error)
}

// parkedSubscriber offers a partner's due parked deliveries, first of each
// lane only, as messages to the partner's delivery handler: up to inFlight
// at once, each of a different lane (DueParked returns the first copy of
// each lane). A lane's next copy becomes due only after the one before it
// was settled (delivered, rescheduled or dead-lettered, all by the
// handler's own commit, before it acknowledges). While the partner's
// circuit breaker is open (down) nothing is offered: every attempt would
// fail at once and only be rescheduled, which for a large backlog means a
// commit per parked copy for nothing; once the breaker lets a probe
// through, the first due copy is it. The router closes it with the handler.
type parkedSubscriber struct {
	store    parkedStore
	partner  string
	poll     time.Duration
	inFlight int
	down     func() bool
	now      func() time.Time
	log      *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ message.Subscriber = (*parkedSubscriber)(nil)

func newParkedSubscriber(st parkedStore, partner string, poll time.Duration, inFlight int, down func() bool, now func() time.Time, log *slog.Logger) *parkedSubscriber {
	if down == nil {
		down = func() bool { return false }
	}
	return &parkedSubscriber{store: st, partner: partner, poll: poll, inFlight: max(inFlight, 1), down: down, now: now, log: log, closing: make(chan struct{})}
}

// Subscribe starts offering due parked deliveries on the returned channel
// until ctx ends or Close is called; the topic is ignored.
func (s *parkedSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		settled := make(chan settledCopy)
		offered := map[int64]bool{} // parked ids in flight
		var pause <-chan time.Time
		for {
			if pause == nil && len(offered) < s.inFlight && !s.down() {
				inFlight := make([]int64, 0, len(offered))
				for id := range offered {
					inFlight = append(inFlight, id)
				}
				due, err := s.store.DueParked(ctx, s.partner, s.now(), s.inFlight-len(offered), inFlight...)
				if err != nil && !errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
					s.log.Error("could not read parked deliveries", "partner", s.partner, "error", err)
				}
				fresh := 0
				for _, p := range due {
					if offered[p.ID] || len(offered) >= s.inFlight {
						continue
					}
					if !s.offer(ctx, out, p, settled) {
						return
					}
					offered[p.ID] = true
					fresh++
				}
				if fresh > 0 {
					continue
				}
			}
			var poll <-chan time.Time
			if pause == nil {
				poll = time.After(s.poll)
			}
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			case c := <-settled:
				delete(offered, c.id)
				if !c.acked {
					// A store failure: the row is unchanged and is read
					// again after a pause rather than at once.
					pause = time.After(s.poll)
				}
			case <-pause:
				pause = nil
			case <-poll:
			}
		}
	}()
	return out, nil
}

// settledCopy says a parked copy offered was acknowledged, or nacked.
type settledCopy struct {
	id    int64
	acked bool
}

// offer hands one parked delivery to the handler and reports on settled
// when it is acknowledged or nacked; false means stop.
func (s *parkedSubscriber) offer(ctx context.Context, out chan<- *message.Message, p store.Parked, settled chan<- settledCopy) bool {
	msg := message.NewMessage(p.IdempotencyKey, p.Payload)
	msg.Metadata.Set(metaParkedID, strconv.FormatInt(p.ID, 10))
	msg.Metadata.Set(metaAttempts, strconv.Itoa(p.Attempts))
	msg.Metadata.Set(metaFirstFailed, strconv.FormatInt(p.FirstFailed.UnixMilli(), 10))
	msgCtx, cancel := context.WithCancel(ctx)
	msg.SetContext(msgCtx)
	select {
	case out <- msg:
	case <-ctx.Done():
		cancel()
		return false
	case <-s.closing:
		cancel()
		return false
	}
	go func() {
		defer cancel()
		c := settledCopy{id: p.ID}
		select {
		case <-msg.Acked():
			c.acked = true
		case <-msg.Nacked():
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
		select {
		case settled <- c:
		case <-ctx.Done():
		case <-s.closing:
		}
	}()
	return true
}

// Close stops offering and waits for the offering goroutine to end.
func (s *parkedSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}
