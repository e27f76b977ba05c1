package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// Article 12(3) UK GDPR, as the reports state it.
const sarDeadlineRule = "UK GDPR Art 12(3): reply without undue delay and at the latest within one month of receiving the request " +
	"(extendable by two further months for complex or numerous requests, telling the person within the first month)"

// cmdAudit answers questions about the disclosure record: is it intact
// (verify), and what was shared about one person (subject).
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: audit verify|subject [flags]", errUsage)
	}
	switch args[0] {
	case "verify":
		return auditVerify(ctx, args[1:], stdout, stderr)
	case "subject":
		return auditSubject(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown audit command %q: want verify or subject", errUsage, args[0])
	}
}

// storeFlags are the flags that find the store: --data, else the data
// directory of --config, else the built-in configuration's.
type storeFlags struct{ data, config *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data:   fs.String("data", "", "data directory of the hub (default: store.data_dir of --config)"),
		config: fs.String("config", "", "configuration file whose store.data_dir to read (default: the built-in configuration)"),
	}
}

func (f storeFlags) dataDir() (string, error) {
	if *f.data != "" && *f.config != "" {
		return "", fmt.Errorf("%w: give --data or --config, not both", errUsage)
	}
	if *f.data != "" {
		return *f.data, nil
	}
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return "", err
	}
	return cfg.Store.DataDir, nil
}

// open opens the existing store the flags name, for tools that look up no
// person (no subject key).
func (f storeFlags) open() (store.Engine, error) {
	dir, err := f.dataDir()
	if err != nil {
		return nil, err
	}
	return openExisting(dir, nil)
}

// auditVerify recomputes the disclosure record's hash chain. A broken chain
// is an error naming the first bad entry (exit status 1).
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	st, err := sf.open()
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.VerifyDisclosures(ctx)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("disclosure record broken at entry %d: %s (%d entries verified before it)", rep.BadID, rep.Problem, rep.Entries)
	}
	fmt.Fprintf(stdout, "ok: %d entries verified", rep.Entries)
	if rep.Checkpoint > 0 {
		fmt.Fprintf(stdout, " after checkpoint %d", rep.Checkpoint)
	}
	if rep.Head != "" {
		fmt.Fprintf(stdout, "; head %s", rep.Head)
	}
	fmt.Fprintln(stdout)
	return nil
}

// subjectReport is the JSON form of a subject access report.
type subjectReport struct {
	NHSNumber       string             `json:"nhsNumber"`
	Subject         string             `json:"subject"`
	GeneratedAt     time.Time          `json:"generatedAt"`
	RequestReceived string             `json:"requestReceived"`
	ReplyDueBy      string             `json:"replyDueBy"`
	DeadlineRule    string             `json:"deadlineRule"`
	RecordIntegrity store.VerifyReport `json:"recordIntegrity"`
	Disclosures     []store.Disclosure `json:"disclosures"`
}

// auditSubject prints everything the disclosure record holds about one NHS
// number, ready for a subject access reply. The report is stdout; nothing
// personal is logged.
func auditSubject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit subject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	number := fs.String("nhs-number", "", "the person's NHS number (required)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	received := fs.String("received", "", "date the request was received, YYYY-MM-DD (default: today)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	nhs := nhsnumber.Normalise(*number)
	if nhs == "" {
		return fmt.Errorf("%w: --nhs-number is required", errUsage)
	}
	if err := nhsnumber.Check(nhs); err != nil {
		return fmt.Errorf("%w: --nhs-number: %v", errUsage, err)
	}
	now := time.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if *received != "" {
		d, err := time.Parse(time.DateOnly, *received)
		if err != nil {
			return fmt.Errorf("%w: --received: want YYYY-MM-DD", errUsage)
		}
		day = d
	}
	dir, err := sf.dataDir()
	if err != nil {
		return err
	}
	st, key, err := openWithSubjectKey(dir, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	sbj := key.Of(nhs)
	ds, err := st.DisclosuresBySubject(ctx, sbj)
	if err != nil {
		return err
	}
	integrity, err := st.VerifyDisclosures(ctx)
	if err != nil {
		return err
	}
	rep := subjectReport{
		NHSNumber: nhs, Subject: sbj, GeneratedAt: now.UTC().Truncate(time.Second),
		RequestReceived: day.Format(time.DateOnly), ReplyDueBy: oneMonthAfter(day).Format(time.DateOnly),
		DeadlineRule: sarDeadlineRule, RecordIntegrity: integrity, Disclosures: ds,
	}
	if rep.Disclosures == nil {
		rep.Disclosures = []store.Disclosure{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeSubjectReport(stdout, rep)
}

func writeSubjectReport(w io.Writer, rep subjectReport) error {
	fmt.Fprintf(w, "Subject access report: what iceshub shared about NHS number %s %s %s\n", rep.NHSNumber[:3], rep.NHSNumber[3:6], rep.NHSNumber[6:])
	fmt.Fprintf(w, "Request received %s; reply due by %s. %s.\n", rep.RequestReceived, rep.ReplyDueBy, rep.DeadlineRule)
	fmt.Fprintf(w, "Generated %s.", rep.GeneratedAt.Format(time.RFC3339))
	if rep.RecordIntegrity.OK {
		fmt.Fprintf(w, " Disclosure record verified intact (%d entries).\n", rep.RecordIntegrity.Entries)
	} else {
		fmt.Fprintf(w, " WARNING: the disclosure record is broken at entry %d (%s); run 'iceshub audit verify'.\n",
			rep.RecordIntegrity.BadID, rep.RecordIntegrity.Problem)
	}
	fmt.Fprintf(w, "%d disclosure record entries.\n\n", len(rep.Disclosures))
	if len(rep.Disclosures) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN (UTC)\tRECIPIENT\tKIND\tOUTCOME\tPURPOSE\tLAWFUL BASIS\tREFERRAL\tFIELDS")
	for _, d := range rep.Disclosures {
		outcome := d.Outcome
		if d.Detail != "" {
			outcome += " (" + d.Detail + ")"
		}
		fields := strings.Join(d.Fields, ", ")
		if fields == "" {
			fields = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.At.UTC().Format("2006-01-02 15:04:05"), d.Recipient, d.Kind,
			outcome, d.Purpose, d.LawfulBasis, d.ReferralID, fields)
	}
	return tw.Flush()
}

// oneMonthAfter is the Art 12(3) deadline as the ICO counts it: the same
// day of the next month, or that month's last day when it has no such day
// (31 January gives 28 or 29 February).
func oneMonthAfter(d time.Time) time.Time {
	y, m, day := d.Date()
	first := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	if last := first.AddDate(0, 1, -1).Day(); day > last {
		day = last
	}
	return time.Date(first.Year(), first.Month(), day, 0, 0, 0, 0, time.UTC)
}

// openWithSubjectKey opens the existing store of dir with the subject key
// serve uses (never making a new one), for the commands that read or write
// what is recorded about a person.
func openWithSubjectKey(dir string, stderr io.Writer) (store.Engine, subject.Key, error) {
	key, err := loadSubjectKey(dir, false, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, subject.Key{}, err
	}
	st, err := openExisting(dir, key.Bytes())
	if err != nil {
		return nil, subject.Key{}, err
	}
	return st, key, nil
}
