// Package demo is what 'iceshub demo' plays: partner stand-ins (the
// provider, two councils and the requester's NHS endpoint, simulated on
// loopback), the built-in configuration pointed at them, the sample
// referrals sent through a hub, and the return journey after the order
// (journey.go). The tests of cmd/iceshub run hubs against the same
// stand-ins.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/crm"
	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/adapters/nhs"
	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/democreds"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/ready"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// Options are what the demo sends and how it runs.
type Options struct {
	// Referrals is the directory of referral-*.json FHIR bundles to send.
	Referrals string
	// Refuse is a bundle the hub must refuse, sent to show the
	// OperationOutcome; empty: none.
	Refuse string
	// Keep keeps the temporary data directory and prints where it is.
	Keep bool
	// Verbose shows the hub's logs (on stderr).
	Verbose bool
	// Wait is how long to wait for deliveries before giving up.
	Wait time.Duration
	// NoReturn skips the return journey.
	NoReturn bool
	// Stay keeps the hub up afterwards, until ctx ends, with an operators'
	// console account whose one-time password is printed (StayForConsole).
	Stay bool
}

// Run runs the hub with simulated partners on a temporary embedded store,
// sends the sample referrals through it and prints what each partner got
// to stdout.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	files, err := filepath.Glob(filepath.Join(o.Referrals, "referral-*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no referral-*.json bundles in %s (run the demo from the repository root, or pass --referrals DIR)", o.Referrals)
	}
	sort.Strings(files)

	logOut := io.Discard
	if o.Verbose {
		logOut = stderr
	}
	logger := slog.New(logging.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})))

	data, err := os.MkdirTemp("", "iceshub-demo-")
	if err != nil {
		return fmt.Errorf("temporary data directory: %w", err)
	}
	if o.Keep {
		fmt.Fprintf(stdout, "data directory: %s (kept)\n", data)
	} else {
		defer os.RemoveAll(data)
	}

	// Simulated partners, one HTTP server each, on loopback.
	sims := NewPartners()
	defer sims.Close()

	cfg, err := demoConfig(data, sims)
	if err != nil {
		return err
	}

	h, err := hub.New(cfg, logger, hub.Options{Retry: routes.Retry{MaxRetries: 3, InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second},
		Park: routes.Park{First: 100 * time.Millisecond, Max: time.Second, Poll: 20 * time.Millisecond}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = h.Close()
		return err
	}
	hubCtx, stopHub := context.WithCancel(ctx)
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Run(hubCtx, ln) }()
	defer func() {
		stopHub()
		<-hubDone
	}()
	base := "http://" + ln.Addr().String()
	if err := ready.Wait(ctx, base, 10*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "iceshub demo: hub at %s, provider and two councils simulated, store %s\n\n", base, hub.StoreFile(data))

	accepted, err := sendReferrals(ctx, sims, base, files)
	if err != nil {
		return err
	}
	if err := waitDealtWith(ctx, h, cfg, accepted, o.Wait); err != nil {
		return err
	}
	delivered, held, err := printReferrals(ctx, stdout, h, sims, accepted)
	if err != nil {
		return err
	}

	if err := showRefusal(ctx, stdout, sims, base, o.Refuse); err != nil {
		return err
	}

	var returned int
	if !o.NoReturn {
		j, err := StartJourney(ctx, h, base, o.Referrals, sims, o.Wait)
		if err != nil {
			return fmt.Errorf("return journey: %w", err)
		}
		if returned, err = PrintJourney(ctx, stdout, j, o.Wait); err != nil {
			return fmt.Errorf("return journey: %w", err)
		}
	}

	fmt.Fprintf(stdout, "summary: %d referrals accepted, %d copies delivered, %d held for review; every accepted referral reached every recipient its routes name.\n",
		len(accepted), delivered, held)
	if !o.NoReturn {
		fmt.Fprintf(stdout, "return journey: %d steps, %d messages delivered to partners.\n", len(Steps()), returned)
	}
	if o.Stay {
		return StayForConsole(ctx, stdout, h.Store(), base)
	}
	return nil
}

