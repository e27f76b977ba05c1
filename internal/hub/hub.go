// Package hub assembles a hub from its configuration and runs it: the
// store, the routes, the partners' adapters and endpoints, and the
// operator's side (metrics, draining, the admin API). It also holds what
// the operator commands share with the admin API (dead-letter and held
// message decisions, statistics, retention), the loading of a
// configuration checked against the partners' contracts, and the opening
// of the store (engine.go, the one place that names its engine).
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/adapters/commissioner"
	"github.com/iceshub/iceshub/adapters/crm"
	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/adapters/nhs"
	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
	"github.com/iceshub/iceshub/routes"
)

// Hub is one running iceshub: the store, the router and the HTTP server,
// wired here and nowhere else.
type Hub struct {
	cfg    *config.Config
	log    *slog.Logger
	store  store.Engine
	router *message.Router
	// server serves the partners' endpoints, and the operator's too when
	// server.ops_addr is not set.
	server *http.Server
	// opsServer, when server.ops_addr is set, serves the operator's
	// endpoints (/healthz, /readyz, /metrics, /admin/) and nothing else;
	// opsListener is where, when the caller listened already (serve,
	// tests); nil: run listens on server.ops_addr.
	opsServer   *http.Server
	opsListener net.Listener
	// lock is the data directory's lock, held from New until the store
	// closes: a second hub on the same directory refuses to start.
	lock DataLock
	// ops holds metrics, draining and the admin API (ops.go).
	ops *ops
	// readiness remembers the last store probe of /readyz.
	readiness readiness

	retentionDelay time.Duration
	// publisher publishes the monthly statistics to commissioners.
	publisher *routes.Publisher
}

// Store is the hub's store, open from New until the hub stops.
func (h *Hub) Store() store.Engine { return h.store }

// Config is the configuration the hub was built with.
func (h *Hub) Config() *config.Config { return h.cfg }

// PartnerHandler is the handler of the partners' listener (the operator's
// endpoints too when server.ops_addr is not set).
func (h *Hub) PartnerHandler() http.Handler { return h.server.Handler }

// UseOpsListener has Run serve the operator's endpoints on ln when
// server.ops_addr is set, rather than listen on that address itself (serve
// and tests listen first). Call it before Run.
func (h *Hub) UseOpsListener(ln net.Listener) { h.opsListener = ln }

// Listen listens on server.addr, which it returns for Run, and on
// server.ops_addr when set (UseOpsListener), so that an address in use is
// an error before anything runs. On an error nothing is left listening.
func (h *Hub) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", h.cfg.Server.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", h.cfg.Server.Addr, err)
	}
	if h.cfg.Server.OpsAddr != "" {
		opsLn, err := h.listenOps()
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		h.UseOpsListener(opsLn)
	}
	return ln, nil
}

// listenOps listens on server.ops_addr.
func (h *Hub) listenOps() (net.Listener, error) {
	ln, err := net.Listen("tcp", h.cfg.Server.OpsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on server.ops_addr %s: %w", h.cfg.Server.OpsAddr, err)
	}
	return ln, nil
}

// Options adjust a hub for tests and the demo; the zero value is the
// serving hub's.
type Options struct {
	// Retry overrides the routes' transient retry schedule.
	Retry routes.Retry
	// Park overrides how parked deliveries are attempted again.
	Park routes.Park
	// RetentionDelay is how long after start retention first runs; zero
	// means a minute.
	RetentionDelay time.Duration
	// TuneDelivery, when set, adjusts each partner's delivery client
	// (breaker and retry waits) before it is built.
	TuneDelivery func(*delivery.Config)
	// AdminToken overrides the environment's ICESHUB_ADMIN_TOKEN.
	AdminToken string
	// Now is the clock of readiness probes; nil means time.Now.
	Now func() time.Time
}

// queueHandlers is how many messages each queue hands out per request it
// may have open to its partner (delivery.in_flight). A delivery keeps its
// message until its outcome is durably recorded, a group commit a few
// milliseconds after the partner answered; with in_flight messages per
// queue, the partner had at most in_flight requests but most of the time
// fewer, the rest waiting for their commit (the bench delivered 870
// referrals/s to the provider with the hub's CPU a third idle; with four
// messages per request, 1,160-1,220/s, the same 8 requests at most).
const queueHandlers = 4

