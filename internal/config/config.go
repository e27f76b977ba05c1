// Package config loads and checks iceshub's one configuration file.
//
// The file is YAML (see default.yaml, which is also the built-in default).
// Secrets are never in it: a partner names the environment variable that
// holds its token, and the value is read at start-up.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/stats"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the built-in configuration, as documented.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Partner kinds.
const (
	KindProvider = "provider"
	KindCouncil  = "council"
	// KindNHS is an NHS organisation's FHIR endpoint, which receives the
	// referral's Task updates; chosen by the requester's ODS code.
	KindNHS = "nhs"
	// KindCommissioner is a commissioner of the service (a council, an
	// ICB): it receives only the month's anonymised statistics (a route
	// "message: statistics"), never a referral, and never calls the hub.
	KindCommissioner = "commissioner"
)

// MessageStatistics is the message of a route to a commissioner: the
// month's statistics of the service, published under stats (never raw
// counts), once a month (stats.publish_day, stats.publish_hour).
const MessageStatistics = string(model.KindStatistics)

// RecipientCouncil, as a route's "to", means "the council whose area holds the
// person's address", chosen per message from the councils' postcode prefixes.
const RecipientCouncil = "council"

// RecipientRequester, as a route's "to", means "the NHS endpoint of the
// organisation that requested the equipment", chosen per message from the
// nhs partners' ods_codes.
const RecipientRequester = "requester"

// Config is the whole configuration of a hub.
type Config struct {
	Server   Server    `yaml:"server"`
	Store    Store     `yaml:"store"`
	Partners []Partner `yaml:"partners"`
	Policy   Policy    `yaml:"policy"`
	Routes   []Route   `yaml:"routes"`
	// Retention says how long the hub keeps what it stores.
	Retention Retention `yaml:"retention"`
	// Delivery says how long the hub keeps trying a partner that fails.
	Delivery Delivery `yaml:"delivery"`
	// Stats is the disclosure control of the statistics commissioners
	// may see (iceshub stats, GET /admin/stats).
	Stats Stats `yaml:"stats"`
	// Console configures the operators' console's sign-in and sessions.
	Console Console `yaml:"console"`

	// Source names where the configuration came from, for messages.
	Source string `yaml:"-"`
}

// Server configures the inbound HTTP server.
type Server struct {
	// Addr is the listen address, HOST:PORT.
	Addr string `yaml:"addr"`
	// OpsAddr, when set, is a second listen address that serves only the
	// operator's endpoints (/healthz, /readyz, /metrics and the admin
	// API); Addr then serves only the partners' endpoints. Empty: Addr
	// serves both.
	OpsAddr string `yaml:"ops_addr"`
	// MaxBodyBytes limits an inbound request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds how long in-flight work may take after SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound
	// slow clients (http.Server): a client that sends its headers or body
	// too slowly is cut off.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes limits the request line and headers together.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TLS, when cert_file is set, serves HTTPS (and lets partners
	// authenticate with client certificates).
	TLS ServerTLS `yaml:"tls"`
	// InsecureDev accepts partner requests without credentials, logging a
	// warning for each. For development only; --insecure-dev sets it too.
	InsecureDev bool `yaml:"insecure_dev"`
}

// ServerTLS is the hub's own certificate and the CA of client certificates.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, is the CA bundle client certificates must
	// chain to (they must also be pinned to a partner).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the server serves HTTPS.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// DefaultCommitDelay is store.commit_delay when it is not set, and
// MaxCommitDelay the most it may be: every caller of a waiting commit,
// a sender among them, waits as long.
const (
	DefaultCommitDelay = time.Millisecond
	MaxCommitDelay     = 10 * time.Millisecond
)

// Store configures durable storage and messaging.
type Store struct {
	// Backend selects the engine: "sqlite" (embedded, the default) or
	// "postgres" (several hubs on one PostgreSQL database).
	Backend string `yaml:"backend"`
	// DataDir holds the database file and everything else the hub keeps.
	DataDir string `yaml:"data_dir"`
	// PollInterval is how often idle subscribers look for new messages.
	PollInterval time.Duration `yaml:"poll_interval"`
	// CommitDelay is how long, at most, a commit waits for more writes to
	// share it when the hub is busy (sqlite.Options.CommitDelay); nil means
	// the default, 0 never waits.
	CommitDelay *time.Duration `yaml:"commit_delay"`
	// DataKeyFile is the file of the keys that encrypt stored payloads;
	// empty means data_dir/data.key. ICESHUB_DATA_KEY, when set, wins.
	DataKeyFile string `yaml:"data_key_file"`
	// Migrate is "auto" (the default: serve brings the schema up to date
	// as it starts) or "manual" (serve refuses a schema that is not
	// current; `iceshub migrate` brings it up to date).
	Migrate string `yaml:"migrate"`
	// Postgres configures the postgres backend.
	Postgres StorePostgres `yaml:"postgres"`
}

// StorePostgres configures the PostgreSQL store (store.backend: postgres).
type StorePostgres struct {
	// URLEnv names the environment variable that holds the connection URL
	// (it may carry a password, so it is never in this file).
	URLEnv string `yaml:"url_env"`
	// MaxConns bounds each hub's connections.
	MaxConns int `yaml:"max_conns"`
	// StatementTimeout ends a statement that runs longer.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// Lease is how long a message or a parked copy stays with the hub that
	// took it without word from it: a hub that dies lets its work go to
	// the others after at most this long.
	Lease time.Duration `yaml:"lease"`
}

// Defaults of the postgres backend.
const (
	DefaultPostgresURLEnv = "ICESHUB_POSTGRES_URL"
	MinLease              = 3 * time.Second
)

// EffectiveCommitDelay is CommitDelay, or its default when it is not set.
func (s Store) EffectiveCommitDelay() time.Duration {
	if s.CommitDelay == nil {
		return DefaultCommitDelay
	}
	return *s.CommitDelay
}

