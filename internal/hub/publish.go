package hub

import (
	"context"
	"sync"
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

// startBeside starts retention and the statistics to commissioners, each
// first after the retention delay, until ctx ends or stop is called; stop
// returns once both have stopped, and may be called more than once.
func (h *Hub) startBeside(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.retentionLoop(ctx, h.retentionDelay) }()
	go func() { defer wg.Done(); h.statisticsLoop(ctx, h.retentionDelay) }()
	return func() { cancel(); wg.Wait() }
}