// demoConfig is the built-in configuration pointed at the simulated
// partners, on the data directory data, with the demo's own credentials.
func demoConfig(data string, sims *Partners) (*config.Config, error) {
	cfg, err := config.Default()
	if err != nil {
		return nil, err
	}
	cfg.Store.DataDir = data
	cfg.Store.PollInterval = 10 * time.Millisecond
	cfg.Server.ShutdownTimeout = 5 * time.Second
	for i := range cfg.Partners {
		p := &cfg.Partners[i]
		url, ok := sims.URLs[p.ID]
		if !ok {
			return nil, fmt.Errorf("demo has no simulator for partner %q", p.ID)
		}
		p.BaseURL = url
		p.TokenEnv = "" // the simulators take no credentials
	}
	// The hub takes no request without credentials: the demo brings its own.
	if sims.Creds, err = democreds.Add(cfg, data); err != nil {
		return nil, err
	}
	return cfg, nil
}

// sent is a referral the demo sent and the hub accepted.
type sent struct {
	file, referralID string
}

// sendReferrals sends each bundle of files, which the hub must accept.
func sendReferrals(ctx context.Context, sims *Partners, base string, files []string) ([]sent, error) {
	var accepted []sent
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		status, answer, err := sims.PostBundle(ctx, base, body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		id := ReferralIDFrom(answer)
		if status != http.StatusOK || id == "" {
			return nil, fmt.Errorf("%s: the hub answered %d, want 200 with a referral id:\n%s", filepath.Base(f), status, answer)
		}
		accepted = append(accepted, sent{file: filepath.Base(f), referralID: id})
	}
	return accepted, nil
}