// Delivery configures the attempts after a delivery failed transiently
// (partner down, 429, 5xx): the copy is parked and tried again after
// RetryFirstWait, the wait doubling up to RetryMaxWait, until RetryHorizon
// has passed since it first failed; then it is dead-lettered for a person
// to decide. Within each attempt, the partner's retry_max and Retry-After
// apply.
type Delivery struct {
	RetryFirstWait time.Duration `yaml:"retry_first_wait"`
	RetryMaxWait   time.Duration `yaml:"retry_max_wait"`
	RetryHorizon   time.Duration `yaml:"retry_horizon"`
	// InFlight is how many requests each of a partner's queues (routine,
	// urgent, parked) has open to it at once. Each queue, and the fan-out
	// of events, handles four times as many messages at once (the hub's
	// queueHandlers), so that deliveries waiting for their outcome's
	// durable commit do not hold the partner's requests. Copies about the
	// same referral always go one at a time, in order. Default 16: with 8,
	// the provider's queue, which carries every referral, fell 10-20%
	// behind intake at full load (README, Performance).
	InFlight int `yaml:"in_flight"`
}

// Retention configures what the hub deletes, and when (store.ApplyRetention).
type Retention struct {
	// PayloadDays is how long referrals and partner copies are kept after
	// they were received, once delivered (acknowledged by every consumer),
	// and how long idempotency records are kept. Default 30.
	PayloadDays int `yaml:"payload_days"`
	// DisclosureYears is how long the disclosure record keeps a person's
	// entries after their last activity (ICES privacy notice: seven years
	// from last use of the service). Default 7.
	DisclosureYears int `yaml:"disclosure_years"`
	// Interval is how often serve applies retention; the first run is
	// shortly after start. Default 24h.
	Interval time.Duration `yaml:"interval"`
}

// Console configures the sign-in and sessions of the operators' console
// (internal/console). A duration or count left out (zero) is the
// console's default.
type Console struct {
	// SecureCookies marks the console's cookies Secure (sent over HTTPS
	// only) although TLS does not end at the hub: set it when a proxy or
	// load balancer in front of the hub ends TLS. Over server.tls they are
	// Secure anyway.
	SecureCookies bool `yaml:"secure_cookies"`
	// SessionIdle ends a session after this long without a request
	// (default 30m); SessionLifetime this long after its sign-in, however
	// busy (default 8h).
	SessionIdle     time.Duration `yaml:"session_idle"`
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// MaxFailedSignIns failed sign-ins in a row lock an account for
	// LockFor (defaults 5 and 15m).
	MaxFailedSignIns int           `yaml:"max_failed_sign_ins"`
	LockFor          time.Duration `yaml:"lock_for"`
}

// Stats configures the disclosure control applied to the statistics of
// the service before they are shown (internal/stats): by default NHS
// England's below national level.
type Stats struct {
	// SuppressUpTo: counts from 1 to it are shown as *. Default 7.
	SuppressUpTo int `yaml:"suppress_up_to"`
	// RoundTo: other counts are rounded to the nearest multiple of it (1:
	// not rounded). Default 5.
	RoundTo int `yaml:"round_to"`
	// MinValues: medians and percentiles over fewer values are shown as
	// *. Default 8.
	MinValues int `yaml:"min_values"`
	// Standards are the days within which each priority's equipment
	// should be delivered. Default urgent 1, routine 7.
	Standards map[string]int `yaml:"standards"`
	// PublishDay and PublishHour are when, in UTC, each commissioner's
	// route "message: statistics" gets the previous whole month's
	// statistics: from that hour of that day of the next month (the day
	// from 1 to 28). Default day 1, hour 6.
	PublishDay  int  `yaml:"publish_day"`
	PublishHour *int `yaml:"publish_hour"`
}

// DefaultPublishDay and DefaultPublishHour are stats.publish_day and
// stats.publish_hour when they are not set.
const (
	DefaultPublishDay  = 1
	DefaultPublishHour = 6
)

// PublishAt returns when the statistics of month (YYYY-MM) are published:
// at PublishHour (UTC) on PublishDay of the month after it.
func (s Stats) PublishAt(month time.Time) time.Time {
	hour := DefaultPublishHour
	if s.PublishHour != nil {
		hour = *s.PublishHour
	}
	day := s.PublishDay
	if day == 0 {
		day = DefaultPublishDay
	}
	return time.Date(month.Year(), month.Month()+1, day, hour, 0, 0, 0, time.UTC)
}

// Rules returns the disclosure rules s configures.
func (s Stats) Rules() stats.Rules {
	return stats.Rules{SuppressUpTo: s.SuppressUpTo, RoundTo: s.RoundTo, MinValues: s.MinValues, Standards: maps.Clone(s.Standards)}
}

// Partner is an organisation the hub delivers to.
type Partner struct {
	ID      string `yaml:"id"`
	Kind    string `yaml:"kind"`
	Name    string `yaml:"name"`
	BaseURL string `yaml:"base_url"`
	// TokenEnv names the environment variable holding the bearer token the
	// hub presents to this partner. Empty means no token; a name whose
	// variable is unset or empty is an error (CheckTokens), so that the hub
	// never calls a partner without the token it was configured to send.
	TokenEnv string        `yaml:"token_env"`
	Timeout  time.Duration `yaml:"timeout"`
	RetryMax int           `yaml:"retry_max"`
	// PostcodePrefixes (councils only) are the postcode areas, districts or
	// sectors the council covers.
	PostcodePrefixes []string `yaml:"postcode_prefixes"`
	// ODSCodes (nhs partners only) are the ODS codes of the organisations
	// whose FHIR endpoint this is.
	ODSCodes []string `yaml:"ods_codes"`
	// Inbound is how the partner proves who it is when it calls the hub,
	// and what it may call. Without it the partner cannot call the hub.
	Inbound Inbound `yaml:"inbound"`
	// TLS configures the hub's calls to the partner's https base_url.
	TLS OutboundTLS `yaml:"tls"`

	Line int `yaml:"-"`
}

// Inbound authentication modes (see internal/auth).
const (
	ModeNone = "none"
	ModeMTLS = "mtls"
	ModeJWT  = "jwt"
	ModeHMAC = "hmac"
)

