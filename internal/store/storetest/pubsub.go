package storetest

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/iceshub/iceshub/internal/store"
)

// Publisher publishes through an engine's Commit, as the hub's routes do:
// each Publish is one Batch. It makes an engine a Watermill Pub/Sub for
// Watermill's own conformance tests (RunPubSub).
type Publisher struct {
	Store store.Engine
}

// Publish commits msgs on topic in one batch.
func (p Publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Store.EnsureTopics(topic); err != nil {
		return err
	}
	var b store.Batch
	for _, m := range msgs {
		b.Messages = append(b.Messages, store.TopicMessage{Topic: topic, Message: m})
	}
	return p.Store.Commit(context.Background(), b)
}

// Close does nothing: the engine is closed by its opener.
func (Publisher) Close() error { return nil }

// RunPubSub runs Watermill's Pub/Sub conformance tests (pubsub/tests) on
// the engines open returns, with the features they have: persistent
// topics, one consumer group (every subscriber of a topic shares its
// messages), at-least-once delivery; order is per referral, which the
// tests' messages do not name, so the order tests do not apply. open is
// called for each test and may return stores sharing one database.
func RunPubSub(t *testing.T, features tests.Features, open func(t *testing.T) store.Engine) {
	tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
		s := open(t)
		sub, err := s.NewSubscriber()
		if err != nil {
			t.Fatal(err)
		}
		return Publisher{Store: s}, sub
	}, nil)
}