// waitDealtWith waits, at most wait, until every route of every accepted
// referral has an outcome.
func waitDealtWith(ctx context.Context, h *hub.Hub, cfg *config.Config, accepted []sent, wait time.Duration) error {
	// Wait until every route of every referral has an outcome.
	perReferral := 0
	for _, r := range cfg.Routes {
		if r.Message == string(model.KindReferral) {
			perReferral++
		}
	}
	deadline := time.Now().Add(wait)
	for _, a := range accepted {
		for {
			ds, err := h.Store().Disclosures(ctx, a.referralID)
			if err != nil {
				return err
			}
			if len(ds) >= perReferral {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: only %d of %d recipients dealt with after %s", a.file, len(ds), perReferral, wait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// printReferrals prints, per referral, what each partner received and
// what was held back, and counts both.
func printReferrals(ctx context.Context, stdout io.Writer, h *hub.Hub, sims *Partners, accepted []sent) (delivered, held int, err error) {
	for _, a := range accepted {
		fmt.Fprintf(stdout, "=== %s  (hub referral %s)\n", a.file, a.referralID)
		ds, err := h.Store().Disclosures(ctx, a.referralID)
		if err != nil {
			return 0, 0, err
		}
		for _, d := range ds {
			switch d.Outcome {
			case store.OutcomeSent:
				delivered++
				key := routes.IdempotencyKey(a.referralID, d.Recipient, model.Kind(d.Kind))
				fmt.Fprintf(stdout, "--- %s received (%s; purpose: %s; basis: %s)\n", d.Recipient, sims.what(d.Recipient), d.Purpose, d.LawfulBasis)
				fmt.Fprintf(stdout, "    fields disclosed: %s\n", strings.Join(d.Fields, ", "))
				body, ok := sims.Received(d.Recipient, key)
				if !ok {
					return 0, 0, fmt.Errorf("%s: the hub recorded a delivery to %s that its simulator never saw", a.file, d.Recipient)
				}
				fmt.Fprintf(stdout, "%s\n", indent(body))
			default:
				held++
				fmt.Fprintf(stdout, "--- %s: %s (%s)\n", d.Recipient, d.Outcome, d.Detail)
			}
		}
		fmt.Fprintln(stdout)
	}
	return delivered, held, nil
}

// showRefusal sends the bundle at path, which the hub must refuse with a
// 4xx, and prints the OperationOutcome; nothing when path is empty.
func showRefusal(ctx context.Context, stdout io.Writer, sims *Partners, base, path string) error {
	if path == "" {
		return nil
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bundle to refuse: %w", err)
	}
	status, answer, err := sims.PostBundle(ctx, base, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "=== %s is refused: HTTP %d\n%s\n\n", filepath.Base(path), status, indent(answer))
	if status < 400 || status >= 500 {
		return fmt.Errorf("%s: the hub answered %d, want a 4xx refusal", path, status)
	}
	return nil
}

// PostBundle sends a FHIR bundle to the endpoint its type calls for, with the
// demo NHS partner's bearer token.
func (d *Partners) PostBundle(ctx context.Context, base string, body []byte) (int, []byte, error) {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &head)
	url := base + "/fhir"
	if head.Type == "message" || head.Type == "" {
		url = base + "/fhir/$process-message"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", fhiradapter.ContentType)
	req.Header.Set("X-Request-ID", uuid.NewString())
	req.Header.Set("X-Correlation-ID", "demo-"+uuid.NewString()[:8])
	if d.Creds != nil {
		if err := d.Creds.Authorise(req); err != nil {
			return 0, nil, err
		}
	}
	return SendToHub(req)
}

// SendToHub sends req and returns the hub's status and answer (at most
// 1 MiB of it).
func SendToHub(req *http.Request) (int, []byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("send to hub: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}

// ReferralIDFrom reads the hub's referral id from a success answer.
func ReferralIDFrom(answer []byte) string {
	var b struct {
		Identifier struct {
			System, Value string
		} `json:"identifier"`
	}
	if json.Unmarshal(answer, &b) != nil || b.Identifier.System != fhiradapter.ReferralIDSystem {
		return ""
	}
	return b.Identifier.Value
}

func indent(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "    ", "  ") != nil {
		return "    " + string(b)
	}
	return "    " + out.String()
}

// Partners are the simulated provider, councils and NHS endpoint of the
// default configuration, each an HTTP server on loopback. URLs maps each
// partner id to its server; Creds, when set, sign what the demo sends to
// the hub (democreds.Add).
type Partners struct {
	Provider *provider.Simulator
	Councils map[string]*crm.Simulator
	NHS      *nhs.Simulator
	URLs     map[string]string
	// Creds sign the demo's requests to the hub (democreds.Add).
	Creds   *democreds.Credentials
	servers []*httptest.Server
}

// NewPartners starts the stand-ins; Close stops them.
func NewPartners() *Partners {
	d := &Partners{Provider: provider.NewSimulator(), Councils: map[string]*crm.Simulator{}, URLs: map[string]string{}}
	srv := httptest.NewServer(d.Provider)
	d.servers = append(d.servers, srv)
	d.URLs["provider"] = srv.URL
	for _, id := range []string{"council-cwac", "council-ceast"} {
		sim := crm.NewSimulator()
		srv := httptest.NewServer(sim)
		d.Councils[id] = sim
		d.servers = append(d.servers, srv)
		d.URLs[id] = srv.URL
	}
	d.NHS = nhs.NewSimulator()
	srv = httptest.NewServer(d.NHS)
	d.servers = append(d.servers, srv)
	d.URLs["nhs-trust"] = srv.URL
	return d
}

func (d *Partners) what(id string) string {
	switch {
	case id == "provider":
		return "a new equipment order"
	case id == "nhs-trust":
		return "the referral's FHIR Task, at the requester's endpoint"
	}
	return "a case for the order, in the council's CRM"
}

// Close stops the stand-ins' servers.
func (d *Partners) Close() {
	for _, s := range d.servers {
		s.Close()
	}
}

// Received returns, as JSON, the body a simulated partner accepted under an
// idempotency key.
func (d *Partners) Received(id, key string) ([]byte, bool) {
	if id == "provider" {
		return firstCreated(d.Provider.Received(), key)
	}
	if id == "nhs-trust" {
		for _, r := range d.NHS.Received() {
			if r.Header.IdempotencyKey != key || r.Status >= 300 {
				continue
			}
			var v any = r.Task
			if r.Communication != nil {
				v = r.Communication
			}
			b, err := json.Marshal(v)
			return b, err == nil
		}
		return nil, false
	}
	sim, ok := d.Councils[id]
	if !ok {
		return nil, false
	}
	return firstCreated(sim.Received(), key)
}

func firstCreated[T any](rs []partnersim.Received[T], key string) ([]byte, bool) {
	for _, r := range rs {
		if r.Header.IdempotencyKey == key && r.Decoded && !r.Repeat && r.Status < 300 {
			b, err := json.Marshal(r.Body)
			return b, err == nil
		}
	}
	return nil, false
}
