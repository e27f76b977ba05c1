package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/routes"
)

// A delivery that did not start because its queue stopped is nacked, to be
// offered again on the next start, without an error for the router to log;
// any other error is passed on for the router to nack and log.
func TestFinishInFlightNacksQuietlyADeliveryTheStopKeptFromStarting(t *testing.T) {
	o := newOps(slog.New(slog.DiscardHandler), nil)
	stopped := o.finishInFlight(func(*message.Message) ([]*message.Message, error) {
		return nil, fmt.Errorf("deliver to provider: %w", routes.ErrStopped)
	})
	msg := message.NewMessage("1", nil)
	if _, err := stopped(msg); err != nil {
		t.Fatalf("a delivery the stop kept from starting returned %v to the router", err)
	}
	select {
	case <-msg.Nacked():
	default:
		t.Fatal("a delivery the stop kept from starting was not nacked")
	}
	if msg.Ack() {
		t.Fatal("the router's Ack after a nil error was taken for a nacked message")
	}

	failing := o.finishInFlight(func(*message.Message) ([]*message.Message, error) {
		return nil, errors.New("deliver to provider: partner down")
	})
	msg = message.NewMessage("2", nil)
	if _, err := failing(msg); err == nil {
		t.Fatal("another error was not passed on to the router")
	}
	select {
	case <-msg.Nacked():
		t.Fatal("the middleware nacked a message whose error is the router's to handle")
	default:
	}
}