// Inbound configures how a partner authenticates to the hub.
type Inbound struct {
	// Mode is mtls, jwt, hmac or none (the default: the partner cannot
	// call the hub).
	Mode string      `yaml:"mode"`
	MTLS InboundMTLS `yaml:"mtls"`
	JWT  InboundJWT  `yaml:"jwt"`
	HMAC InboundHMAC `yaml:"hmac"`
	Rate Rate        `yaml:"rate"`
	// Endpoints the partner may call, "METHOD /path" ("*" at the end for
	// everything below, "{self}" for the partner's id). Default by kind:
	// provider POST /provider/events; council POST /crm/{self}/events; nhs
	// POST /fhir, POST /fhir/$process-message, GET /fhir/metadata.
	Endpoints []string `yaml:"endpoints"`
	// Messages are the kinds of message the partner may send. Default by
	// kind: provider order-status, safeguarding, equipment-issue,
	// complaint-reply; council complaint, collection; nhs referral,
	// cancellation, amendment, collection.
	Messages []string `yaml:"messages"`

	Line int `yaml:"-"`
}

// InboundMTLS pins the partner's client certificates by SHA-256 fingerprint
// (64 hex digits, colons allowed): of the whole certificate, or of its
// public key (SubjectPublicKeyInfo), which survives re-issuing.
type InboundMTLS struct {
	CertSHA256 []string `yaml:"cert_sha256"`
	SPKISHA256 []string `yaml:"spki_sha256"`
}

// InboundJWT checks the partner's bearer tokens.
type InboundJWT struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Subject, when set, must be the token's sub.
	Subject string `yaml:"subject"`
	// Algorithm is RS256 or ES256 (KeyFile: PEM public keys) or HS256
	// (SecretEnv or SecretFile). Nothing else, never "none".
	Algorithm  string        `yaml:"algorithm"`
	KeyFile    string        `yaml:"key_file"`
	SecretEnv  string        `yaml:"secret_env"`
	SecretFile string        `yaml:"secret_file"`
	Skew       time.Duration `yaml:"skew"`
	// MaxLifetime is the longest a token may live, exp minus iat (iat is
	// required); default 1h, at most MaxTokenLifetime.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// SingleUse requires a jti in every token and accepts each jti once
	// until the token expires, after a restart too: the partner gets a new
	// token for each request.
	SingleUse bool `yaml:"single_use"`
}

// DefaultTokenLifetime is inbound.jwt.max_lifetime when it is not set, and
// MaxTokenLifetime the most it may be.
const (
	DefaultTokenLifetime = time.Hour
	MaxTokenLifetime     = 24 * time.Hour
)

// InboundHMAC checks the partner's signed webhooks.
type InboundHMAC struct {
	SecretEnv    string        `yaml:"secret_env"`
	SecretFile   string        `yaml:"secret_file"`
	ReplayWindow time.Duration `yaml:"replay_window"`
}

// Rate limits a partner's requests.
type Rate struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// OutboundTLS configures TLS to a partner: verification is always on unless
// InsecureSkipVerify, which only insecure_dev allows.
type OutboundTLS struct {
	// CAFile is the CA bundle that the partner's server certificate must
	// chain to, instead of the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the hub's client certificate, for partners
	// that require mutual TLS.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns verification off: development only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	Line int `yaml:"-"`
}

// DefaultEndpoints returns the endpoints a partner of kind may call when its
// inbound block names none.
func DefaultEndpoints(kind string) []string {
	switch kind {
	case KindProvider:
		return []string{"POST /provider/events"}
	case KindCouncil:
		return []string{"POST /crm/{self}/events"}
	case KindNHS:
		return []string{"POST /fhir", "POST /fhir/$process-message", "GET /fhir/metadata"}
	}
	return nil
}

// DefaultMessages returns the kinds of message a partner of kind may send
// when its inbound block names none.
func DefaultMessages(kind string) []string {
	switch kind {
	case KindProvider:
		return []string{"order-status", "safeguarding", "equipment-issue", "complaint-reply"}
	case KindCouncil:
		return []string{"complaint", "collection"}
	case KindNHS:
		return []string{"referral", "cancellation", "amendment", "collection"}
	}
	return nil
}

