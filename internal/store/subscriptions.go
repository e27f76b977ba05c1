package store

import (
	"context"
	"errors"
	"sync"
)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("store: subscriber closed")

// Subscriptions are the running queues of an engine's subscriber, so that
// its Close ends them all and waits for them. The zero value is ready to
// use.
type Subscriptions struct {
	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs run in a goroutine of its own, with a context that Close
// cancels; ErrSubscriberClosed after Close.
func (s *Subscriptions) Start(ctx context.Context, run func(ctx context.Context)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSubscriberClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run(ctx)
	}()
	return nil
}

// Close ends every subscription and waits for them to stop.
func (s *Subscriptions) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
