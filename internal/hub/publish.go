package hub

import (
	"context"
	"time"
)

// PublishCheckEvery is how often a hub looks whether a month's statistics
// are due to its commissioners (routes.Publisher): a publication comes at
// most this long after the configured day and hour.
const PublishCheckEvery = 10 * time.Minute

// statisticsLoop publishes the statistics due to the commissioners, first
// after delay and then every PublishCheckEvery, until ctx ends. Every hub
// on a store runs it; the store's idempotent accept publishes each month
// to each commissioner once.
func (h *Hub) statisticsLoop(ctx context.Context, delay time.Duration) {
	h.publisher.Run(ctx, delay, PublishCheckEvery)
}

// PublishStatistics publishes the statistics of month (YYYY-MM) to every
// commissioner that has not had them, and returns how many copies it
// published; they are delivered by the router like any other copy.
func (h *Hub) PublishStatistics(ctx context.Context, month string) (int, error) {
	return h.publisher.Publish(ctx, month)
}