// InboundSecret returns the partner's inbound shared secret (HS256 or HMAC)
// from its environment variable or file; nil when the mode needs none. A
// secret file others may read is refused.
func (p Partner) InboundSecret() ([]byte, error) {
	env, file := "", ""
	switch p.Inbound.Mode {
	case ModeHMAC:
		env, file = p.Inbound.HMAC.SecretEnv, p.Inbound.HMAC.SecretFile
	case ModeJWT:
		if p.Inbound.JWT.Algorithm != "HS256" {
			return nil, nil
		}
		env, file = p.Inbound.JWT.SecretEnv, p.Inbound.JWT.SecretFile
	default:
		return nil, nil
	}
	if env != "" {
		v := os.Getenv(env)
		if v == "" {
			return nil, fmt.Errorf("partner %q: set the environment variable %s to its inbound secret (at least 32 bytes)", p.ID, env)
		}
		return []byte(v), nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("partner %q: inbound secret: %w", p.ID, err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("partner %q: inbound secret file %s has mode %04o: others must not read it (chmod 600)", p.ID, file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("partner %q: inbound secret: %w", p.ID, err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// Token returns the partner's bearer token from its environment variable:
// empty when the partner names no token_env, an error (naming the variable,
// never a value) when the variable it names is unset, empty or blank.
func (p Partner) Token() (string, error) {
	if p.TokenEnv == "" {
		return "", nil
	}
	v := os.Getenv(p.TokenEnv)
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("partner %q: token_env names %s, which is unset or empty: set it to the bearer token the hub sends this partner (or remove token_env if the partner takes none)", p.ID, p.TokenEnv)
	}
	if strings.TrimSpace(v) != v || strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("partner %q: the token in %s has spaces or line breaks around or in it", p.ID, p.TokenEnv)
	}
	return v, nil
}

// Policy holds settings shared by every route's field list.
type Policy struct {
	// PseudonymKeyEnv names the environment variable holding the secret key
	// of the pseudonymise transform, for routes that do not name their own.
	PseudonymKeyEnv string `yaml:"pseudonym_key_env"`
}

// FieldEntry is one entry of a route's field list as written: either a plain
// field name ("person.name", kept as is) or a mapping
// {field: person.birthDate, as: year} naming a transform (see package
// minimise). Parse copies the entries into Route.Fields and Route.As.
type FieldEntry struct {
	Field string
	As    string
	// Line and AsLine are where the entry and its "as" are in the file.
	Line, AsLine int
	// problem is what is wrong with the entry's shape, reported by Check.
	problem string
}

// UnmarshalYAML accepts a field name or a mapping with the keys field and as.
// A malformed entry is recorded and reported by Check with its line, together
// with every other mistake.
func (e *FieldEntry) UnmarshalYAML(n *yaml.Node) error {
	e.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		e.Field = n.Value
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch {
			case v.Kind != yaml.ScalarNode:
				e.problem = fmt.Sprintf("%q must be a single value", k.Value)
			case k.Value == "field":
				e.Field = v.Value
			case k.Value == "as":
				e.As, e.AsLine = v.Value, v.Line
			default:
				e.problem = fmt.Sprintf("unknown key %q in a field entry (want field and as)", k.Value)
			}
		}
		if e.problem == "" && e.Field == "" {
			e.problem = "a field entry needs a field"
		}
	default:
		e.problem = "a field entry is a field name or {field: NAME, as: TRANSFORM}"
	}
	return nil
}

// Route says that messages of one kind go to one recipient, with the fields
// it may receive and why.
type Route struct {
	Message string `yaml:"message"`
	// To is a partner id, or "council" for the council of the person's area.
	To      string `yaml:"to"`
	Purpose string `yaml:"purpose"`
	// LawfulBasis is the UK GDPR Article 6 basis.
	LawfulBasis string `yaml:"lawful_basis"`
	// SpecialCategoryBasis is the Article 9 condition; required when Fields
	// names any special category field.
	SpecialCategoryBasis string `yaml:"special_category_basis"`
	// PseudonymKeyEnv names the environment variable holding the key of the
	// pseudonymise transform; empty means policy.pseudonym_key_env.
	PseudonymKeyEnv string `yaml:"pseudonym_key_env"`
	// RequiresPermission says that this sharing needs the person's express
	// permission (a "Shared Agreement"): without a recorded permission
	// (model.Referral.Permission given) the copy is held and recorded as
	// withheld, never sent.
	RequiresPermission bool `yaml:"requires_permission"`
	// Entries is the field list as written in the file ("fields").
	Entries []FieldEntry `yaml:"fields"`

	// Fields are the canonical fields the recipient may receive. Anything not
	// named is not sent.
	Fields []string `yaml:"-"`
	// As holds the transform of each field, by index; "" or a missing entry
	// means keep.
	As []string `yaml:"-"`

	// Line is the route's line in the file; ToLine, FieldLines and AsLines
	// point at its recipient, at each field and at each field's transform,
	// for precise error messages.
	Line       int   `yaml:"-"`
	ToLine     int   `yaml:"-"`
	FieldLines []int `yaml:"-"`
	AsLines    []int `yaml:"-"`
}

// transform returns the transform of the i-th field.
func (r Route) transform(i int) string {
	if i < len(r.As) && r.As[i] != "" {
		return r.As[i]
	}
	return minimise.Keep
}

// Rules returns the route's field list as minimisation rules.
func (r Route) Rules() []minimise.Rule {
	out := make([]minimise.Rule, len(r.Fields))
	for i, f := range r.Fields {
		out[i] = minimise.Rule{Field: f, As: r.transform(i)}
	}
	return out
}

// Disclosed returns the labels recorded with each disclosure on this route:
// the field name when it is sent as is, the name and transform otherwise
// ("person.birthDate(year)"; see model.FieldLabel).
func (r Route) Disclosed() []string {
	out := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		out[i] = model.FieldLabel(f, r.transform(i))
	}
	return out
}

// Pseudonymises reports whether the route pseudonymises a field.
func (r Route) Pseudonymises() bool {
	for i := range r.Fields {
		if r.transform(i) == minimise.Pseudonymise {
			return true
		}
	}
	return false
}

// PseudonymKey returns the pseudonymisation key from the route's
// environment variable, or nil.
func (r Route) PseudonymKey() []byte {
	if r.PseudonymKeyEnv == "" {
		return nil
	}
	if v := os.Getenv(r.PseudonymKeyEnv); v != "" {
		return []byte(v)
	}
	return nil
}

// asLine returns the line of the i-th field's transform, or its field line.
func (r Route) asLine(i int) int {
	if i < len(r.AsLines) && r.AsLines[i] > 0 {
		return r.AsLines[i]
	}
	return r.fieldLine(i)
}

// fieldLine returns the line of the i-th field, or the route's line.
func (r Route) fieldLine(i int) int {
	if i < len(r.FieldLines) {
		return r.FieldLines[i]
	}
	return r.Line
}

// toLine returns the line of the route's recipient, or the route's line.
func (r Route) toLine() int {
	if r.ToLine > 0 {
		return r.ToLine
	}
	return r.Line
}

// Default returns the built-in configuration.
func Default() (*Config, error) {
	return Parse(defaultYAML, "built-in default configuration")
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(b, path)
}

// Parse decodes and checks a configuration. Unknown keys are errors, and so is
// everything Check finds; messages name source and line.
func Parse(b []byte, source string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c.Source = source
	for i := range c.Routes {
		r := &c.Routes[i]
		for _, e := range r.Entries {
			r.Fields = append(r.Fields, e.Field)
			r.As = append(r.As, e.As)
			r.AsLines = append(r.AsLines, e.AsLine)
		}
	}
	recordLines(&root, &c)
	c.applyDefaults()
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// recordLines copies the line of each partner and route from the YAML tree
// so that errors found after decoding can still point at the file.
func recordLines(root *yaml.Node, c *Config) {
	if len(root.Content) == 0 {
		return
	}
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		switch key.Value {
		case "partners":
			for j, n := range val.Content {
				if j >= len(c.Partners) {
					break
				}
				p := &c.Partners[j]
				p.Line = n.Line
				for k := 0; k+1 < len(n.Content); k += 2 {
					switch n.Content[k].Value {
					case "inbound":
						p.Inbound.Line = n.Content[k].Line
					case "tls":
						p.TLS.Line = n.Content[k].Line
					}
				}
			}
		case "routes":
			for j, n := range val.Content {
				if j >= len(c.Routes) {
					break
				}
				r := &c.Routes[j]
				r.Line = n.Line
				for k := 0; k+1 < len(n.Content); k += 2 {
					switch n.Content[k].Value {
					case "to":
						r.ToLine = n.Content[k+1].Line
					case "fields":
						for _, f := range n.Content[k+1].Content {
							r.FieldLines = append(r.FieldLines, f.Line)
						}
					}
				}
			}
		}
	}
}