// New builds a hub from cfg. Nothing runs until Run is called; a hub
// that is never run is released by Close.
func New(cfg *config.Config, logger *slog.Logger, opts Options) (_ *Hub, err error) {
	// First the data directory's lock: two hubs on one store would deliver
	// every message twice, and an operator command writing the store
	// (keys rotate, dlq replay, retention run) takes it too.
	// A shared store (postgres) has no such lock: its hubs share its
	// queues under leases.
	var lock DataLock = noLock{}
	if !IsShared(cfg.Store) {
		if lock, err = lockDataDir(cfg.Store.DataDir); err != nil {
			return nil, fmt.Errorf("refusing to start: %w", err)
		}
	}
	defer func() {
		if err != nil {
			_ = lock.Release()
		}
	}()
	adminToken := AdminTokenFrom(opts.AdminToken)
	warnings, err := CheckEnvironment(cfg, cfg.Server.InsecureDev, adminToken)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		logger.Warn(w)
	}
	if !IsShared(cfg.Store) {
		warnIfOpen(cfg.Store.DataDir, logger)
	}
	// Hubs that share a store must share its keys: none is generated.
	subjects, err := LoadSubjectKey(cfg.Store.DataDir, !IsShared(cfg.Store), logger)
	if err != nil {
		return nil, err
	}
	st, err := openHubStore(cfg, subjects, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()

	o := newOps(logger, st)
	senders, err := newSenders(cfg, o, opts, logger)
	if err != nil {
		return nil, err
	}
	if err := st.EnsureTopics(routes.Topics(slices.Sorted(maps.Keys(senders)))...); err != nil {
		return nil, err
	}
	routesCfg, err := newRoutesConfig(cfg, opts, subjects, senders, o)
	if err != nil {
		return nil, err
	}
	router, err := routes.New(routesCfg, st, o.subscribers(st.NewSubscriber), logger)
	if err != nil {
		return nil, err
	}
	o.instrumentRouter(router)
	mux, err := newPartnerMux(cfg, routesCfg, st, o, logger)
	if err != nil {
		return nil, err
	}
	publisher, err := routes.NewPublisher(cfg, st, nil, logger)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: logger, store: st, router: router, ops: o, lock: lock, retentionDelay: opts.RetentionDelay, publisher: publisher}
	h.readiness.now = opts.Now
	if h.retentionDelay <= 0 {
		h.retentionDelay = time.Minute
	}
	if err := h.newServers(mux, adminToken, subjects); err != nil {
		return nil, err
	}
	return h, nil
}

// openHubStore opens the hub's store on its data directory, with its keys.
func openHubStore(cfg *config.Config, subjects subject.Key, logger *slog.Logger) (store.Engine, error) {
	dataKeys, err := LoadDataKeys(cfg, !IsShared(cfg.Store), logger)
	if err != nil {
		return nil, err
	}
	return OpenStore(StoreSettings{
		Store:        cfg.Store,
		Migrate:      cfg.Store.Migrate == "auto",
		PollInterval: cfg.Store.PollInterval,
		CommitDelay:  cfg.Store.EffectiveCommitDelay(),
		InFlight:     queueHandlers * cfg.Delivery.InFlight,
		Logger:       watermill.NewSlogLogger(logger.With("component", "watermill")),
		SubjectKey:   subjects.Bytes(),
		Keyring:      dataKeys,
	})
}

// providerOf returns the id of the configuration's provider, or "".
func providerOf(cfg *config.Config) string {
	for _, p := range cfg.Partners {
		if p.Kind == config.KindProvider {
			return p.ID
		}
	}
	return ""
}

