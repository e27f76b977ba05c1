// Package bench is the harness of `iceshub bench`: it measures the whole
// hub, the real binary serving on its store, with partner stand-ins
// answering at once and a load generator posting realistic referral
// bundles over loopback HTTP, and reports throughput, latency, CPU and
// memory.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/democreds"
	"github.com/iceshub/iceshub/internal/ready"
	"github.com/iceshub/iceshub/internal/store"
)

// Options are what `iceshub bench` runs with (its flags).
type Options struct {
	// Scenario is steady, outage or backlog.
	Scenario string
	// Duration is how long to send.
	Duration time.Duration
	// Rate is the offered referrals per second across all senders (0: as
	// fast as the hub answers).
	Rate    float64
	Senders int
	// Outage is how long the provider is down (scenario outage).
	Outage time.Duration
	// Drain is how long to wait after sending for every delivery.
	Drain time.Duration
	// Fixtures is the directory of the referral bundles sent.
	Fixtures string
	// HubBinary is the iceshub binary to run ("": the running one).
	HubBinary string
	// Keep keeps the temporary directory.
	Keep bool
	// SampleEvery is how often the hub's memory is sampled.
	SampleEvery time.Duration
	// Profile, when set, is where the hub writes its CPU and allocation
	// profiles.
	Profile string
	// Preload is how many parked provider deliveries are written into the
	// store before the hub starts (scenario backlog).
	Preload int
	// Flow is FlowDefault or FlowF1.
	Flow string
	// OpenStore and StoreFile are the hub's store engine, named where the
	// command names it: the backlog is preloaded through OpenStore (which
	// creates the store in a data directory), and the report gives the
	// size of StoreFile and its write-ahead log.
	OpenStore func(dataDir string) (store.Engine, error)
	StoreFile func(dataDir string) string
	// Backend is BackendSQLite (one hub on the embedded store) or
	// BackendPostgres (Replicas hubs on one PostgreSQL database, created
	// for the run on the server PostgresURL names and dropped after it).
	Backend     string
	Replicas    int
	PostgresURL string
	// Lease is store.postgres.lease in the hubs' configuration (0: the
	// default).
	Lease time.Duration
	// CancelEvery: one accepted referral in CancelEvery (at random) is
	// followed, after its 200, by its cancellation (0: none).
	CancelEvery int
}

// Bench flows: which recipients each referral goes to.
const (
	// FlowDefault is the built-in configuration's routes: the provider,
	// the council of the person's area and the requester's NHS endpoint
	// (the referral's Task).
	FlowDefault = "default"
	// FlowF1 is DESIGN.md's flow F1 as the performance targets count it,
	// "delivered to provider and council": the built-in configuration
	// without its referral route to the requester, so that the hub does
	// the work the general-purpose engine and the bare forwarder it is
	// compared with were configured for.
	FlowF1 = "f1"
)

