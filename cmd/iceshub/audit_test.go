package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/store"
	sqlitestore "github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/internal/subject"
)

// TestAuditSubjectAndVerifyAfterDemoTraffic sends the sample referrals
// through a running hub, then answers a subject access request for the
// person of referral-3-lines.json from the disclosure record, and verifies
// the record before and after someone edits it.
//
// Longer than 100 lines: the demo's traffic, then what audit subject and audit verify say of it, in
// order.
func TestAuditSubjectAndVerifyAfterDemoTraffic(t *testing.T) {
	t.Setenv(subject.EnvKey, "") // the key file the hub generates in its data directory
	ctx := context.Background()
	base, h, sims := startTestHub(t, io.Discard)
	dir := h.Config().Store.DataDir
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	if len(files) < 2 {
		t.Fatalf("found %d sample referrals", len(files))
	}
	var target string
	for _, f := range files {
		status, answer, err := sims.PostBundle(ctx, base, mustRead(t, f))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", f, status, err, answer)
		}
		id := demo.ReferralIDFrom(answer)
		waitOutcomes(t, h, id, 3)
		if filepath.Base(f) == "referral-3-lines.json" {
			target = id
		}
	}
	if target == "" {
		t.Fatal("referral-3-lines.json not sent")
	}
	if fi, err := os.Stat(filepath.Join(dir, subject.FileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("subject key file: %v, %v", fi, err)
	}

	// The subject column holds a keyed hash, never an NHS number.
	ds, err := h.Store().Disclosures(ctx, target)
	if err != nil || len(ds) != 3 {
		t.Fatalf("disclosures of %s = %v, %v", target, ds, err)
	}
	for _, d := range ds {
		if !strings.HasPrefix(d.Subject, subject.Prefix) || strings.Contains(d.Subject, "9990000026") {
			t.Errorf("entry %d subject %q", d.ID, d.Subject)
		}
	}

	var out, errs bytes.Buffer
	if code := run([]string{"audit", "subject", "--nhs-number", "9990000026", "--data", dir}, &out, &errs); code != 0 {
		t.Fatalf("audit subject exited %d: %s", code, errs.String())
	}
	text := out.String()
	for _, want := range []string{"999 000 0026", "Art 12(3)", "reply due by", "3 disclosure record entries",
		"provider", "council-ceast", target, "Disclosure record verified intact"} {
		if !strings.Contains(text, want) {
			t.Errorf("subject report lacks %q:\n%s", want, text)
		}
	}

	out.Reset()
	if code := run([]string{"audit", "subject", "--nhs-number", "999 000 0026", "--json", "--received", "2026-01-31", "--data", dir}, &out, &errs); code != 0 {
		t.Fatalf("audit subject --json exited %d: %s", code, errs.String())
	}
	var rep audit.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	recipients := map[string]bool{}
	for _, d := range rep.Disclosures {
		if d.ReferralID != target || d.Outcome != store.OutcomeSent || len(d.Fields) == 0 || d.Purpose == "" || d.LawfulBasis == "" {
			t.Errorf("entry %+v", d)
		}
		recipients[d.Recipient] = true
	}
	if len(rep.Disclosures) != 3 || !recipients["provider"] || !recipients["council-ceast"] || !recipients["nhs-trust"] {
		t.Errorf("recipients %v; want provider, council-ceast and nhs-trust", recipients)
	}
	if rep.ReplyDueBy != "2026-02-28" || !rep.RecordIntegrity.OK {
		t.Errorf("report header %+v", rep)
	}

	// Another person with no referral: an empty report, not an error.
	out.Reset()
	if code := run([]string{"audit", "subject", "--nhs-number", "9434765919", "--data", dir}, &out, &errs); code != 0 || !strings.Contains(out.String(), "0 disclosure record entries") {
		t.Errorf("unknown person: exit %d\n%s", code, out.String())
	}
	// An invalid NHS number is a usage error.
	if code := run([]string{"audit", "subject", "--nhs-number", "9990000027", "--data", dir}, io.Discard, io.Discard); code != 2 {
		t.Errorf("invalid NHS number: exit %d, want 2", code)
	}

	out.Reset()
	if code := run([]string{"audit", "verify", "--data", dir}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "ok: ") {
		t.Fatalf("audit verify on an untouched record: exit %d\n%s%s", code, out.String(), errs.String())
	}

	// Someone with access to the file rewrites one entry's outcome.
	conn, err := sqlite.OpenConn(filepath.Join(dir, sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	conn.SetBusyTimeout(10 * time.Second)
	if err := sqlitex.Execute(conn, `UPDATE disclosures SET outcome = 'withheld' WHERE id = ?`, &sqlitex.ExecOptions{Args: []any{ds[0].ID}}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	errs.Reset()
	if code := run([]string{"audit", "verify", "--data", dir}, io.Discard, &errs); code != 1 {
		t.Fatalf("audit verify after tampering: exit %d, want 1", code)
	}
	if want := "entry " + itoa(ds[0].ID); !strings.Contains(errs.String(), want) {
		t.Errorf("audit verify said %q; want it to name %q", errs.String(), want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
