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
	"net"
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
}

var (
	uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// An NHS number of the test range, as the fixtures write it.
	nhsNumberPattern = regexp.MustCompile(`\b999\d{7}\b`)
)

func newBenchBundle(body []byte, weight int) benchBundle {
	return benchBundle{body: body, weight: weight, ids: offsetsOf(body, uuidPattern), people: offsetsOf(body, nhsNumberPattern)}
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

// benchRun is one run of the bench: the hub under test, its stand-ins,
// and what the senders measured.
type benchRun struct {
	o       Options
	bundles []benchBundle
	dir     string
	stands  *standIns
	hub     *hubProcess
	tokens  *benchTokens

	accepted, refused, failures atomic.Int64
	mu                          sync.Mutex
	senderLat                   []time.Duration
	acceptedAt                  map[string]time.Time
	// The provider's outage (scenarios outage and backlog), under mu.
	outageStart, outageEnd                     time.Time
	acceptedAtOutageStart, acceptedAtOutageEnd int64
}

// Run runs the hub binary against stand-ins, sends referrals for
// o.Duration as o.Scenario says, waits for them to be delivered, and
// reports.
func Run(ctx context.Context, o Options, stderr io.Writer) (*Report, error) {
	bundles, err := loadBenchBundles(o.Fixtures)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "iceshub-bench-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		fmt.Fprintf(stderr, "bench: directory %s kept\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b := &benchRun{o: o, bundles: bundles, dir: dir, stands: newStandIns(), acceptedAt: map[string]time.Time{}}
	defer b.stands.close()
	if err := b.startHub(ctx, stderr); err != nil {
		return nil, err
	}
	defer b.hub.stop()

	rep := &Report{Scenario: o.Scenario, Flow: o.Flow, Machine: machine(), Senders: o.Senders, OfferedRate: o.Rate, Preloaded: o.Preload,
		Delivered: map[string]int64{}, DeliveredPerSec: map[string]float64{}}
	memDone := make(chan struct{})
	var memSamples []float64
	go func() {
		defer close(memDone)
		memSamples = b.sampleMemory(ctx)
	}()
	loadCPUAtStart, _ := procCPU(os.Getpid())
	started := time.Now()
	b.send(ctx, started, rep)
	b.waitDelivered(ctx, rep)
	rep.RunSeconds = time.Since(started).Seconds()
	if cpu, err := procCPU(b.hub.pid()); err == nil {
		rep.HubCPUSeconds = cpu
	}
	if load, err := procCPU(os.Getpid()); err == nil {
		rep.LoadCPUSeconds = load - loadCPUAtStart
	}
	if _, peak, err := procMemory(b.hub.pid()); err == nil {
		rep.HubPeakRSSMB = peak
	}
	b.hub.stop()
	<-memDone
	rep.HubRSSSamplesMB = memSamples
	rep.DatabaseMB = fileMB(o.StoreFile(filepath.Join(dir, "data"))) + fileMB(o.StoreFile(filepath.Join(dir, "data"))+"-wal")
	b.report(rep)
	if rep.Accepted == 0 {
		return rep, fmt.Errorf("bench: the hub accepted nothing (%d refused, %d errors); see %s", rep.Refused, rep.Errors, b.hub.logPath)
	}
	return rep, nil
}

// startHub writes the hub's configuration (with its credentials), preloads
// a backlog when asked, and starts the hub binary.
func (b *benchRun) startHub(ctx context.Context, stderr io.Writer) error {
	o := b.o
	cfgPath := filepath.Join(b.dir, "iceshub.yaml")
	creds, err := writeBenchConfig(cfgPath, b.dir, b.stands, o.Flow)
	if err != nil {
		return err
	}
	b.tokens = &benchTokens{creds: creds}
	var extra []string
	if o.Profile != "" {
		if err := os.MkdirAll(o.Profile, 0o755); err != nil {
			return err
		}
		extra = []string{"--cpuprofile", filepath.Join(o.Profile, "cpu.pprof"), "--memprofile", filepath.Join(o.Profile, "allocs.pprof")}
	}
	if o.Preload > 0 {
		if err := preloadBacklog(ctx, o.OpenStore, filepath.Join(b.dir, "data"), b.bundles[0].body, o.Preload, stderr); err != nil {
			return err
		}
	}
	b.hub, err = startHubProcess(ctx, o.HubBinary, cfgPath, filepath.Join(b.dir, "data"), filepath.Join(b.dir, "hub.log"), creds.PartnerEnv, extra...)
	return err
}

// sampleMemory samples the hub's resident memory every o.SampleEvery until
// it exits or ctx ends.
func (b *benchRun) sampleMemory(ctx context.Context) []float64 {
	var samples []float64
	t := time.NewTicker(b.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if rss, _, err := procMemory(b.hub.pid()); err == nil {
				samples = append(samples, rss)
			}
		case <-b.hub.exited:
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
// set, and counts each answer.
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
		body := pick(b.bundles, r).fresh()
		corr := uuid.NewString()
		t0 := time.Now()
		status, err := postReferral(ctx, client, b.hub.base, body, corr, b.tokens)
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
		default:
			b.refused.Add(1)
		}
	}
}