// Report is what a run measured; `iceshub bench --json` prints it.
type Report struct {
	Scenario string `json:"scenario"`
	// Flow is FlowDefault or FlowF1 (--flow); empty in reports written
	// before the option existed, which were all FlowDefault.
	Flow            string             `json:"flow,omitempty"`
	Machine         string             `json:"machine"`
	Senders         int                `json:"senders"`
	OfferedRate     float64            `json:"offeredRate"` // 0: as fast as possible
	SendSeconds     float64            `json:"sendSeconds"`
	Accepted        int64              `json:"accepted"`
	Refused         int64              `json:"refused"`
	Errors          int64              `json:"errors"`
	AcceptedPerSec  float64            `json:"acceptedPerSec"`
	DeliveredPerSec map[string]float64 `json:"deliveredPerSec"`
	Delivered       map[string]int64   `json:"delivered"`
	Undelivered     int64              `json:"undelivered"`
	// EndToEnd is from the sender's 200 to the last recipient's receipt.
	EndToEnd Percentiles `json:"endToEndMs"`
	// Sender is the sender's request latency.
	Sender Percentiles `json:"senderMs"`
	// DrainPerSec is the delivery rate to the provider after an outage
	// ended (scenario outage).
	DrainPerSec float64 `json:"drainPerSec,omitempty"`
	// RecoverySeconds is how long after the outage ended the provider
	// received its first delivery: the circuit breaker's open timeout
	// (30 s by default) before a trial call finds the partner back.
	RecoverySeconds float64 `json:"recoverySeconds,omitempty"`
	// IntakeDuringOutagePerSec is the accepted rate while the provider was
	// down and its deliveries piled up (scenarios outage and backlog).
	IntakeDuringOutagePerSec float64 `json:"intakeDuringOutagePerSec,omitempty"`
	// IntakeFirstQuarterPerSec and IntakeLastQuarterPerSec are the accepted
	// rates in the first and last quarter of the send (scenario backlog:
	// does intake slow as the backlog grows?), and BacklogAtEnd the
	// provider deliveries waiting when sending stopped.
	IntakeFirstQuarterPerSec float64 `json:"intakeFirstQuarterPerSec,omitempty"`
	IntakeLastQuarterPerSec  float64 `json:"intakeLastQuarterPerSec,omitempty"`
	BacklogAtEnd             int64   `json:"backlogAtEnd,omitempty"`
	// Preloaded is how many parked provider deliveries were written into
	// the store before the hub started (scenario backlog, --preload).
	Preloaded int `json:"preloaded,omitempty"`
	// HubCPUSeconds is the hub's CPU time over RunSeconds: the send and
	// the drain after it.
	HubCPUSeconds float64 `json:"hubCpuSeconds"`
	// LoadCPUSeconds is the CPU time of the bench process itself (the load
	// generator and the partner stand-ins) over the same span: what the
	// machine spent outside the hub.
	LoadCPUSeconds float64 `json:"loadCpuSeconds"`
	RunSeconds     float64 `json:"runSeconds"`
	HubPeakRSSMB   float64 `json:"hubPeakRssMb"`
	// HubRSSSamplesMB is the hub's RSS over the run, one per sample
	// interval, to show whether memory is flat.
	HubRSSSamplesMB []float64 `json:"hubRssSamplesMb"`
	DatabaseMB      float64   `json:"databaseMb"`

	// Backend and Replicas: the store the hubs ran on and how many hubs
	// (empty and 0 in reports written before the option: sqlite, 1).
	Backend  string `json:"backend,omitempty"`
	Replicas int    `json:"replicas,omitempty"`
	// Database is the PostgreSQL database made for the run.
	Database string `json:"database,omitempty"`
	// LeaseSeconds is store.postgres.lease as configured for the run.
	LeaseSeconds float64 `json:"leaseSeconds,omitempty"`
	// HubCPUPerReferralMs is HubCPUSeconds (summed over the replicas and
	// their lives) per accepted referral.
	HubCPUPerReferralMs float64         `json:"hubCpuPerReferralMs"`
	PerReplica          []ReplicaReport `json:"perReplica,omitempty"`
	// DistinctKeys and Repeats are, per recipient stand-in, the distinct
	// Idempotency-Keys it received and the receipts of a key it had
	// already received.
	DistinctKeys map[string]int64 `json:"distinctKeys"`
	Repeats      map[string]int64 `json:"repeats"`
	// Lost is how many messages answered 200 (referrals and cancellations)
	// some recipient had not received after the drain: it must be 0.
	Lost int64 `json:"lost"`
	// Cancellations sent after a referral's 200 (Options.CancelEvery) and
	// accepted; OrderViolations, per recipient, the cancellations received
	// before (or without) the order they cancel, of OrderChecked pairs
	// received both: it must be 0.
	CancellationsAccepted int64            `json:"cancellationsAccepted"`
	CancellationsRefused  int64            `json:"cancellationsRefused"`
	OrderViolations       map[string]int64 `json:"orderViolations"`
	OrderChecked          map[string]int64 `json:"orderChecked"`
	// Retries are the senders' tries again on the next replica after a
	// 503 (Unavailable of them, NoRetryAfter of those without a
	// Retry-After) or a connection error (ConnErrors); GaveUp the requests
	// given up after a minute of that.
	Retries      int64 `json:"retries"`
	Unavailable  int64 `json:"unavailable503"`
	NoRetryAfter int64 `json:"unavailableWithoutRetryAfter"`
	ConnErrors   int64 `json:"connectionErrors"`
	GaveUp       int64 `json:"gaveUp"`
	// PostgresCPUSeconds is the PostgreSQL server's CPU over the run (its
	// processes on this machine, whoever they served; 0 when not measured,
	// as across a restart).
	PostgresCPUSeconds float64 `json:"postgresCpuSeconds,omitempty"`
	// Events are what the scenario did (failover, pgrestart, pgcrash, rolling).
	Events []Event `json:"events,omitempty"`
}

