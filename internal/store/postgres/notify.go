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
					p.wakers.Wake(map[string]bool{n.Payload: true})
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