func (c *Config) applyDefaults() {
	setDefault(&c.Server.Addr, "127.0.0.1:8080")
	setDefault(&c.Server.MaxBodyBytes, 1<<20)
	setDefault(&c.Server.ShutdownTimeout, 20*time.Second)
	setDefault(&c.Server.ReadHeaderTimeout, 10*time.Second)
	setDefault(&c.Server.ReadTimeout, 30*time.Second)
	setDefault(&c.Server.WriteTimeout, 30*time.Second)
	setDefault(&c.Server.IdleTimeout, 120*time.Second)
	setDefault(&c.Server.MaxHeaderBytes, 64<<10)
	setDefault(&c.Store.Backend, "sqlite")
	setDefault(&c.Store.DataDir, "data")
	if c.Store.Backend == "postgres" {
		// Another hub's commit wakes the queues by a notification, so a
		// poll is only a fallback; each poll is a query per topic per hub.
		setDefault(&c.Store.PollInterval, 500*time.Millisecond)
	}
	setDefault(&c.Store.PollInterval, 50*time.Millisecond)
	setDefault(&c.Store.Migrate, "auto")
	setDefault(&c.Store.Postgres.URLEnv, DefaultPostgresURLEnv)
	setDefault(&c.Store.Postgres.MaxConns, 10)
	setDefault(&c.Store.Postgres.StatementTimeout, 30*time.Second)
	setDefault(&c.Store.Postgres.Lease, 30*time.Second)
	if c.Store.CommitDelay == nil {
		d := DefaultCommitDelay
		c.Store.CommitDelay = &d
	}
	setDefault(&c.Retention.PayloadDays, 30)
	setDefault(&c.Retention.DisclosureYears, 7)
	setDefault(&c.Retention.Interval, 24*time.Hour)
	def := stats.DefaultRules()
	setDefault(&c.Stats.SuppressUpTo, def.SuppressUpTo)
	setDefault(&c.Stats.RoundTo, def.RoundTo)
	setDefault(&c.Stats.MinValues, def.MinValues)
	if c.Stats.Standards == nil {
		c.Stats.Standards = def.Standards
	}
	setDefault(&c.Stats.PublishDay, DefaultPublishDay)
	if c.Stats.PublishHour == nil {
		h := DefaultPublishHour
		c.Stats.PublishHour = &h
	}
	setDefault(&c.Delivery.InFlight, 16)
	setDefault(&c.Delivery.RetryFirstWait, 2*time.Second)
	setDefault(&c.Delivery.RetryMaxWait, 5*time.Minute)
	setDefault(&c.Delivery.RetryHorizon, 72*time.Hour)
	for i := range c.Routes {
		setDefault(&c.Routes[i].PseudonymKeyEnv, c.Policy.PseudonymKeyEnv)
	}
	for i := range c.Partners {
		c.Partners[i].applyDefaults()
	}
}

// applyDefaults fills in what a partner's block leaves out.
func (p *Partner) applyDefaults() {
	setDefault(&p.Timeout, 10*time.Second)
	setDefault(&p.RetryMax, 4)
	in := &p.Inbound
	setDefault(&in.Mode, ModeNone)
	if len(in.Endpoints) == 0 {
		in.Endpoints = DefaultEndpoints(p.Kind)
	}
	if len(in.Messages) == 0 {
		in.Messages = DefaultMessages(p.Kind)
	}
	if in.Mode == ModeHMAC {
		setDefault(&in.HMAC.ReplayWindow, 5*time.Minute)
	}
	if in.Mode == ModeJWT {
		setDefault(&in.JWT.Skew, 30*time.Second)
		setDefault(&in.JWT.MaxLifetime, DefaultTokenLifetime)
	}
	setDefault(&in.Rate.PerSecond, 20)
	setDefault(&in.Rate.Burst, 40)
}

// setDefault sets *v to def when the file left it at its zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

var (
	odsPattern = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
	idPattern  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
	envPattern = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

// Known message kinds a route may name.
var knownKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range model.Kinds() {
		m[string(k)] = true
	}
	return m
}()

// Check reports every problem in c, each naming the file and line.
func (c *Config) Check() error {
	errs := c.checkSettings()
	idx, perrs := c.checkPartners()
	errs = append(errs, perrs...)
	errs = append(errs, c.checkRoutes(idx)...)
	return errors.Join(errs...)
}

// at names line of c's source, for messages.
func (c *Config) at(line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", c.Source, line)
	}
	return c.Source
}

// checkStore checks the store's settings.
func (c *Config) checkStore() []error {
	var errs []error
	st := c.Store
	switch st.Backend {
	case "sqlite", "postgres":
	default:
		errs = append(errs, fmt.Errorf("%s: store.backend %q is not available (available: sqlite, postgres)", c.Source, st.Backend))
	}
	if st.Migrate != "auto" && st.Migrate != "manual" {
		errs = append(errs, fmt.Errorf("%s: store.migrate %q must be auto or manual", c.Source, st.Migrate))
	}
	pg := st.Postgres
	if !envPattern.MatchString(pg.URLEnv) {
		errs = append(errs, fmt.Errorf("%s: store.postgres.url_env %q is not an environment variable name", c.Source, pg.URLEnv))
	}
	if pg.MaxConns < 2 || pg.MaxConns > 1000 {
		errs = append(errs, fmt.Errorf("%s: store.postgres.max_conns %d must be from 2 to 1000", c.Source, pg.MaxConns))
	}
	if pg.StatementTimeout < time.Second {
		errs = append(errs, fmt.Errorf("%s: store.postgres.statement_timeout must be at least 1s", c.Source))
	}
	if pg.Lease < MinLease {
		errs = append(errs, fmt.Errorf("%s: store.postgres.lease must be at least %s (a hub renews its leases every third of it)", c.Source, MinLease))
	}
	return errs
}

