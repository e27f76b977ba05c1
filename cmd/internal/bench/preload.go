package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
	"github.com/iceshub/iceshub/routes"
)

// preloadBacklog writes n provider copies into the data directory's store
// before the hub starts, parked as a provider outage leaves them: each
// failed a few times and is due again within the next retry_max_wait. It
// is how the backlog scenario gets to a million pending deliveries in
// minutes rather than the hours of sending it would take at the hub's
// intake rate. Each copy is the provider's cut of a sample referral under
// the built-in route, with an id of its own, so that the stand-in accepts
// it when the provider comes back.
func preloadBacklog(ctx context.Context, open func(dataDir string) (store.Engine, error), dataDir string, fixture []byte, n int, progress io.Writer) error {
	cfg, err := config.Default()
	if err != nil {
		return err
	}
	var route *config.Route
	for i, r := range cfg.Routes {
		if r.Message == string(model.KindReferral) && r.To == "provider" {
			route = &cfg.Routes[i]
		}
	}
	if route == nil {
		return fmt.Errorf("bench: the built-in configuration has no referral route to the provider")
	}
	p, err := fhirmap.ParseMessage(fixture)
	if err != nil {
		return fmt.Errorf("bench: sample referral: %w", err)
	}
	cut, err := minimise.Apply(&p.Referral, route.Rules(), minimise.Options{Now: time.Now()})
	if err != nil {
		return fmt.Errorf("bench: cut the sample referral: %w", err)
	}
	st, err := open(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()

	const perCommit = 2000
	now := time.Now()
	start := time.Now()
	r := rand.New(rand.NewPCG(uint64(n), 11))
	for done := 0; done < n; {
		var b store.Batch
		for ; done < n && len(b.Park) < perCommit; done++ {
			id := uuid.NewString()
			cut.ID = id
			d := model.Delivery{Kind: model.KindReferral, Recipient: "provider", IdempotencyKey: routes.IdempotencyKey(id, "provider", model.KindReferral),
				Fields: route.Disclosed(), Purpose: route.Purpose, LawfulBasis: route.LawfulBasis, Subject: "preloaded", Referral: cut}
			payload, err := json.Marshal(d)
			if err != nil {
				return err
			}
			b.Park = append(b.Park, store.Parked{
				Partner: "provider", Lane: id, Kind: string(model.KindReferral), ReferralID: id, IdempotencyKey: d.IdempotencyKey,
				Payload: payload, Attempts: 3, NextAt: now.Add(time.Duration(r.Int64N(int64(cfg.Delivery.RetryMaxWait)))),
				FirstFailed: now.Add(-10 * time.Minute), LastError: "preloaded by iceshub bench: provider unavailable",
			})
		}
		if err := st.Commit(ctx, b); err != nil {
			return fmt.Errorf("bench: preload: %w", err)
		}
		if done%100000 == 0 || done == n {
			fmt.Fprintf(progress, "bench: preloaded %d of %d parked provider deliveries (%.0fs)\n", done, n, time.Since(start).Seconds())
		}
	}
	return nil
}
