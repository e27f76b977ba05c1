// Package routes is the hub's table of contents for messages in motion: who
// receives each kind of message, cut to what fields, and through which steps.
//
// The use cases, one handler each:
//   - fan out an accepted referral (fanout.go): one minimised copy per
//     recipient the configuration names, or a hold when no route can place it
//     or when a route needs the person's express permission and the referral
//     does not record it given;
//   - fan out an accepted event about a referral (fanout.go, handleEvent):
//     the stored referral with the event attached, cut per recipient the
//     same way; urgent kinds (safeguarding) on their own topic and handler;
//   - deliver to a partner (deliver.go): map and send one copy, record the
//     receipt, the disclosure and the partner's reference, dead-letter a
//     permanent refusal, park a transient failure in the referral's lane;
//   - deliver again what is parked (parked.go): the first copy of each lane,
//     when due, until it is delivered or the horizon has passed;
//   - deliver urgent copies from the partner's urgent queue, never behind
//     routine traffic.
//
// Routes never parse a wire format and never do HTTP themselves: adapters do,
// behind the Sender interface.
package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// Sender delivers one recipient's copy to its partner. Adapters implement it.
// A *delivery.Error that is Permanent will never succeed as it stands; any
// other error is treated as transient. The receipt's Fields, with or
// without an error, are the disclosure record of what was sent: the fields
// the encoded payload held, never the route's list.
type Sender interface {
	Send(ctx context.Context, d model.Delivery) (model.Receipt, error)
}

// Store is what the routes need from storage.
type Store interface {
	// Commit writes a batch atomically.
	Commit(ctx context.Context, b store.Batch) error
	// DeliveryState says, in one read, whether a copy was delivered
	// already, whether its lane holds a parked copy, and the referral's
	// references as the partner sees them (its own case's when casePurpose
	// is not empty).
	DeliveryState(ctx context.Context, idempotencyKey, partner, lane, referralID, casePurpose string) (store.DeliveryState, error)
	// FindReferral returns the stored record of a referral.
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
	parkedStore
}

// TopicDeliver is the durable topic of deliveries waiting for one partner.
// One topic per partner keeps a partner that is down from holding up others;
// the store's queue keeps the order of the messages about each referral.
func TopicDeliver(partnerID string) string { return "deliver." + partnerID }

// TopicUrgent is the durable topic of urgent copies (model.Kind.Urgent) for
// one partner, read by a handler of its own so that a safeguarding concern
// never waits behind routine traffic.
func TopicUrgent(partnerID string) string { return "urgent." + partnerID }