// checkSettings checks the settings outside partners and routes.
func (c *Config) checkSettings() []error {
	var errs []error
	errs = append(errs, c.checkStore()...)
	if c.Server.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("%s: server.max_body_bytes %d is below 1024", c.Source, c.Server.MaxBodyBytes))
	}
	errs = append(errs, c.checkServer()...)
	if a := c.Server.OpsAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: server.ops_addr %q is not HOST:PORT: %w", c.Source, a, err))
		} else if a == c.Server.Addr {
			errs = append(errs, fmt.Errorf("%s: server.ops_addr %q is server.addr too: give the operator's endpoints an address of their own, or leave ops_addr out", c.Source, a))
		}
	}
	if c.Store.PollInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("%s: store.poll_interval must be at least 1ms", c.Source))
	}
	if d := c.Store.CommitDelay; d != nil && (*d < 0 || *d > MaxCommitDelay) {
		errs = append(errs, fmt.Errorf("%s: store.commit_delay %s must be from 0 (never wait) to %s", c.Source, *d, MaxCommitDelay))
	}
	if c.Retention.PayloadDays < 1 || c.Retention.DisclosureYears < 1 {
		errs = append(errs, fmt.Errorf("%s: retention.payload_days and retention.disclosure_years must be at least 1", c.Source))
	}
	if c.Retention.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("%s: retention.interval must be at least 1m", c.Source))
	}
	errs = append(errs, c.Console.check(c.Source)...)
	if err := c.Stats.Rules().Check(); err != nil {
		errs = append(errs, fmt.Errorf("%s: stats: %w", c.Source, err))
	}
	if d := c.Stats.PublishDay; d < 1 || d > 28 {
		errs = append(errs, fmt.Errorf("%s: stats.publish_day %d must be from 1 to 28 (every month has it)", c.Source, d))
	}
	if h := c.Stats.PublishHour; h != nil && (*h < 0 || *h > 23) {
		errs = append(errs, fmt.Errorf("%s: stats.publish_hour %d must be from 0 to 23 (UTC)", c.Source, *h))
	}
	for _, p := range sortedKeys(c.Stats.Standards) {
		switch model.Priority(p) {
		case model.PriorityRoutine, model.PriorityUrgent, model.PriorityASAP, model.PriorityStat:
		default:
			errs = append(errs, fmt.Errorf("%s: stats.standards: unknown priority %q (want routine, urgent, asap or stat)", c.Source, p))
		}
	}
	if d := c.Delivery; d.InFlight < 1 || d.InFlight > 256 {
		errs = append(errs, fmt.Errorf("%s: delivery.in_flight must be between 1 and 256, got %d", c.Source, d.InFlight))
	}
	if d := c.Delivery; d.RetryFirstWait < 0 || d.RetryMaxWait < d.RetryFirstWait || d.RetryHorizon < d.RetryMaxWait {
		errs = append(errs, fmt.Errorf("%s: delivery: want 0 < retry_first_wait <= retry_max_wait <= retry_horizon (have %s, %s, %s)",
			c.Source, d.RetryFirstWait, d.RetryMaxWait, d.RetryHorizon))
	}
	if e := c.Policy.PseudonymKeyEnv; e != "" && !envPattern.MatchString(e) {
		errs = append(errs, fmt.Errorf("%s: policy.pseudonym_key_env %q is not an environment variable name (put the key in the environment, never in this file)", c.Source, e))
	}
	return errs
}

// partnerIndex is what the routes are checked against: the partners by id,
// the councils' postcode prefixes, and whether an nhs partner exists.
type partnerIndex struct {
	partners map[string]Partner
	councils map[string][]string
	nhs      int
}

// checkPartners checks each partner and returns the index the routes are
// checked against.
func (c *Config) checkPartners() (partnerIndex, []error) {
	var errs []error
	at := c.at
	partners := map[string]Partner{}
	councils := map[string][]string{}
	ods := map[string]string{}
	providers, nhs := 0, 0
	for _, p := range c.Partners {
		where := at(p.Line)
		if !idPattern.MatchString(p.ID) {
			errs = append(errs, fmt.Errorf("%s: partner id %q must be lower case letters, digits and hyphens, starting with a letter", where, p.ID))
		}
		if p.ID == RecipientCouncil || p.ID == RecipientRequester {
			errs = append(errs, fmt.Errorf("%s: partner id %q is reserved for routing to the council of the person's area or the requester's endpoint", where, p.ID))
		}
		if _, dup := partners[p.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: partner id %q is defined twice", where, p.ID))
		}
		partners[p.ID] = p
		switch p.Kind {
		case KindProvider:
			providers++
			if len(p.PostcodePrefixes) > 0 {
				errs = append(errs, fmt.Errorf("%s: partner %q: only councils have postcode_prefixes", where, p.ID))
			}
		case KindCouncil:
			if len(p.PostcodePrefixes) == 0 {
				errs = append(errs, fmt.Errorf("%s: council %q needs postcode_prefixes naming the area it covers", where, p.ID))
			}
			councils[p.ID] = p.PostcodePrefixes
		case KindNHS:
			nhs++
			if len(p.ODSCodes) == 0 {
				errs = append(errs, fmt.Errorf("%s: nhs partner %q needs ods_codes naming the organisations whose endpoint it is", where, p.ID))
			}
			for _, code := range p.ODSCodes {
				code = strings.ToUpper(strings.TrimSpace(code))
				if !odsPattern.MatchString(code) {
					errs = append(errs, fmt.Errorf("%s: nhs partner %q: %q is not an ODS code", where, p.ID, code))
				} else if other, dup := ods[code]; dup {
					errs = append(errs, fmt.Errorf("%s: ODS code %q is claimed by both %q and %q", where, code, other, p.ID))
				} else {
					ods[code] = p.ID
				}
			}
		case KindCommissioner:
			if len(p.PostcodePrefixes) > 0 {
				errs = append(errs, fmt.Errorf("%s: partner %q: only councils have postcode_prefixes", where, p.ID))
			}
			if m := p.Inbound.Mode; m != "" && m != ModeNone {
				errs = append(errs, fmt.Errorf("%s: commissioner %q: a commissioner only receives statistics and never calls the hub: leave inbound out", where, p.ID))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: partner %q: kind %q is not one of provider, council, nhs, commissioner", where, p.ID, p.Kind))
		}
		if p.Kind != KindNHS && len(p.ODSCodes) > 0 {
			errs = append(errs, fmt.Errorf("%s: partner %q: only nhs partners have ods_codes", where, p.ID))
		}
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: partner %q: base_url %q must be an absolute http(s) URL", where, p.ID, p.BaseURL))
		}
		if p.TokenEnv != "" && !envPattern.MatchString(p.TokenEnv) {
			errs = append(errs, fmt.Errorf("%s: partner %q: token_env %q is not an environment variable name (put the token in the environment, never in this file)", where, p.ID, p.TokenEnv))
		}
		if p.RetryMax < 0 || p.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s: partner %q: timeout and retry_max must not be negative", where, p.ID))
		}
		errs = append(errs, c.checkInbound(p, at)...)
		errs = append(errs, c.checkOutboundTLS(p, at)...)
	}
	if providers > 1 {
		errs = append(errs, fmt.Errorf("%s: %d providers configured; the service has one contracted provider at a time", c.Source, providers))
	}
	if _, err := postcode.NewTable(councils); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.Source, err))
	}
	return partnerIndex{partners: partners, councils: councils, nhs: nhs}, errs
}

