package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

// A closed store cannot answer: SeenBefore fails (and the caller refuses).
func testSeenBeforeFailsOnAClosedStore(t *testing.T, open func(t *testing.T) store.Engine) {
	s := open(t)
	s.Close()
	if _, err := s.SeenBefore(context.Background(), [32]byte{1}, time.Now(), time.Now().Add(time.Minute)); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("closed store: %v, want ErrClosed", err)
	}
}
