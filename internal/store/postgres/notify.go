package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// listen wakes this hub's queues when any hub's commit publishes to their
// topic, on a connection of its own, until ctx ends. When the connection
// is lost it wakes every queue (a notification may have gone with it) and
// connects again; meanwhile the queues poll.
func (p *Postgres) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(p.listening)
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			for err == nil {
				var n *pgconn.Notification
				n, err = conn.WaitForNotification(ctx)
				if err == nil {
					p.wake(map[string]bool{n.Payload: true})
				}
			}
			conn.Close(context.Background())
		}
		p.wakeAll()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// wakeOn returns a channel that receives a value after each commit that
// published to topic (coalesced).
func (p *Postgres) wakeOn(topic string) chan struct{} {
	c := make(chan struct{}, 1)
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	if p.wakers == nil {
		p.wakers = map[string][]chan struct{}{}
	}
	p.wakers[topic] = append(p.wakers[topic], c)
	return c
}

func (p *Postgres) stopWaking(topic string, c chan struct{}) {
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	list := p.wakers[topic]
	for i, w := range list {
		if w == c {
			p.wakers[topic] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

// wake tells this hub's queues of topics that a commit published to them.
func (p *Postgres) wake(topics map[string]bool) {
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	for t := range topics {
		for _, c := range p.wakers[t] {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

func (p *Postgres) wakeAll() {
	p.wakeMu.Lock()
	topics := map[string]bool{}
	for t := range p.wakers {
		topics[t] = true
	}
	p.wakeMu.Unlock()
	p.wake(topics)
}