// ReplicaReport is one hub of the run, over all its lives.
type ReplicaReport struct {
	Replica    int     `json:"replica"`
	Lives      int     `json:"lives"`
	CPUSeconds float64 `json:"cpuSeconds"`
	// Delivered is what its /metrics counted
	// (iceshub_deliveries_delivered_total, every partner and kind), read
	// before each life ended; Share its part of all replicas'.
	Delivered int64   `json:"delivered"`
	Share     float64 `json:"share"`
	Note      string  `json:"note,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q * float64(len(ds)-1))
		return float64(ds[i].Microseconds()) / 1000
	}
	return Percentiles{N: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(ds[len(ds)-1].Microseconds()) / 1000}
}

// benchBundles are the referral bundles the load generator sends, with
// weights: mostly one or three lines, sometimes twenty. ids are where each
// UUID of the body is, found once, so that a fresh copy costs the load
// generator a copy and a few new UUIDs rather than a regexp over the body
// for every request (the generator shares the hub's two cores).
type benchBundle struct {
	body   []byte
	weight int
	// ids holds, for each distinct UUID of body, the offsets where it
	// occurs; people the same for each NHS number of the test range.
	ids, people [][]int
	// sr is where the id of its ServiceRequest is (-1: not found).
	sr int
}

var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// An NHS number of the test range, as the fixtures write it.
	nhsNumberPattern = regexp.MustCompile(`\b999\d{7}\b`)
)

func newBenchBundle(body []byte, weight int) benchBundle {
	sr, err := srOffset(body)
	if err != nil {
		sr = -1
	}
	return benchBundle{body: body, weight: weight, ids: offsetsOf(body, uuidPattern), people: offsetsOf(body, nhsNumberPattern), sr: sr}
}

// offsetsOf returns, for each distinct match of p in body, the offsets
// where it occurs.
func offsetsOf(body []byte, p *regexp.Regexp) [][]int {
	var out [][]int
	index := map[string]int{}
	for _, loc := range p.FindAllIndex(body, -1) {
		old := string(body[loc[0]:loc[1]])
		i, ok := index[old]
		if !ok {
			i = len(out)
			index[old] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], loc[0])
	}
	return out
}

// nextPerson numbers the people of the bench's referrals: each referral is
// about someone else, as in real traffic, where every person adds to the
// disclosure record's index of who it names.
var nextPerson atomic.Int64

// testNHSNumber returns the nth valid NHS number of the test range
// (999 000 0000 to 999 999 9999); after 900,000 people it starts again.
// Numbers no check digit completes are skipped without two n sharing a
// number: of the ten last digits before the check digit at most one leaves
// no check digit (its weight, 2, steps the sum through ten different
// remainders mod 11), so each five-digit prefix has at least nine valid
// numbers, and n picks the (n mod 9)th of prefix n/9.
func testNHSNumber(n int64) [10]byte {
	n %= 900_000
	prefix, nth := n/9, n%9
	var d [10]byte
	copy(d[:], "999")
	for i := 7; i >= 3; i-- {
		d[i] = byte('0' + prefix%10)
		prefix /= 10
	}
	for last := byte(0); last <= 9; last++ {
		d[8] = '0' + last
		sum := 0
		for i := 0; i < 9; i++ {
			sum += int(d[i]-'0') * (10 - i)
		}
		check := (11 - sum%11) % 11
		if check == 10 {
			continue
		}
		if nth == 0 {
			d[9] = byte('0' + check)
			return d
		}
		nth--
	}
	panic("unreachable: every prefix has nine valid numbers")
}

// fresh returns a copy of b's body with every UUID in it replaced by a new
// one (the same old UUID by the same new one), so that each request is a
// distinct referral with distinct message, bundle and ServiceRequest ids,
// and the person's NHS number by another person's.
func (b benchBundle) fresh() []byte {
	out := bytes.Clone(b.body)
	for _, at := range b.people {
		nhs := testNHSNumber(nextPerson.Add(1))
		for _, i := range at {
			copy(out[i:i+10], nhs[:])
		}
	}
	for _, at := range b.ids {
		n := uuid.New()
		var text [36]byte
		hex.Encode(text[0:8], n[0:4])
		text[8] = '-'
		hex.Encode(text[9:13], n[4:6])
		text[13] = '-'
		hex.Encode(text[14:18], n[6:8])
		text[18] = '-'
		hex.Encode(text[19:23], n[8:10])
		text[23] = '-'
		hex.Encode(text[24:], n[10:])
		for _, i := range at {
			copy(out[i:i+36], text[:])
		}
	}
	return out
}

func loadBenchBundles(dir string) ([]benchBundle, error) {
	var out []benchBundle
	for _, f := range []struct {
		name   string
		weight int
	}{{"referral-1-line.json", 6}, {"referral-3-lines.json", 3}, {"referral-20-lines.json", 1}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("bench fixtures (run from the repository root or pass --fixtures): %w", err)
		}
		out = append(out, newBenchBundle(b, f.weight))
	}
	return out, nil
}

func pick(bs []benchBundle, r *rand.Rand) benchBundle {
	total := 0
	for _, b := range bs {
		total += b.weight
	}
	n := r.IntN(total)
	for _, b := range bs {
		if n < b.weight {
			return b
		}
		n -= b.weight
	}
	return bs[0]
}

// benchRun is one run of the bench: the hubs under test, their stand-ins,
// and what the senders measured.
type benchRun struct {
	o         Options
	bundles   []benchBundle
	cancelTpl *cancelTemplate
	dir       string
	stands    *standIns
	tokens    *benchTokens
	stderr    io.Writer
	cfgPath   string
	env       []string
	db        *pgDatabase
	replicas  []*replica
	// rr is the round robin over the replicas.
	rr atomic.Uint64

	accepted, refused, failures        atomic.Int64
	cancelAccepted, cancelRefused      atomic.Int64
	retries, unavailable, noRetryAfter atomic.Int64
	connErrors, gaveUp                 atomic.Int64
	mu                                 sync.Mutex
	senderLat                          []time.Duration
	acceptedAt                         map[string]time.Time
	// cancels maps the key of an accepted cancellation at the stand-ins
	// (its referral's correlation id and cancelSuffix) to its referral's.
	cancels map[string]string
	events  []Event
	// The provider's outage (scenarios outage and backlog), under mu.
	outageStart, outageEnd                     time.Time
	acceptedAtOutageStart, acceptedAtOutageEnd int64
}

// Run runs the hub binary against stand-ins, sends referrals for
// o.Duration as o.Scenario says, waits for them to be delivered, and
// reports.
func Run(ctx context.Context, o Options, stderr io.Writer) (*Report, error) {
	if o.Backend == "" {
		o.Backend, o.Replicas = BackendSQLite, max(o.Replicas, 1)
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	b, cleanup, err := newRun(ctx, o, stderr)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	rep := &Report{Scenario: o.Scenario, Flow: o.Flow, Machine: machine(), Senders: o.Senders, OfferedRate: o.Rate, Preloaded: o.Preload,
		Delivered: map[string]int64{}, DeliveredPerSec: map[string]float64{}, Backend: o.Backend, Replicas: o.Replicas, LeaseSeconds: b.leaseSeconds()}
	memDone, stopSampling := make(chan struct{}), make(chan struct{})
	var memSamples []float64
	go func() {
		defer close(memDone)
		memSamples = b.sampleMemory(ctx, stopSampling)
	}()
	loadCPUAtStart, _ := procCPU(os.Getpid())
	pgAtStart, pgCPUAtStart := postgresCPU()
	started := time.Now()
	waitScenario := b.runScenario(ctx, started)
	b.send(ctx, started, rep)
	waitScenario()
	b.waitDelivered(ctx, rep)
	rep.RunSeconds = time.Since(started).Seconds()
	if load, err := procCPU(os.Getpid()); err == nil {
		rep.LoadCPUSeconds = load - loadCPUAtStart
	}
	if pg, cpu := postgresCPU(); b.db != nil && pg != 0 && pg == pgAtStart {
		rep.PostgresCPUSeconds = cpu - pgCPUAtStart
	}
	close(stopSampling)
	<-memDone
	b.finish(rep)
	rep.HubRSSSamplesMB = memSamples
	if b.db != nil {
		rep.DatabaseMB, rep.Database = b.db.sizeMB(ctx), b.db.name
	} else {
		data := b.replicas[0].dataDir
		rep.DatabaseMB = fileMB(o.StoreFile(data)) + fileMB(o.StoreFile(data)+"-wal")
	}
	b.report(rep)
	if rep.Accepted == 0 {
		return rep, fmt.Errorf("bench: the hub accepted nothing (%d refused, %d errors); see %s", rep.Refused, rep.Errors, b.replicas[0].logPath)
	}
	return rep, nil
}

// newRun sets up a run: its directory, stand-ins, database (PostgreSQL)
// and hubs. cleanup undoes what was done, also when err is set.
func newRun(ctx context.Context, o Options, stderr io.Writer) (b *benchRun, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	bundles, err := loadBenchBundles(o.Fixtures)
	if err != nil {
		return nil, cleanup, err
	}
	b = &benchRun{o: o, bundles: bundles, stderr: stderr, acceptedAt: map[string]time.Time{}, cancels: map[string]string{}}
	if o.CancelEvery > 0 {
		if b.cancelTpl, err = loadCancelTemplate(o.Fixtures); err != nil {
			return nil, cleanup, err
		}
	}
	if b.dir, err = os.MkdirTemp("", "iceshub-bench-"); err != nil {
		return nil, cleanup, err
	}
	if o.Keep {
		fmt.Fprintf(stderr, "bench: directory %s kept\n", b.dir)
	} else {
		undo = append(undo, func() { os.RemoveAll(b.dir) })
	}
	b.stands = newStandIns()
	undo = append(undo, b.stands.close)
	if o.Backend == BackendPostgres {
		if b.db, err = createDatabase(ctx, o.PostgresURL); err != nil {
			return nil, cleanup, err
		}
		fmt.Fprintf(stderr, "bench: database %s created\n", b.db.name)
		undo = append(undo, func() { b.dropDatabase() })
	}
	undo = append(undo, b.stopAll)
	return b, cleanup, b.startHubs(ctx)
}

func (b *benchRun) dropDatabase() {
	if b.o.Keep {
		fmt.Fprintf(b.stderr, "bench: database %s kept\n", b.db.name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.db.drop(ctx); err != nil {
		fmt.Fprintf(b.stderr, "bench: drop database %s: %v\n", b.db.name, err)
	}
}

func (b *benchRun) leaseSeconds() float64 {
	if b.o.Backend != BackendPostgres {
		return 0
	}
	if b.o.Lease == 0 {
		return 30 // store.postgres.lease by default (docs/configuration.md)
	}
	return b.o.Lease.Seconds()
}

// startHubs writes the hubs' configuration (with its credentials),
// preloads a backlog when asked, and starts the hub binary once per
// replica, all at once.
func (b *benchRun) startHubs(ctx context.Context) error {
	o := b.o
	b.cfgPath = filepath.Join(b.dir, "iceshub.yaml")
	creds, err := writeBenchConfig(b.cfgPath, b.dir, b.stands, o.Flow, o.Backend, o.Lease)
	if err != nil {
		return err
	}
	b.tokens = &benchTokens{creds: creds}
	b.env = creds.PartnerEnv
	if b.db != nil {
		keys, err := sharedKeys(b.db)
		if err != nil {
			return err
		}
		b.env = append(append([]string(nil), b.env...), keys...)
	}
	if err := b.newReplicas(); err != nil {
		return err
	}
	if o.Preload > 0 {
		if err := preloadBacklog(ctx, o.OpenStore, b.replicas[0].dataDir, b.bundles[0].body, o.Preload, b.stderr); err != nil {
			return err
		}
	}
	errs := make([]error, len(b.replicas))
	var wg sync.WaitGroup
	for i, r := range b.replicas {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.start(ctx, r) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sampleMemory samples the hubs' resident memory, summed over the
// replicas, every o.SampleEvery until stop or ctx ends.
func (b *benchRun) sampleMemory(ctx context.Context, stop <-chan struct{}) []float64 {
	var samples []float64
	t := time.NewTicker(b.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sum := 0.0
			for _, r := range b.replicas {
				if rss, _, err := procMemory(r.current().pid()); err == nil {
					sum += rss
				}
			}
			samples = append(samples, sum)
		case <-stop:
			return samples
		case <-ctx.Done():
			return samples
		}
	}
}

// send runs the senders for o.Duration, taking the provider down as the
// scenario says, and notes on rep what the send alone tells.
func (b *benchRun) send(ctx context.Context, started time.Time, rep *Report) {
	o := b.o
	// Pacing: with a rate, referral k is due at k/rate after the start, and
	// the next free sender sends it then, or at once when it is late. A
	// shared ticker would drop the ticks that come while every sender is
	// busy or the machine is loaded, and offer less than the rate asked.
	var due atomic.Int64
	interval := time.Duration(0)
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	sendCtx, stopSending := context.WithTimeout(ctx, o.Duration)
	defer stopSending()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Senders * 2}, Timeout: 30 * time.Second}
	if o.Scenario == "backlog" {
		b.stands.setDown("provider", true)
		b.outageStart = started
	}
	if o.Scenario == "outage" {
		go b.outage(ctx, sendCtx)
	}
	var wg sync.WaitGroup
	for i := 0; i < o.Senders; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			b.sender(ctx, sendCtx, client, seed, started, interval, &due)
		}(uint64(i) + 1)
	}
	wg.Wait()
	sendDone := time.Now()
	rep.SendSeconds = sendDone.Sub(started).Seconds()
	if o.Scenario == "backlog" {
		b.mu.Lock()
		rep.BacklogAtEnd = int64(b.stands.missing(b.acceptedAt, "provider"))
		q := sendDone.Sub(started) / 4
		var first, last int
		for _, at := range b.acceptedAt {
			switch {
			case at.Before(started.Add(q)):
				first++
			case !at.Before(sendDone.Add(-q)):
				last++
			}
		}
		b.outageEnd, b.acceptedAtOutageStart, b.acceptedAtOutageEnd = time.Now(), 0, b.accepted.Load()
		b.mu.Unlock()
		rep.IntakeFirstQuarterPerSec, rep.IntakeLastQuarterPerSec = float64(first)/q.Seconds(), float64(last)/q.Seconds()
		b.stands.setDown("provider", false)
	}
}

// outage takes the provider down a quarter into the send, for o.Outage.
func (b *benchRun) outage(ctx, sendCtx context.Context) {
	select {
	case <-time.After(b.o.Duration / 4):
	case <-sendCtx.Done():
		return
	}
	b.mu.Lock()
	b.outageStart, b.acceptedAtOutageStart = time.Now(), b.accepted.Load()
	b.mu.Unlock()
	b.stands.setDown("provider", true)
	select {
	case <-time.After(b.o.Outage):
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.outageEnd, b.acceptedAtOutageEnd = time.Now(), b.accepted.Load()
	b.mu.Unlock()
	b.stands.setDown("provider", false)
}

// sender sends referrals until sendCtx ends, paced by due when interval is
// set, and counts each answer; with o.CancelEvery it follows some accepted
// referrals with their cancellation at once.
func (b *benchRun) sender(ctx, sendCtx context.Context, client *http.Client, seed uint64, started time.Time, interval time.Duration, due *atomic.Int64) {
	r := rand.New(rand.NewPCG(seed, 7))
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		if interval > 0 {
			at := started.Add(time.Duration(due.Add(1)-1) * interval)
			wait.Reset(time.Until(at))
			select {
			case <-wait.C:
			case <-sendCtx.Done():
				return
			}
		}
		if sendCtx.Err() != nil {
			return
		}
		bundle := pick(b.bundles, r)
		body := bundle.fresh()
		corr := uuid.NewString()
		t0 := time.Now()
		status, err := b.post(ctx, client, body, corr)
		lat := time.Since(t0)
		switch {
		case err != nil:
			b.failures.Add(1)
		case status == http.StatusOK:
			b.accepted.Add(1)
			b.mu.Lock()
			b.senderLat = append(b.senderLat, lat)
			b.acceptedAt[corr] = time.Now()
			b.mu.Unlock()
			if b.cancelTpl != nil && bundle.sr >= 0 && r.IntN(b.o.CancelEvery) == 0 {
				b.cancel(ctx, client, bundle, body, corr)
			}
		default:
			b.refused.Add(1)
		}
	}
}

// cancel sends the cancellation of the accepted referral body (a fresh
// copy of rb, sent with correlation id order).
func (b *benchRun) cancel(ctx context.Context, client *http.Client, rb benchBundle, body []byte, order string) {
	status, err := b.post(ctx, client, b.cancelTpl.cancellationOf(rb, body), order)
	if err != nil || status != http.StatusOK {
		b.cancelRefused.Add(1)
		if status != 0 {
			fmt.Fprintf(b.stderr, "bench: a cancellation was answered %d\n", status)
		}
		return
	}
	b.cancelAccepted.Add(1)
	b.mu.Lock()
	b.cancels[order+cancelSuffix] = order
	b.mu.Unlock()
}

// giveUpAfter is how long a sender keeps trying one request on the
// replicas before it counts it as an error.
const giveUpAfter = time.Minute

// post sends body to the next replica of the round robin; on a 503 or a
// connection error it sends the same body again to the next replica, as a
// client behind a load balancer does, pausing for the Retry-After (at most
// a second) once it has tried them all, until it has a final answer or
// giveUpAfter has passed.
func (b *benchRun) post(ctx context.Context, client *http.Client, body []byte, corr string) (int, error) {
	n := uint64(len(b.replicas))
	next := b.rr.Add(1)
	deadline := time.Now().Add(giveUpAfter)
	for try := uint64(0); ; try++ {
		r := b.replicas[(next+try)%n]
		status, retryAfter, err := postReferral(ctx, client, r.base, body, corr, b.tokens)
		switch {
		case err == nil && status != http.StatusServiceUnavailable:
			return status, nil
		case err != nil:
			b.connErrors.Add(1)
		default:
			b.unavailable.Add(1)
			if retryAfter == "" {
				b.noRetryAfter.Add(1)
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			b.gaveUp.Add(1)
			if err == nil {
				err = fmt.Errorf("bench: %d after %s of tries", status, giveUpAfter)
			}
			return status, err
		}
		b.retries.Add(1)
		if (try+1)%n == 0 {
			pause := 100 * time.Millisecond
			if s, perr := strconv.Atoi(retryAfter); perr == nil {
				pause = min(time.Duration(s)*time.Second, time.Second)
			}
			time.Sleep(pause)
		}
	}
}

var cancelKinds = []string{"provider", "council", "nhs"}

// orderKinds are the recipients of every referral in the run's flow.
func (b *benchRun) orderKinds() []string {
	if b.o.Flow == FlowF1 {
		return []string{"provider", "council"}
	}
	return cancelKinds
}

// waitDelivered waits until every accepted referral and cancellation
// reached each of its recipients, or o.Drain has passed; what has not is
// lost.
func (b *benchRun) waitDelivered(ctx context.Context, rep *Report) {
	deadline := time.Now().Add(b.o.Drain)
	for {
		b.mu.Lock()
		pending := len(b.pendingIDs())
		undelivered := b.stands.missing(b.acceptedAt, "provider", "council")
		b.mu.Unlock()
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			rep.Undelivered, rep.Lost = int64(undelivered), int64(pending)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report fills in rep from what the senders and the stand-ins saw.
func (b *benchRun) report(rep *Report) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rep.Accepted, rep.Refused, rep.Errors = b.accepted.Load(), b.refused.Load(), b.failures.Load()
	rep.AcceptedPerSec = float64(rep.Accepted) / rep.SendSeconds
	rep.Sender = percentiles(b.senderLat)
	rep.HubCPUPerReferralMs = 1000 * rep.HubCPUSeconds / float64(max(rep.Accepted, 1))
	var e2e []time.Duration
	for corr, at := range b.acceptedAt {
		if last, ok := b.stands.lastReceipt(corr, "provider", "council"); ok {
			e2e = append(e2e, last.Sub(at))
		}
	}
	rep.EndToEnd = percentiles(e2e)
	rep.DistinctKeys, rep.Repeats, rep.OrderViolations, rep.OrderChecked = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, p := range []string{"provider", "council", "nhs"} {
		n, first, last := b.stands.count(p)
		rep.Delivered[p] = n
		if span := last.Sub(first).Seconds(); n > 1 && span > 0 {
			rep.DeliveredPerSec[p] = float64(n) / span
		}
		rep.DistinctKeys[p], rep.Repeats[p] = b.stands.keys(p)
		rep.OrderViolations[p], rep.OrderChecked[p] = b.stands.orderViolations(p, b.cancels)
	}
	rep.CancellationsAccepted, rep.CancellationsRefused = b.cancelAccepted.Load(), b.cancelRefused.Load()
	rep.Retries, rep.Unavailable, rep.NoRetryAfter = b.retries.Load(), b.unavailable.Load(), b.noRetryAfter.Load()
	rep.ConnErrors, rep.GaveUp = b.connErrors.Load(), b.gaveUp.Load()
	b.movedOn()
	rep.Events = b.events
	if (b.o.Scenario == "outage" || b.o.Scenario == "backlog") && !b.outageEnd.IsZero() {
		if d := b.outageEnd.Sub(b.outageStart).Seconds(); d > 0 {
			rep.IntakeDuringOutagePerSec = float64(b.acceptedAtOutageEnd-b.acceptedAtOutageStart) / d
		}
		rate, first := b.stands.rateAfter("provider", b.outageEnd)
		rep.DrainPerSec, rep.RecoverySeconds = rate, first.Seconds()
	}
}

// postReferral posts body once to the hub at base and returns its status
// and Retry-After.
func postReferral(ctx context.Context, c *http.Client, base string, body []byte, corr string, tokens *benchTokens) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", fhiradapter.ContentType)
	req.Header.Set("X-Request-ID", uuid.NewString())
	req.Header.Set("X-Correlation-ID", corr)
	tok, err := tokens.get()
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// writeBenchConfig writes the built-in configuration with every partner
// pointed at its stand-in and the NHS partner authenticating with a bearer
// JWT, as in production, whose key it returns. With FlowF1 it leaves out
// the route of referrals to the requester.
func writeBenchConfig(path, dir string, s *standIns, flow, backend string, lease time.Duration) (*democreds.Credentials, error) {
	cfg, err := config.Default()
	if err != nil {
		return nil, err
	}
	creds, err := democreds.Add(cfg, dir)
	if err != nil {
		return nil, err
	}
	nhsCfg, ok := cfg.PartnerByID(creds.NHSID)
	if !ok {
		return nil, errors.New("bench: the configuration has no nhs partner to send as")
	}
	b := config.DefaultYAML()
	for _, p := range cfg.Partners {
		url, ok := s.urls[p.Kind]
		if !ok {
			return nil, fmt.Errorf("bench has no stand-in for partner kind %q", p.Kind)
		}
		b = bytes.ReplaceAll(b, []byte("base_url: "+p.BaseURL), []byte("base_url: "+url))
	}
	j := nhsCfg.Inbound.JWT
	inbound := fmt.Sprintf(`    inbound:
      mode: jwt
      jwt: {issuer: %q, audience: %q, algorithm: %s, key_file: %q}
      rate: {per_second: 100000, burst: 100000}
`, j.Issuer, j.Audience, j.Algorithm, j.KeyFile)
	anchor := []byte("- id: " + creds.NHSID + "\n")
	i := bytes.Index(b, anchor)
	if i < 0 {
		return nil, fmt.Errorf("bench: partner %q not found in the built-in configuration", creds.NHSID)
	}
	// Insert the block after the partner's last line (the next blank line).
	end := bytes.Index(b[i:], []byte("\n\n"))
	if end < 0 {
		return nil, errors.New("bench: unexpected layout of the built-in configuration")
	}
	at := i + end + 1
	b = append(b[:at:at], append([]byte(inbound), b[at:]...)...)
	if flow == FlowF1 {
		if b, err = withoutRoute(b, "referral", "requester"); err != nil {
			return nil, fmt.Errorf("bench: flow %s: %w", flow, err)
		}
	}
	if backend == BackendPostgres {
		if b, err = onPostgres(b, lease); err != nil {
			return nil, err
		}
	}
	return creds, os.WriteFile(path, b, 0o600)
}

// sqliteBackend is the line of the built-in configuration that names the
// embedded store.
var sqliteBackend = regexp.MustCompile(`(?m)^  backend: sqlite\b.*$`)

// onPostgres returns the configuration b with store.backend postgres and,
// when lease is set, store.postgres.lease; the URL is in the environment
// (store.postgres.url_env, ICESHUB_POSTGRES_URL by default).
func onPostgres(b []byte, lease time.Duration) ([]byte, error) {
	if len(sqliteBackend.FindAllIndex(b, -1)) != 1 {
		return nil, errors.New("bench: the built-in configuration has no one line store.backend: sqlite")
	}
	with := "  backend: postgres"
	if lease > 0 {
		with += fmt.Sprintf("\n  postgres:\n    lease: %s", lease)
	}
	b = sqliteBackend.ReplaceAll(b, []byte(with))
	// The built-in configuration's poll interval is the embedded store's;
	// on PostgreSQL the hubs notify each other, and the backend's own
	// default (500ms) applies.
	return pollInterval.ReplaceAll(b, nil), nil
}

// pollInterval is the built-in configuration's store.poll_interval line.
var pollInterval = regexp.MustCompile(`(?m)^  poll_interval: .*\n`)

// withoutRoute returns the configuration b without its route of message to
// to, which it must have.
func withoutRoute(b []byte, message, to string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the configuration is not a mapping")
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "routes" {
			continue
		}
		list := top.Content[i+1]
		for j, r := range list.Content {
			var rt config.Route
			if err := r.Decode(&rt); err != nil {
				return nil, fmt.Errorf("route %d: %w", j+1, err)
			}
			if rt.Message == message && rt.To == to {
				list.Content = append(list.Content[:j:j], list.Content[j+1:]...)
				return yaml.Marshal(&doc)
			}
		}
	}
	return nil, fmt.Errorf("no route of %s to %s", message, to)
}

// benchTokens hands out the NHS partner's bearer token, renewed before it
// expires, so that the senders measure the hub rather than signing.
type benchTokens struct {
	creds *democreds.Credentials
	mu    sync.Mutex
	tok   string
	until time.Time
}

func (t *benchTokens) get() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Now().Before(t.until) {
		return t.tok, nil
	}
	tok, err := t.creds.Bearer()
	if err != nil {
		return "", err
	}
	t.tok, t.until = tok, time.Now().Add(2*time.Minute)
	return tok, nil
}

// hubProcess is the hub under test, a child process.
type hubProcess struct {
	cmd     *exec.Cmd
	base    string
	logPath string
	exited  chan struct{}
	once    sync.Once
}

// startHubProcess starts the hub binary serving on addr, logging to the end
// of logPath, and waits for it to be ready.
func startHubProcess(ctx context.Context, binary, cfgPath, dataDir, logPath, addr string, env []string, extra ...string) (*hubProcess, error) {
	if binary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: find own binary: %w", err)
		}
		binary = self
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"serve", "--config", cfgPath, "--addr", addr, "--data", dataDir, "--log-format", "json"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("bench: start hub: %w", err)
	}
	h := &hubProcess{cmd: cmd, base: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(h.exited) }()
	if err := ready.Wait(ctx, h.base, 20*time.Second); err != nil {
		h.stop()
		return nil, fmt.Errorf("bench: %w (log: %s)", err, logPath)
	}
	return h, nil
}

func (h *hubProcess) pid() int { return h.cmd.Process.Pid }

// stop ends the hub with SIGTERM and waits for it.
func (h *hubProcess) stop() {
	h.once.Do(func() {
		_ = h.cmd.Process.Signal(os.Interrupt)
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
	})
}

// procCPU returns the user and system CPU seconds of a process.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// procMemory returns a process's resident set and its peak, in MB.
func procMemory(pid int) (rss, peak float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak, sc.Err()
}

func fileMB(path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(st.Size()) / (1 << 20)
}

func machine() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	cores := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") && model == "" {
			if i := strings.IndexByte(line, ':'); i >= 0 {
				model = strings.TrimSpace(line[i+1:])
			}
		}
		if strings.HasPrefix(line, "processor") {
			cores++
		}
	}
	return fmt.Sprintf("%s, %d cores", model, cores)
}

// Print writes r as a table, as `iceshub bench` prints it.
func Print(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\t(%d senders, offered %s)\n", r.Scenario, r.Senders, offered(r.OfferedRate))
	printBackend(tw, r)
	fmt.Fprintf(tw, "flow\t%s\t%s\n", r.Flow, flowRecipients(r.Flow))
	fmt.Fprintf(tw, "machine\t%s\t\n", r.Machine)
	fmt.Fprintf(tw, "accepted\t%d in %.1fs\t%.0f/s (refused %d, errors %d)\n", r.Accepted, r.SendSeconds, r.AcceptedPerSec, r.Refused, r.Errors)
	for _, p := range []string{"provider", "council", "nhs"} {
		if p == "nhs" && r.Flow == FlowF1 {
			fmt.Fprintf(tw, "delivered to %s\t-\t(not routed in flow %s)\n", p, r.Flow)
			continue
		}
		fmt.Fprintf(tw, "delivered to %s\t%d\t%.0f/s\n", p, r.Delivered[p], r.DeliveredPerSec[p])
	}
	fmt.Fprintf(tw, "undelivered after drain\t%d\t\n", r.Undelivered)
	fmt.Fprintf(tw, "end to end (ms)\tp50 %.1f  p95 %.1f  p99 %.1f  max %.1f\t(accept -> last of provider and council)\n", r.EndToEnd.P50, r.EndToEnd.P95, r.EndToEnd.P99, r.EndToEnd.Max)
	fmt.Fprintf(tw, "sender latency (ms)\tp50 %.1f  p95 %.1f  p99 %.1f  max %.1f\t\n", r.Sender.P50, r.Sender.P95, r.Sender.P99, r.Sender.Max)
	printChecks(tw, r)
	if r.Scenario == "outage" || r.Scenario == "backlog" {
		fmt.Fprintf(tw, "intake while provider down\t%.0f/s\t\n", r.IntakeDuringOutagePerSec)
		fmt.Fprintf(tw, "provider drain after outage\t%.0f/s\t(from the first delivery after the outage to the last; the first came %.1fs after it ended)\n", r.DrainPerSec, r.RecoverySeconds)
	}
	if r.Scenario == "backlog" {
		if r.Preloaded > 0 {
			fmt.Fprintf(tw, "preloaded backlog\t%d\t(parked provider deliveries written before the hub started)\n", r.Preloaded)
		}
		fmt.Fprintf(tw, "intake first / last quarter\t%.0f/s / %.0f/s\t(backlog of %d provider deliveries at the end)\n",
			r.IntakeFirstQuarterPerSec, r.IntakeLastQuarterPerSec, r.BacklogAtEnd)
	}
	fmt.Fprintf(tw, "hub CPU\t%.1fs\t(%.2f cores busy over the %.0fs of send and drain; %.2f ms per accepted referral%s)\n",
		r.HubCPUSeconds, r.HubCPUSeconds/max(r.RunSeconds, 1e-9), r.RunSeconds, 1000*r.HubCPUSeconds/float64(max(r.Accepted, 1)), allReplicas(r))
	for _, p := range r.PerReplica {
		if len(r.PerReplica) > 1 || p.Lives > 1 {
			fmt.Fprintf(tw, "  replica %d\t%.1fs CPU, %d deliveries\t(%.0f%% of all; %d lives) %s\n", p.Replica, p.CPUSeconds, p.Delivered, 100*p.Share, p.Lives, p.Note)
		}
	}
	if r.PostgresCPUSeconds > 0 {
		fmt.Fprintf(tw, "PostgreSQL CPU\t%.1fs\t(%.2f ms per accepted referral; the server's processes, whoever they served)\n", r.PostgresCPUSeconds, 1000*r.PostgresCPUSeconds/float64(max(r.Accepted, 1)))
	}
	fmt.Fprintf(tw, "load generator and stand-ins CPU\t%.1fs\t(%.2f cores; they share the machine with the hub)\n", r.LoadCPUSeconds, r.LoadCPUSeconds/max(r.RunSeconds, 1e-9))
	fmt.Fprintf(tw, "hub peak RSS\t%.0f MB\t\n", r.HubPeakRSSMB)
	fmt.Fprintf(tw, "database\t%.1f MB\t\n", r.DatabaseMB)
	return tw.Flush()
}

func printBackend(tw io.Writer, r *Report) {
	if r.Backend == "" {
		return
	}
	lease := ""
	if r.LeaseSeconds > 0 {
		lease = fmt.Sprintf("; store.postgres.lease %gs", r.LeaseSeconds)
	}
	fmt.Fprintf(tw, "backend\t%s\t(%d replicas%s)\n", r.Backend, r.Replicas, lease)
}

// printChecks prints what must be 0 (lost, repeats, order violations) and
// what the senders had to retry, and the scenario's events.
func printChecks(tw io.Writer, r *Report) {
	if r.DistinctKeys == nil {
		return
	}
	fmt.Fprintf(tw, "lost\t%d\t(answered 200, not received by every recipient after the drain)\n", r.Lost)
	for _, p := range []string{"provider", "council", "nhs"} {
		fmt.Fprintf(tw, "keys at %s\t%d distinct, %d repeated\t\n", p, r.DistinctKeys[p], r.Repeats[p])
	}
	if r.CancellationsAccepted+r.CancellationsRefused > 0 {
		fmt.Fprintf(tw, "cancellations\t%d accepted, %d refused\t\n", r.CancellationsAccepted, r.CancellationsRefused)
		for _, p := range []string{"provider", "council", "nhs"} {
			fmt.Fprintf(tw, "order violations at %s\t%d\t(cancellation before its order; %d pairs received)\n", p, r.OrderViolations[p], r.OrderChecked[p])
		}
	}
	fmt.Fprintf(tw, "sender retries\t%d\t(503: %d, %d of them without Retry-After; connection errors: %d; given up: %d)\n",
		r.Retries, r.Unavailable, r.NoRetryAfter, r.ConnErrors, r.GaveUp)
	for _, e := range r.Events {
		extra := ""
		if e.Seconds > 0 {
			extra = fmt.Sprintf(" (took %.1fs)", e.Seconds)
		}
		if e.restart {
			extra += fmt.Sprintf(" (%d accepted during it; the first 200 after it %.2fs later)", e.AcceptedDuring, e.FirstAcceptedAfter)
		}
		if e.Outstanding > 0 {
			extra += fmt.Sprintf(" (%d messages outstanding; the last delivered %.1fs later)", e.Outstanding, e.MovedOnSeconds)
		}
		fmt.Fprintf(tw, "  at %.1fs\t%s%s\t\n", e.At, e.What, extra)
	}
}

func allReplicas(r *Report) string {
	if r.Replicas > 1 {
		return ", summed over the replicas"
	}
	return ""
}

func flowRecipients(flow string) string {
	if flow == FlowF1 {
		return "(each referral to the provider and its council)"
	}
	return "(each referral to the provider, its council and the requester's NHS endpoint)"
}

func offered(rate float64) string {
	if rate == 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%.0f/s", rate)
}
