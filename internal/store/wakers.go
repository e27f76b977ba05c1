package store

import "sync"

// Wakers tell an engine's queues that a commit published to their topic,
// so that a queue waiting for work looks at once rather than at its next
// poll. The zero value is ready to use; it is safe for concurrent use.
type Wakers struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

// On returns a channel that receives a value after each Wake of topic
// (coalesced: one value stands for any number). Stop it when done.
func (w *Wakers) On(topic string) chan struct{} {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string][]chan struct{}{}
	}
	w.m[topic] = append(w.m[topic], c)
	return c
}

// Stop forgets a channel On returned.
func (w *Wakers) Stop(topic string, c chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[topic]
	for i, x := range list {
		if x == c {
			w.m[topic] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

// Wake tells the queues of topics that a commit published to them.
func (w *Wakers) Wake(topics map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for t := range topics {
		for _, c := range w.m[t] {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// WakeAll wakes every queue (a notification may have been lost).
func (w *Wakers) WakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range w.m {
		for _, c := range list {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}
