package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backends of the hub under test (Options.Backend).
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
	// DefaultPostgresURL is the PostgreSQL server the bench creates its
	// database on when neither --postgres-url nor ICESHUB_POSTGRES_URL says.
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres"
)

// Check reports what is wrong with o's backend, replicas and scenario.
func (o Options) Check() error {
	switch o.Backend {
	case BackendSQLite:
		if o.Replicas != 1 {
			return fmt.Errorf("--replicas %d: several hubs need --backend postgres", o.Replicas)
		}
	case BackendPostgres:
		if o.Replicas < 1 {
			return fmt.Errorf("--replicas %d: want at least 1", o.Replicas)
		}
		if o.Preload > 0 {
			return fmt.Errorf("--preload is for the embedded store (--backend sqlite)")
		}
	default:
		return fmt.Errorf("--backend %q: want %s or %s", o.Backend, BackendSQLite, BackendPostgres)
	}
	switch o.Scenario {
	case "steady", "outage", "backlog":
	case "failover", "rolling", "pgrestart", "pgcrash":
		if o.Backend != BackendPostgres || o.Replicas < 2 {
			return fmt.Errorf("--scenario %s needs --backend postgres and --replicas 2 or more", o.Scenario)
		}
	default:
		return fmt.Errorf("--scenario %q: want steady, outage, backlog, failover, pgrestart, pgcrash or rolling", o.Scenario)
	}
	if o.CancelEvery < 0 || (o.Lease != 0 && o.Backend != BackendPostgres) {
		return fmt.Errorf("--cancel-every must not be negative; --lease is for --backend postgres")
	}
	return nil
}

// replica is one hub process of the run and the lives it has had: a
// replica killed or stopped by the scenario is started again on the same
// address, with the same data directory and log.
type replica struct {
	n                 int
	base              string
	addr              string
	dataDir, logPath  string
	extra             []string
	mu                sync.Mutex
	proc              *hubProcess
	lives             int
	pastCPU           float64 // CPU seconds of the lives that ended
	pastDelivered     float64 // deliveries the ended lives reported
	lastScrapeFailure error   // reading /metrics before a life ended
}

func (r *replica) current() *hubProcess {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// start starts a life of r.
func (b *benchRun) start(ctx context.Context, r *replica) error {
	h, err := startHubProcess(ctx, b.o.HubBinary, b.cfgPath, r.dataDir, r.logPath, r.addr, b.env, r.extra...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.proc = h // on r.addr, so r.base, which the senders read, stays
	r.lives++
	r.mu.Unlock()
	return nil
}

// end ends r's current life with sig (SIGKILL or SIGTERM), first reading
// its delivery count, and waits for it; the life's CPU is then the
// kernel's account of it.
func (b *benchRun) end(r *replica, sig os.Signal) {
	h := r.current()
	n, err := scrapeDelivered(h.base)
	_ = h.cmd.Process.Signal(sig)
	<-h.exited
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pastDelivered += n
	if err != nil {
		r.lastScrapeFailure = err
	}
	if st := h.cmd.ProcessState; st != nil {
		r.pastCPU += (st.UserTime() + st.SystemTime()).Seconds()
	}
}

// finish reads what each replica's living process counted and spent, then
// stops them all.
func (b *benchRun) finish(rep *Report) {
	var total float64
	for _, r := range b.replicas {
		h := r.current()
		rr := ReplicaReport{Replica: r.n + 1, Lives: r.lives, CPUSeconds: r.pastCPU}
		if cpu, err := procCPU(h.pid()); err == nil {
			rr.CPUSeconds += cpu
		}
		if _, peak, err := procMemory(h.pid()); err == nil {
			rep.HubPeakRSSMB = max(rep.HubPeakRSSMB, peak)
		}
		n, err := scrapeDelivered(h.base)
		if err != nil {
			rr.Note = "its last /metrics could not be read: " + err.Error()
		}
		if r.lastScrapeFailure != nil {
			rr.Note += " /metrics could not be read before a life ended: " + r.lastScrapeFailure.Error()
		}
		rr.Delivered = int64(r.pastDelivered + n)
		total += r.pastDelivered + n
		rep.HubCPUSeconds += rr.CPUSeconds
		rep.PerReplica = append(rep.PerReplica, rr)
	}
	for i := range rep.PerReplica {
		if total > 0 {
			rep.PerReplica[i].Share = float64(rep.PerReplica[i].Delivered) / total
		}
	}
	b.stopAll()
}

func (b *benchRun) stopAll() {
	var wg sync.WaitGroup
	for _, r := range b.replicas {
		if h := r.current(); h != nil {
			wg.Add(1)
			go func() { defer wg.Done(); h.stop() }()
		}
	}
	wg.Wait()
}

// scrapeDelivered sums iceshub_deliveries_delivered_total over its labels
// on the hub's /metrics.
func scrapeDelivered(base string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "iceshub_deliveries_delivered_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q", line)
		}
		sum += v
	}
	return sum, sc.Err()
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// newReplicas makes the run's replicas: one for the embedded store, in
// dir/data as before; o.Replicas on PostgreSQL, each with a data
// directory, address and log of its own.
func (b *benchRun) newReplicas() error {
	n := b.o.Replicas
	for i := 0; i < n; i++ {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		r := &replica{n: i, addr: addr, base: "http://" + addr, dataDir: filepath.Join(b.dir, "data"), logPath: filepath.Join(b.dir, "hub.log")}
		if b.o.Backend == BackendPostgres {
			r.dataDir, r.logPath = filepath.Join(b.dir, fmt.Sprintf("data-%d", i+1)), filepath.Join(b.dir, fmt.Sprintf("hub-%d.log", i+1))
		}
		if b.o.Profile != "" {
			p := b.o.Profile
			if n > 1 {
				p = filepath.Join(p, fmt.Sprintf("replica-%d", i+1))
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			r.extra = []string{"--cpuprofile", filepath.Join(p, "cpu.pprof"), "--memprofile", filepath.Join(p, "allocs.pprof")}
		}
		b.replicas = append(b.replicas, r)
	}
	return nil
}

// pgDatabase is the run's own PostgreSQL database.
type pgDatabase struct {
	server, name, url string
}

// createDatabase creates iceshub_bench_<unix> on the server and returns it.
func createDatabase(ctx context.Context, server string) (*pgDatabase, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("bench: the PostgreSQL URL is not a URL")
	}
	name := fmt.Sprintf("iceshub_bench_%d", time.Now().Unix())
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("bench: create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return &pgDatabase{server: server, name: name, url: u.String()}, nil
}

// sizeMB is the database's size.
func (d *pgDatabase) sizeMB(ctx context.Context) float64 {
	conn, err := pgx.Connect(ctx, d.server)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size($1)", d.name).Scan(&n); err != nil {
		return 0
	}
	return float64(n) / (1 << 20)
}

func (d *pgDatabase) drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}

// sharedKeys is the environment every replica on PostgreSQL shares: the
// database and the same data and subject keys, fresh for the run.
func sharedKeys(db *pgDatabase) ([]string, error) {
	env := []string{"ICESHUB_POSTGRES_URL=" + db.url}
	for _, name := range []string{"ICESHUB_DATA_KEY", "ICESHUB_SUBJECT_KEY"} {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, err
		}
		env = append(env, name+"="+hex.EncodeToString(k[:]))
	}
	return env, nil
}