// checkRoutes checks each route against the partners of idx.
func (c *Config) checkRoutes(idx partnerIndex) []error {
	var errs []error
	at := c.at
	partners, councils, nhs := idx.partners, idx.councils, idx.nhs
	type routeKey struct{ msg, to string }
	seen := map[routeKey]bool{}
	for _, r := range c.Routes {
		where := at(r.Line)
		if r.Message == MessageStatistics || partners[r.To].Kind == KindCommissioner {
			errs = append(errs, c.checkStatisticsRoute(r, partners)...)
			k := routeKey{r.Message, r.To}
			if seen[k] {
				errs = append(errs, fmt.Errorf("%s: a second route for message %q to %q", where, r.Message, r.To))
			}
			seen[k] = true
			continue
		}
		if !knownKinds[r.Message] {
			errs = append(errs, fmt.Errorf("%s: route message %q is not a known kind (known: %s)", where, r.Message, strings.Join(sortedKeys(knownKinds), ", ")))
		}
		switch {
		case r.To == RecipientCouncil:
			if len(councils) == 0 {
				errs = append(errs, fmt.Errorf("%s: route to %q but no council partner is configured", at(r.toLine()), r.To))
			}
		case r.To == RecipientRequester:
			if nhs == 0 {
				errs = append(errs, fmt.Errorf("%s: route to %q but no nhs partner is configured", at(r.toLine()), r.To))
			}
		default:
			if _, ok := partners[r.To]; !ok {
				errs = append(errs, fmt.Errorf("%s: route to unknown recipient %q (partners: %s; or %q for the council of the person's area, %q for the requester's NHS endpoint)",
					at(r.toLine()), r.To, strings.Join(sortedKeys(partners), ", "), RecipientCouncil, RecipientRequester))
			}
		}
		k := routeKey{r.Message, r.To}
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: a second route for message %q to %q", where, r.Message, r.To))
		}
		seen[k] = true
		if strings.TrimSpace(r.Purpose) == "" {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s needs a purpose", where, r.Message, r.To))
		}
		if strings.TrimSpace(r.LawfulBasis) == "" {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s needs a lawful_basis (UK GDPR Article 6)", where, r.Message, r.To))
		}
		if len(r.Fields) == 0 {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s lists no fields; a recipient that needs nothing needs no route", where, r.Message, r.To))
		}
		for _, e := range r.Entries {
			if e.problem != "" {
				errs = append(errs, fmt.Errorf("%s: route %s -> %s: %s", at(e.Line), r.Message, r.To, e.problem))
			}
		}
		errs = append(errs, c.checkRouteFields(r)...)
	}
	return errs
}

// checkStatisticsRoute checks a route of the statistics, or to a
// commissioner: statistics go only to commissioners, commissioners get
// only statistics, and such a route names no fields (the statistics hold
// no one's) but a purpose and a lawful basis, which the disclosure
// record gives each publication.
func (c *Config) checkStatisticsRoute(r Route, partners map[string]Partner) []error {
	var errs []error
	where := c.at(r.Line)
	switch {
	case r.Message != MessageStatistics:
		errs = append(errs, fmt.Errorf("%s: route %s -> %s: a commissioner receives only message %q (anonymised statistics), never personal data",
			where, r.Message, r.To, MessageStatistics))
	case partners[r.To].Kind != KindCommissioner:
		errs = append(errs, fmt.Errorf("%s: route %s -> %s: statistics go to a partner of kind %q (partners: %s)",
			c.at(r.toLine()), r.Message, r.To, KindCommissioner, strings.Join(sortedKeys(partners), ", ")))
	}
	if len(r.Entries) > 0 || r.RequiresPermission || r.SpecialCategoryBasis != "" {
		errs = append(errs, fmt.Errorf("%s: route %s -> %s: the statistics hold no one's data: name no fields, special_category_basis or requires_permission",
			where, r.Message, r.To))
	}
	if strings.TrimSpace(r.Purpose) == "" {
		errs = append(errs, fmt.Errorf("%s: route %s -> %s needs a purpose", where, r.Message, r.To))
	}
	if strings.TrimSpace(r.LawfulBasis) == "" {
		errs = append(errs, fmt.Errorf("%s: route %s -> %s needs a lawful_basis (UK GDPR Article 6)", where, r.Message, r.To))
	}
	return errs
}