// waitDelivered waits until every accepted referral reached provider and
// council, or o.Drain has passed.
func (b *benchRun) waitDelivered(ctx context.Context, rep *Report) {
	deadline := time.Now().Add(b.o.Drain)
	for {
		b.mu.Lock()
		pending := b.stands.missing(b.acceptedAt, "provider", "council")
		b.mu.Unlock()
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			rep.Undelivered = int64(pending)
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
	var e2e []time.Duration
	for corr, at := range b.acceptedAt {
		if last, ok := b.stands.lastReceipt(corr, "provider", "council"); ok {
			e2e = append(e2e, last.Sub(at))
		}
	}
	rep.EndToEnd = percentiles(e2e)
	for _, p := range []string{"provider", "council", "nhs"} {
		n, first, last := b.stands.count(p)
		rep.Delivered[p] = n
		if span := last.Sub(first).Seconds(); n > 1 && span > 0 {
			rep.DeliveredPerSec[p] = float64(n) / span
		}
	}
	if b.o.Scenario != "steady" && !b.outageEnd.IsZero() {
		if d := b.outageEnd.Sub(b.outageStart).Seconds(); d > 0 {
			rep.IntakeDuringOutagePerSec = float64(b.acceptedAtOutageEnd-b.acceptedAtOutageStart) / d
		}
		rate, first := b.stands.rateAfter("provider", b.outageEnd)
		rep.DrainPerSec, rep.RecoverySeconds = rate, first.Seconds()
	}
}

func postReferral(ctx context.Context, c *http.Client, base string, body []byte, corr string, tokens *benchTokens) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", fhiradapter.ContentType)
	req.Header.Set("X-Request-ID", uuid.NewString())
	req.Header.Set("X-Correlation-ID", corr)
	tok, err := tokens.get()
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// writeBenchConfig writes the built-in configuration with every partner
// pointed at its stand-in and the NHS partner authenticating with a bearer
// JWT, as in production, whose key it returns. With FlowF1 it leaves out
// the route of referrals to the requester.
func writeBenchConfig(path, dir string, s *standIns, flow string) (*democreds.Credentials, error) {
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
	return creds, os.WriteFile(path, b, 0o600)
}

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

func startHubProcess(ctx context.Context, binary, cfgPath, dataDir, logPath string, env []string, extra ...string) (*hubProcess, error) {
	if binary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: find own binary: %w", err)
		}
		binary = self
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	logFile, err := os.Create(logPath)
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
	if r.Scenario != "steady" {
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
	fmt.Fprintf(tw, "hub CPU\t%.1fs\t(%.2f cores busy over the %.0fs of send and drain; %.2f ms per accepted referral)\n",
		r.HubCPUSeconds, r.HubCPUSeconds/max(r.RunSeconds, 1e-9), r.RunSeconds, 1000*r.HubCPUSeconds/float64(max(r.Accepted, 1)))
	fmt.Fprintf(tw, "load generator and stand-ins CPU\t%.1fs\t(%.2f cores; they share the machine with the hub)\n", r.LoadCPUSeconds, r.LoadCPUSeconds/max(r.RunSeconds, 1e-9))
	fmt.Fprintf(tw, "hub peak RSS\t%.0f MB\t\n", r.HubPeakRSSMB)
	fmt.Fprintf(tw, "database\t%.1f MB\t\n", r.DatabaseMB)
	return tw.Flush()
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