// newSenders builds each partner's client (its delivery.Client behind the
// adapter of its kind), instrumented for /metrics.
func newSenders(cfg *config.Config, o *ops, opts Options, logger *slog.Logger) (map[string]routes.Sender, error) {
	senders := map[string]routes.Sender{}
	providerID := providerOf(cfg)
	for _, p := range cfg.Partners {
		// An unset token_env was refused above, or warned about in
		// insecure development mode: then no token, and no header.
		token, _ := p.Token()
		dc := delivery.Config{
			Partner:  p.ID,
			BaseURL:  p.BaseURL,
			Token:    token,
			Timeout:  p.Timeout,
			RetryMax: p.RetryMax,
			// A partner's queue, its urgent queue and its parked lanes
			// each have up to in_flight requests open.
			Connections: 3 * cfg.Delivery.InFlight,
		}
		tlsOpts, err := outboundTLS(p)
		if err != nil {
			return nil, err
		}
		if tlsOpts != nil {
			if dc.Transport, err = delivery.NewTransport(*tlsOpts); err != nil {
				return nil, fmt.Errorf("partner %q: %w", p.ID, err)
			}
		}
		if opts.TuneDelivery != nil {
			opts.TuneDelivery(&dc)
		}
		var s routes.Sender
		switch p.Kind {
		case config.KindProvider:
			s, err = provider.New(provider.Config{ID: p.ID, Delivery: dc}, logger)
		case config.KindCouncil:
			s, err = crm.New(crm.Config{ID: p.ID, Delivery: dc}, logger)
		case config.KindNHS:
			s, err = nhs.New(nhs.Config{ID: p.ID, Provider: providerID, Delivery: dc}, logger)
		case config.KindCommissioner:
			s, err = commissioner.New(commissioner.Config{ID: p.ID, Delivery: dc}, logger)
		default:
			err = fmt.Errorf("partner %q: unknown kind %q", p.ID, p.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("partner %q: %w", p.ID, err)
		}
		senders[p.ID] = o.sender(p.ID, s)
	}
	return senders, nil
}

// newRoutesConfig is the routes' configuration: the route table, who
// covers what, the senders and the delivery schedules.
func newRoutesConfig(cfg *config.Config, opts Options, subjects subject.Key, senders map[string]routes.Sender, o *ops) (routes.Config, error) {
	councils, err := cfg.CouncilTable()
	if err != nil {
		return routes.Config{}, err
	}
	// The configured schedule of parked deliveries, unless a test or the
	// demo sets its own.
	park := opts.Park
	if park == (routes.Park{}) {
		park = routes.Park{First: cfg.Delivery.RetryFirstWait, Max: cfg.Delivery.RetryMaxWait, Horizon: cfg.Delivery.RetryHorizon}
	}
	kinds := map[string]string{}
	for _, p := range cfg.Partners {
		kinds[p.ID] = p.Kind
	}
	return routes.Config{
		Routes:       cfg.Routes,
		Councils:     councils,
		Requesters:   cfg.RequesterTable(),
		PartnerKinds: kinds,
		SubjectKey:   subjects,
		Senders:      senders,
		Retry:        opts.Retry,
		Park:         park,
		CloseTimeout: cfg.Server.ShutdownTimeout,
		InFlight:     queueHandlers * cfg.Delivery.InFlight,
		Requests:     cfg.Delivery.InFlight,
		Down:         o.breakerOpen,
	}, nil
}

// newPartnerMux builds the partners' endpoints: the use cases that accept
// referrals and events, behind their edges, each authenticated, rate
// limited and authorised per partner (internal/auth) before any handler
// reads the body. The operator endpoints never accept partner credentials.
func newPartnerMux(cfg *config.Config, routesCfg routes.Config, st store.Engine, o *ops, logger *slog.Logger) (*http.ServeMux, error) {
	// New referrals are cut for their recipients as they are accepted, in
	// the same transaction (routes.FanOutOnAccept).
	fanOut, err := routes.FanOutOnAccept(routesCfg, st, logger)
	if err != nil {
		return nil, err
	}
	accept, err := intake.New(o.intakeStore(fanOut))
	if err != nil {
		return nil, err
	}
	events, err := intake.NewEvents(o.eventStore(st), nil)
	if err != nil {
		return nil, err
	}
	fhirHandler, err := fhiradapter.New(fhiradapter.Config{MaxBodyBytes: cfg.Server.MaxBodyBytes, Finder: st, Events: events,
		RequesterRequired: slices.ContainsFunc(cfg.Routes, func(r config.Route) bool { return r.To == config.RecipientRequester })}, accept, logger)
	if err != nil {
		return nil, err
	}
	var councilIDs []string
	for _, p := range cfg.Partners {
		if p.Kind == config.KindCouncil {
			councilIDs = append(councilIDs, p.ID)
		}
	}
	// Every decision of the partner endpoints' guard is counted in
	// iceshub_inbound_requests_total{partner,outcome}; signatures and
	// single-use token ids already seen are kept in the store, so that a
	// replay is refused after a restart too.
	guard, err := newAuthenticator(cfg, o.metrics, st, logger)
	if err != nil {
		return nil, err
	}
	fhirEdge := guard.Wrap(auth.OfKind(config.KindNHS), fhirHandler, fhiradapter.WriteAuthError)
	mux := http.NewServeMux()
	mux.Handle("/fhir", fhirEdge)
	mux.Handle("/fhir/", fhirEdge)
	// Webhooks: signed by the partner (HMAC), hardened (size, content
	// type, JSON limits), and each council only for itself.
	webhook := auth.Limits{MaxBodyBytes: 256 << 10}
	// A configuration without a provider, or without councils, serves
	// no webhook for them: check accepts it, and serve must run it.
	if providerID := providerOf(cfg); providerID != "" {
		providerEvents, err := provider.NewEventsHandler(provider.EventsConfig{PartnerID: providerID}, events, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle("POST "+provider.EventsPath, guard.Wrap(auth.OfKind(config.KindProvider),
			auth.Harden(webhook, providerEvents, auth.JSONError), auth.JSONError))
	}
	if len(councilIDs) > 0 {
		councilEvents, err := crm.NewEventsHandler(crm.EventsConfig{Councils: councilIDs}, events, logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(crm.EventsPattern, guard.Wrap(auth.All(auth.OfKind(config.KindCouncil), auth.PathPartner("council")),
			auth.Harden(webhook, councilEvents, auth.JSONError), auth.JSONError))
	}
	return mux, nil
}

// newServers adds the operator's endpoints and makes the HTTP servers:
// the operator's endpoints on the partners' listener, or, with
// server.ops_addr, on a listener of their own, the partners' then
// answering 404 for them.
func (h *Hub) newServers(mux *http.ServeMux, adminToken string, subjects subject.Key) error {
	cfg, o, st := h.cfg, h.ops, h.store
	tlsConfig, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	opsMux := mux
	if cfg.Server.OpsAddr != "" {
		opsMux = http.NewServeMux()
	}
	opsMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	opsMux.HandleFunc("GET /readyz", h.ready)
	held, err := NewHeldResolver(st, cfg, subjects, h.log)
	if err != nil {
		return err
	}
	o.mount(opsMux, adminToken, NewDLQActions(st, cfg), held, cfg.Stats.Rules(), h.publisher)
	if err := h.mountConsole(opsMux, held, NewDLQActions(st, cfg), subjects); err != nil {
		return err
	}
	h.server = newHTTPServer(cfg, o.handler(mux), tlsConfig, h.log)
	if cfg.Server.OpsAddr != "" {
		// The same certificate when the hub serves HTTPS (client
		// certificates are never asked for there: nothing on it takes a
		// partner's credentials).
		var opsTLS *tls.Config
		if tlsConfig != nil {
			opsTLS = tlsConfig.Clone()
			opsTLS.ClientAuth = tls.NoClientCert
			opsTLS.ClientCAs = nil
		}
		h.opsServer = newHTTPServer(cfg, o.handler(opsMux), opsTLS, h.log)
	}
	return nil
}

// newHTTPServer returns a server of handler with the configured limits:
// slow clients (slow-loris) are cut off by the timeouts; headers are
// bounded by MaxHeaderBytes (431 beyond).
func newHTTPServer(cfg *config.Config, handler http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// warnIfOpen logs when the data directory, which the hub did not create,
// lets others in: the hub creates it 0700 but leaves an existing one as
// the operator made it.
func warnIfOpen(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the data directory can be read or entered by others than its owner; chmod 0700 it", "data_dir", dir)
	}
}

// ReadyProbeEvery is how often, at most, readiness writes to the store:
// /readyz is unauthenticated, so its callers must not decide how often the
// hub writes and fsyncs.
const ReadyProbeEvery = time.Second

// readiness is the last store probe of /readyz, served to every call
// within ReadyProbeEvery of it.
type readiness struct {
	// now is the clock; nil means time.Now.
	now func() time.Time
	// mu is held while probing, so that callers arriving meanwhile wait
	// for its result rather than probe too.
	mu     sync.Mutex
	probed bool
	at     time.Time
	err    error
}

// storeWritable returns the result of the last probe when it is recent,
// else probes (the probe bounded by five seconds, whoever asked) and
// remembers the result; fresh says it probed.
func (r *readiness) storeWritable(probe func(context.Context) error) (fresh bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	if age := now().Sub(r.at); r.probed && age >= 0 && age < ReadyProbeEvery {
		return false, r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.err = probe(ctx)
	r.at, r.probed = now(), true
	return true, r.err
}

// ready answers readiness: the hub is not draining, its configuration is
// loaded, the router runs, and the store takes a durable write (a real
// write, not a read: a full disk or a read-only file must fail it), at
// most once a second (ReadyProbeEvery), the calls between served the last
// probe's result.
func (h *Hub) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	notReady := func(what string) { http.Error(w, "not ready: "+what, http.StatusServiceUnavailable) }
	switch {
	case h.ops.draining.Load():
		notReady("shutting down")
		return
	case h.cfg == nil || len(h.cfg.Partners) == 0:
		notReady("no configuration loaded")
		return
	case !h.router.IsRunning():
		notReady("router not running")
		return
	}
	if fresh, err := h.readiness.storeWritable(h.store.Probe); err != nil {
		if fresh {
			h.log.Warn("readiness: store not writable", "error", err)
		}
		notReady("store not writable")
		return
	}
	_, _ = w.Write([]byte("ready: config loaded, router running, store writable\n"))
}

// Run starts the router, then serves HTTP on ln until ctx ends; then it
// drains: intake answers 503 with Retry-After (the listener stays open, so
// senders are told to come back rather than refused a connection),
// readiness fails, deliveries in flight finish (send and record) and the
// queues stop taking new work, all within the shutdown timeout; then the
// HTTP server finishes the requests it has and the store closes. Messages
// accepted before the stop are on disk and are delivered by the next run.
func (h *Hub) Run(ctx context.Context, ln net.Listener) error {
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	routerErr := make(chan error, 1)
	go func() { routerErr <- h.router.Run(routerCtx) }()
	select {
	case <-h.router.Running():
	case err := <-routerErr:
		return fmt.Errorf("router: %w", err)
	}

	// Retention and the statistics to commissioners run beside the
	// router, on the same store, until shutdown; they must stop before the
	// store closes.
	stopBeside := h.startBeside(ctx)
	defer stopBeside()

	if h.server.TLSConfig != nil {
		ln = tls.NewListener(ln, h.server.TLSConfig)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- h.server.Serve(ln) }()
	if h.opsServer != nil {
		opsLn := h.opsListener
		if opsLn == nil {
			var err error
			if opsLn, err = h.listenOps(); err != nil {
				serveErr <- err
			}
		}
		if opsLn != nil {
			if h.opsServer.TLSConfig != nil {
				opsLn = tls.NewListener(opsLn, h.opsServer.TLSConfig)
			}
			// Logged under "addr", a key the log handler lets through.
			h.log.Info("operator endpoints (/healthz, /readyz, /metrics, /admin/) serving apart from the partners'", "addr", opsLn.Addr().String())
			go func() { serveErr <- h.opsServer.Serve(opsLn) }()
		}
	}
	h.log.Info("iceshub serving", "addr", ln.Addr().String(), "data_dir", h.cfg.Store.DataDir, "partners", len(h.cfg.Partners), "routes", len(h.cfg.Routes))

	var runErr error
	select {
	case <-ctx.Done():
		h.log.Info("stopping: no new requests; finishing in-flight work", "timeout", h.cfg.Server.ShutdownTimeout)
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	case err := <-routerErr:
		runErr = fmt.Errorf("router stopped: %w", err)
	}

	// The order of a stop: intake answers 503 at once; the partners'
	// listener closes as soon as the requests it is answering have their
	// answers (an intake commits in milliseconds), so that a load balancer
	// sends partners to another hub instead of to a hub answering 503;
	// then the queues stop taking deliveries, and those in flight have
	// what is left of shutdown_timeout to finish (the rest are offered
	// again on the next start). The partners' listener used to close only
	// after the router: a hung partner kept it answering 503 for as long
	// as its delivery stayed open. The operator's listener, when there is
	// one, stays up to the end, so /metrics shows the drain.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), h.cfg.Server.ShutdownTimeout)
	defer cancel()
	endDrain := h.ops.beginDrain(h.cfg.Server.ShutdownTimeout)
	defer endDrain()
	if err := h.server.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	h.log.Info("stopping: partner listener closed; finishing deliveries in flight")
	if err := h.router.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("router close: %w", err))
	}
	if h.opsServer != nil {
		if err := h.opsServer.Shutdown(shutdownCtx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("ops http shutdown: %w", err))
		}
	}
	endDrain()
	stopRouter()
	stopBeside()
	if err := h.store.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("store close: %w", err))
	}
	// Only once the store is closed may another hub or command have it.
	if err := h.lock.Release(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	h.log.Info("iceshub stopped")
	return runErr
}

// Close releases a hub that was built but never run. Its router is not
// closed: nothing of it started, and Watermill's Close waits for every
// handler added (from AddHandler, not Run) to stop, so it would wait out
// the whole shutdown timeout (20 s) for a serve that failed to listen.
func (h *Hub) Close() error {
	return errors.Join(h.store.Close(), h.lock.Release())
}