// checkRouteFields checks the fields a route names: known, named once,
// transforms that apply, a pseudonym key where one is needed, an Article 9
// basis for special category data, and one transform for fields that hold
// the same data.
func (c *Config) checkRouteFields(r Route) []error {
	var errs []error
	at := c.at
	named := map[string]int{}
	for i, f := range r.Fields {
		if f == "" {
			continue // reported above
		}
		fd, ok := model.LookupField(f)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s: unknown field %q (known: %s)", at(r.fieldLine(i)), r.Message, r.To, f, strings.Join(model.FieldNames(), ", ")))
			continue
		}
		if _, dup := named[f]; dup {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s names field %q twice", at(r.fieldLine(i)), r.Message, r.To, f))
		}
		named[f] = i
		if err := minimise.CheckRule(minimise.Rule{Field: f, As: r.transform(i)}); err != nil {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s: %w", at(r.asLine(i)), r.Message, r.To, err))
		} else if r.transform(i) == minimise.Pseudonymise {
			switch {
			case r.PseudonymKeyEnv == "":
				errs = append(errs, fmt.Errorf("%s: route %s -> %s pseudonymises %q but names no pseudonym_key_env (on the route or under policy)", at(r.asLine(i)), r.Message, r.To, f))
			case !envPattern.MatchString(r.PseudonymKeyEnv):
				errs = append(errs, fmt.Errorf("%s: route %s -> %s: pseudonym_key_env %q is not an environment variable name (put the key in the environment, never in this file)", at(r.Line), r.Message, r.To, r.PseudonymKeyEnv))
			}
		}
		if fd.Class == model.ClassSpecial && strings.TrimSpace(r.SpecialCategoryBasis) == "" {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s sends special category field %q but names no special_category_basis (UK GDPR Article 9)", at(r.fieldLine(i)), r.Message, r.To, f))
		}
	}
	for _, pair := range overlapping {
		i, ok1 := named[pair[0]]
		j, ok2 := named[pair[1]]
		if ok1 && ok2 && r.transform(i) != r.transform(j) {
			errs = append(errs, fmt.Errorf("%s: route %s -> %s names %q as %s and %q as %s; they hold the same data, so give them the same transform or name one",
				at(r.fieldLine(j)), r.Message, r.To, pair[0], r.transform(i), pair[1], r.transform(j)))
		}
	}
	return errs
}

// overlapping lists fields that hold the same data; a route naming both must
// give them the same transform, or one would undo the other.
var overlapping = [][2]string{{"person.address", "person.postcode"}}

// CheckSecrets reports every partner whose inbound secret (secret_env,
// secret_file) cannot be read, and every route that pseudonymises without
// its key in the environment (or with a key shorter than
// minimise.MinPseudonymKeyBytes).
// The hub calls it before it starts; Check does not, so that a file can be
// checked where the secrets are not.
func (c *Config) CheckSecrets() error {
	var errs []error
	for _, p := range c.Partners {
		if _, err := p.InboundSecret(); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", c.Source, max(p.Inbound.Line, p.Line), err))
		}
	}
	for _, r := range c.Routes {
		if r.Pseudonymises() && len(r.PseudonymKey()) < minimise.MinPseudonymKeyBytes {
			errs = append(errs, fmt.Errorf("%s:%d: route %s -> %s pseudonymises the NHS number: set the environment variable %s to a secret key of at least %d bytes",
				c.Source, r.Line, r.Message, r.To, r.PseudonymKeyEnv, minimise.MinPseudonymKeyBytes))
		}
	}
	return errors.Join(errs...)
}

// CheckTokens reports every partner whose token_env names an environment
// variable that is unset or empty (or holds a token with spaces or line
// breaks around it), each with the file and line. The hub calls it before
// it starts, and refuses to start on any (or, in insecure development mode,
// warns and calls those partners without a token).
func (c *Config) CheckTokens() error {
	var errs []error
	for _, p := range c.Partners {
		if _, err := p.Token(); err != nil {
			where := c.Source
			if p.Line > 0 {
				where = fmt.Sprintf("%s:%d", c.Source, p.Line)
			}
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

// PartnerByID returns the partner with id.
func (c *Config) PartnerByID(id string) (Partner, bool) {
	for _, p := range c.Partners {
		if p.ID == id {
			return p, true
		}
	}
	return Partner{}, false
}

// CouncilTable returns the postcode table of the configured councils.
func (c *Config) CouncilTable() (*postcode.Table, error) {
	m := map[string][]string{}
	for _, p := range c.Partners {
		if p.Kind == KindCouncil {
			m[p.ID] = p.PostcodePrefixes
		}
	}
	return postcode.NewTable(m)
}

// RequesterTable returns, for each ODS code (upper case), the id of the nhs
// partner whose FHIR endpoint serves that organisation.
func (c *Config) RequesterTable() map[string]string {
	m := map[string]string{}
	for _, p := range c.Partners {
		if p.Kind == KindNHS {
			for _, code := range p.ODSCodes {
				m[strings.ToUpper(strings.TrimSpace(code))] = p.ID
			}
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// check refuses console settings that would lock operators out or keep
// sessions for ever: each duration given is at least a minute, a session
// lives at least as long as it may stay idle, and the failures counted are
// at least 1.
func (c Console) check(source string) []error {
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"session_idle", c.SessionIdle}, {"session_lifetime", c.SessionLifetime}, {"lock_for", c.LockFor}} {
		if d.v != 0 && d.v < time.Minute {
			errs = append(errs, fmt.Errorf("%s: console.%s %s must be at least 1m (or left out for the default)", source, d.key, d.v))
		}
	}
	if c.SessionIdle != 0 && c.SessionLifetime != 0 && c.SessionLifetime < c.SessionIdle {
		errs = append(errs, fmt.Errorf("%s: console.session_lifetime %s is shorter than console.session_idle %s", source, c.SessionLifetime, c.SessionIdle))
	}
	if c.MaxFailedSignIns < 0 {
		errs = append(errs, fmt.Errorf("%s: console.max_failed_sign_ins %d must be at least 1 (or left out for the default)", source, c.MaxFailedSignIns))
	}
	return errs
}
