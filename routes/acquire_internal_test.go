package routes

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A delivery waiting for a free request gives up when its queue stops, even
// though its own context (kept alive so that started attempts finish) has
// not ended; one that got a request is not affected.
func TestAWaitingDeliveryDoesNotStartOnceItsQueueStops(t *testing.T) {
	d := &deliver{partner: "provider", requests: newRequestLimit(1)}
	release, err := d.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := d.acquire(WithStopping(context.Background(), stopping))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("acquire returned %v while the only request was taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	stop()
	select {
	case err := <-got:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("acquire after its queue stopped: %v; want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire still waiting after its queue stopped")
	}
	release()
	if r, err := d.acquire(context.Background()); err != nil {
		t.Fatalf("the released request was not free again: %v", err)
	} else {
		r()
	}
}