// Retry is how long the hub keeps retrying a transient delivery failure
// before handing the message back to its queue, where it is offered again.
// A message is never dropped for being transient.
type Retry struct {
	MaxRetries      int
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// DefaultRetry is used when Config.Retry is zero.
var DefaultRetry = Retry{MaxRetries: 6, InitialInterval: time.Second, MaxInterval: 30 * time.Second}

// Config is what New needs to build the router.
type Config struct {
	// Routes say which recipient receives which fields of which kind.
	Routes []config.Route
	// Councils places a postcode in a council's area.
	Councils *postcode.Table
	// Requesters maps an ODS code (upper case) to the nhs partner whose
	// FHIR endpoint serves it (config.Config.RequesterTable).
	Requesters map[string]string
	// PartnerKinds maps each partner id to its kind (config.KindProvider,
	// KindCouncil, KindNHS), which says what reference its receipts carry.
	PartnerKinds map[string]string
	// Park is how parked deliveries are attempted again; zero fields take
	// DefaultPark's.
	Park Park
	// SubjectKey hashes the NHS number into the subject of each disclosure
	// entry; required.
	SubjectKey subject.Key
	// InFlight is how many parked copies of one partner (each of another
	// referral) are attempted at once; default 1.
	InFlight int
	// Requests is how many requests each of a partner's queues (routine,
	// urgent, parked) has open to it at once; 0 leaves it to how many
	// messages the queue hands out. A delivery holds its message until its
	// outcome is durably recorded, a group commit of a few milliseconds
	// after the partner answered; with fewer requests than messages the
	// next requests go out meanwhile, without more open at the partner.
	Requests int
	// Down, when set, reports whether a partner's circuit breaker is open:
	// its parked copies then wait without an attempt until the breaker
	// lets a probe through.
	Down func(partner string) bool
	// Senders holds one Sender per partner id.
	Senders map[string]Sender
	Retry   Retry
	// Now is the clock; default time.Now.
	Now func() time.Time
	// CloseTimeout bounds how long in-flight handlers may run after Close.
	CloseTimeout time.Duration
}

// NewSubscriber returns a new subscriber to the store's topics. The router
// closes each handler's subscriber when the handler stops, so every handler
// gets its own.
type NewSubscriber func() (message.Subscriber, error)

// New returns a Watermill router with the fan-out handler and one delivery
// handler per partner, each subscribed through its own subscriber from
// newSub. Run it with Run; it stops, and closes the subscribers, when its
// context ends or Close is called.
func New(cfg Config, st Store, newSub NewSubscriber, logger *slog.Logger) (*message.Router, error) {
	if st == nil || newSub == nil || logger == nil {
		return nil, errors.New("routes: nil store, subscriber factory or logger")
	}
	cut, err := newCutter(cfg, logger)
	if err != nil {
		return nil, err
	}
	cfg.Now = cut.now
	if cfg.Retry == (Retry{}) {
		cfg.Retry = DefaultRetry
	}
	cfg.Park = cfg.Park.withDefaults()
	for _, r := range cfg.Routes {
		if r.To == config.RecipientCouncil || r.To == config.RecipientRequester {
			continue
		}
		if _, ok := cfg.Senders[r.To]; !ok {
			return nil, fmt.Errorf("routes: route %s -> %s has no sender", r.Message, r.To)
		}
	}

	router, err := newRouter(cfg, logger)
	if err != nil {
		return nil, err
	}

	var subs []message.Subscriber
	subscriber := func() (message.Subscriber, error) {
		sub, err := newSub()
		if err != nil {
			return nil, fmt.Errorf("routes: subscriber: %w", err)
		}
		subs = append(subs, sub)
		return sub, nil
	}
	closeSubs := func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}

	fan := &fanout{cutter: cut, store: st}
	for _, h := range []struct {
		name, topic string
		fn          message.NoPublishHandlerFunc
	}{
		{"fanout", intake.TopicReferralReceived, fan.handle},
		{"fanout.events", intake.TopicEventReceived, fan.handleEvent},
		{"fanout.urgent", intake.TopicUrgentEventReceived, fan.handleEvent},
	} {
		sub, err := subscriber()
		if err != nil {
			closeSubs()
			return nil, err
		}
		router.AddConsumerHandler(h.name, h.topic, sub, h.fn)
	}

	gate := newStoreGate(logger, cfg.Now)
	for id, s := range cfg.Senders {
		// One deliver per queue: each has its own requests open, so that
		// urgent copies never wait for routine ones to leave.
		warn := newPartnerWarnings(id, logger, cfg.Now)
		queueDeliver := func() *deliver {
			return &deliver{partner: id, partnerKind: cfg.PartnerKinds[id], sender: s, store: st, park: cfg.Park, now: cfg.Now, log: logger,
				requests: newRequestLimit(cfg.Requests), gate: gate, warn: warn}
		}
		for _, topic := range []string{TopicDeliver(id), TopicUrgent(id)} {
			sub, err := subscriber()
			if err != nil {
				closeSubs()
				return nil, err
			}
			router.AddConsumerHandler(topic, topic, sub, queueDeliver().handle)
		}
		var down func() bool
		if cfg.Down != nil {
			down = func() bool { return cfg.Down(id) }
		}
		parked := newParkedSubscriber(st, id, cfg.Park.Poll, cfg.InFlight, down, cfg.Now, logger)
		subs = append(subs, parked)
		router.AddConsumerHandler(TopicParked(id), TopicParked(id), parked, queueDeliver().handle)
	}
	return router, nil
}

// newRouter returns the router with its middleware, in the order written
// once here.
func newRouter(cfg Config, logger *slog.Logger) (*message.Router, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("routes: router: %w", err)
	}
	// Middleware order, outermost first (first added runs first):
	router.AddMiddleware(
		// Retry backs off and tries again on a transient error; when it gives
		// up the message is nacked and its queue offers it again, so a
		// transient failure delays a message but never drops it.
		middleware.Retry{
			MaxRetries:          cfg.Retry.MaxRetries,
			InitialInterval:     cfg.Retry.InitialInterval,
			MaxInterval:         cfg.Retry.MaxInterval,
			Multiplier:          2,
			RandomizationFactor: 0.3,
			ResetContextOnRetry: true,
		}.Middleware,
		// Recoverer sits inside Retry so that a panic becomes an error of
		// this attempt rather than a crashed hub.
		middleware.Recoverer,
	)
	return router, nil
}

// Topics returns every topic the router reads, so that storage can create
// them before the first message is published.
func Topics(partnerIDs []string) []string {
	ts := []string{intake.TopicReferralReceived, intake.TopicEventReceived, intake.TopicUrgentEventReceived}
	for _, id := range partnerIDs {
		ts = append(ts, TopicDeliver(id), TopicUrgent(id))
	}
	return ts
}
