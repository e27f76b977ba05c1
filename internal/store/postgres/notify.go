package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// listen wakes this hub's queues when another hub's commit publishes to
// their topic, on a connection of its own, until ctx ends. When the connection
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
					// Its own commits woke this hub's queues already
					// (published): waking them again would have each
					// claim for nothing.
					if topic, from, _ := strings.Cut(n.Payload, " "); from != p.replica {
						p.wakers.Wake(map[string]bool{topic: true})
					}
				}
			}
			conn.Close(context.Background())
		}
		p.wakers.WakeAll()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// published wakes this hub's queues of topics at once and has the other
// hubs notified (notifyOthers).
func (p *Postgres) published(topics map[string]bool) {
	p.wakers.Wake(topics)
	for t := range topics {
		select {
		case p.notify <- t:
		default: // full: a notification of every topic is on its way
		}
	}
}

// notifyGather is how long notifyOthers gathers topics before it
// notifies: under load one NOTIFY stands for many commits.
const notifyGather = 2 * time.Millisecond

// notifyOthers sends the other hubs a notification per topic this hub
// published to, gathered over notifyGather, each in a statement of its own
// after the commits it announces; until ctx ends. A notification lost
// (the database away) is made up for by the other hubs' polls.
func (p *Postgres) notifyOthers(ctx context.Context) {
	defer close(p.notifying)
	for {
		var first string
		select {
		case <-ctx.Done():
			return
		case first = <-p.notify:
		}
		topics := map[string]bool{first: true}
		gather := time.After(notifyGather)
	gathering:
		for {
			select {
			case t := <-p.notify:
				topics[t] = true
			case <-gather:
				break gathering
			case <-ctx.Done():
				return
			}
		}
		// "topic replica": a topic has no space (topicPattern), and the
		// replica lets this hub's listener skip its own. A hub of an
		// earlier version, sending the topic alone, is taken for another.
		list := make([]string, 0, len(topics))
		for t := range topics {
			list = append(list, t+" "+p.replica)
		}
		_, _ = p.queues.Exec(ctx, `SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t`, notifyChannel, list)
	}
}
