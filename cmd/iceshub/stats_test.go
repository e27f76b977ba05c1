package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/routes"
)

// rawStatistics reads the statistics table straight from the database
// file, as anyone with the file could: its columns, and every row as text.
func rawStatistics(t *testing.T, path string) (cols []string, rows [][]string) {
	t.Helper()
	conn, err := sqlite.OpenConn(path, sqlite.OpenReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := sqlitex.Execute(conn, `SELECT name FROM pragma_table_info('statistics') ORDER BY cid`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { cols = append(cols, st.ColumnText(0)); return nil }}); err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.Execute(conn, `SELECT * FROM statistics ORDER BY 1, 2, 3, 4, 5, 6, 7`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error {
			row := make([]string, st.ColumnCount())
			for i := range row {
				row[i] = st.ColumnText(i)
			}
			rows = append(rows, row)
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	return cols, rows
}

var (
	nhsNumberLike = regexp.MustCompile(`\d{3}\s?\d{3}\s?\d{4}`)
	postcodeLike  = regexp.MustCompile(`(?i)\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b`)
	dateLike      = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
)

// TestStatisticsOfDemoTrafficIdentifyNoOneAndOutliveRetention runs the
// demo's journey (every return flow) and the other sample referrals
// through a hub, then reads the statistics table from the database file:
// it has the columns of a cell and a count only, and no value in it is, or
// holds, an NHS number, a name, a postcode, a date of birth or a referral
// id of the traffic. Then retention removes every delivered payload and
// the closed orders' records, and 'iceshub stats' prints what it printed
// before, from a table that has not changed.
//
// Longer than 100 lines: the demo's traffic, the raw store read for personal data, then retention
// and the statistics again, in order.
func TestStatisticsOfDemoTrafficIdentifyNoOneAndOutliveRetention(t *testing.T) {
	ctx := context.Background()
	o := startOpsHub(t, opsHubConfig{unlimited: true})
	base, h, sims := o.base, o.hub, o.sims
	j, err := demo.StartJourney(ctx, h, base, "../../testdata/fhir", sims, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range demo.Steps() {
		if _, err := j.Play(ctx, step, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ids := []string{j.A, j.B}
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	for _, f := range files {
		if strings.HasSuffix(f, "referral-1-line.json") || strings.HasSuffix(f, "referral-3-lines.json") {
			continue // the journey's
		}
		status, answer, err := sims.PostBundle(ctx, base, mustRead(t, f))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", f, status, err, answer)
		}
		id := demo.ReferralIDFrom(answer)
		waitOutcomes(t, h, id, 2)
		ids = append(ids, id)
	}

	// What identifies the people of this traffic, from the hub's own records.
	var personal []string
	for _, id := range ids {
		rec, found, err := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: id})
		if err != nil || !found {
			t.Fatalf("referral %s: found %v, %v", id, found, err)
		}
		p := rec.Referral.Person
		personal = append(personal, id, p.NHSNumber, p.Name.Text, p.Name.Family, p.Address.Postcode, p.BirthDate,
			rec.Referral.Source.ServiceRequestID)
		personal = append(personal, p.Name.Given...)
		personal = append(personal, p.Address.Lines...)
	}
	personal = slices.DeleteFunc(personal, func(s string) bool { return len(s) < 3 })
	if len(personal) < 6*len(ids) {
		t.Fatalf("the traffic's people hold too little to look for: %q", personal)
	}

	cols, rows := rawStatistics(t, hub.StoreFile(h.Config().Store.DataDir))
	if want := []string{"month", "council", "priority", "setting", "class", "measure", "days", "n"}; !slices.Equal(cols, want) {
		t.Fatalf("statistics columns %v, want %v: a new column must be shown to identify no one", cols, want)
	}
	measures := map[string]bool{}
	for _, row := range rows {
		measures[row[5]] = true
		for _, v := range row {
			for _, p := range personal {
				if strings.Contains(strings.ToLower(v), strings.ToLower(p)) {
					t.Errorf("statistics row %q holds %q, which identifies a person of the traffic", row, p)
				}
			}
			if nhsNumberLike.MatchString(v) || postcodeLike.MatchString(v) || dateLike.MatchString(v) || uuidRE.MatchString(v) {
				t.Errorf("statistics row %q holds something like an NHS number, a postcode, a date or an id: %q", row, v)
			}
		}
	}
	for _, m := range []stats.Measure{stats.Referrals, stats.Scheduled, stats.FailedDeliveries, stats.Delivered, stats.Cancelled,
		stats.Complaints, stats.SafeguardingConcerns, stats.EquipmentIssues} {
		if !measures[string(m)] {
			t.Errorf("the journey's %s were not counted (rows %q)", m, rows)
		}
	}

	// Retention, once everything is delivered: payloads and closed
	// orders go, the statistics stay.
	dir := h.Config().Store.DataDir
	month := stats.Month(time.Now())
	statsOut := func() string {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run([]string{"stats", "--data", dir, "--from", month, "--to", month, "--by", "council,month,priority,class"}, &out, &errs); code != 0 {
			t.Fatalf("stats exited %d: %s", code, errs.String())
		}
		return out.String()
	}
	before := statsOut()
	if !strings.Contains(before, "# primary suppression: counts from 1 to 7 are shown as *") ||
		!strings.Contains(before, "council,month,priority,class,referrals,") {
		t.Fatalf("stats output:\n%s", before)
	}
	topics := append([]string{intake.TopicReferralReceived, intake.TopicEventReceived, intake.TopicUrgentEventReceived},
		routes.Topics([]string{"provider", "council-cwac", "council-ceast", "nhs-trust"})...)
	eventually(t, "every message acknowledged", func() bool {
		var pending int64
		for _, tp := range topics {
			n, err := h.Store().Pending(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			pending += n
		}
		return pending == 0
	})
	// retention run is refused while a hub runs on the directory.
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run([]string{"retention", "run", "--data", dir, "--now", time.Now().AddDate(0, 0, 31).UTC().Format(time.RFC3339)}, &out, &errs); code != 0 {
		t.Fatalf("retention run exited %d: %s", code, errs.String())
	}
	removed := regexp.MustCompile(`removed (\d+) messages in all`).FindStringSubmatch(out.String())
	closed := regexp.MustCompile(`removed (\d+) records of closed orders`).FindStringSubmatch(out.String())
	if removed == nil || closed == nil || removed[1] == "0" || closed[1] == "0" {
		t.Fatalf("retention removed no payloads or no closed orders:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(removed[1]); n < len(ids) {
		t.Fatalf("retention removed %d messages for %d referrals:\n%s", n, len(ids), out.String())
	}
	for _, tp := range topics {
		if n := countRows(t, hub.StoreFile(h.Config().Store.DataDir), "watermill_"+tp); n != 0 {
			t.Errorf("%d payloads left on %s after retention", n, tp)
		}
	}
	if _, found, _ := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: j.A}); found {
		t.Error("the cancelled referral's record outlived retention")
	}
	if _, after := rawStatistics(t, hub.StoreFile(h.Config().Store.DataDir)); !slices.EqualFunc(after, rows, slices.Equal) {
		t.Errorf("statistics table after retention:\n%q\nwant\n%q", after, rows)
	}
	if got := statsOut(); got != before {
		t.Errorf("stats after retention:\n%s\nwant\n%s", got, before)
	}
}

func countRows(t *testing.T, path, table string) int {
	t.Helper()
	conn, err := sqlite.OpenConn(path, sqlite.OpenReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := -1
	if err := sqlitex.Execute(conn, `SELECT COUNT(*) FROM '`+table+`'`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { n = st.ColumnInt(0); return nil }}); err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0
		}
		t.Fatal(err)
	}
	return n
}

// TestStatsCommandAndAdminAPI: 'iceshub stats' and GET /admin/stats take
// the same options and refuse the same mistakes; the admin API needs its
// token; each format says which rules it applied.
func TestStatsCommandAndAdminAPI(t *testing.T) {
	const token = "fictional-admin-token-for-the-stats-tests"
	o := startOpsHub(t, opsHubConfig{adminToken: token})
	template := referralTemplate(t)
	for range 3 {
		o.send(t, template)
	}
	month := stats.Month(time.Now())
	url := o.base + "/admin/stats?from=" + month + "&to=" + month

	if code, _ := adminCall(t, http.MethodGet, url, "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /admin/stats without the token = %d, want 401", code)
	}
	code, body := adminCall(t, http.MethodGet, url+"&format=json&by=month", token, "")
	if code != http.StatusOK {
		t.Fatalf("GET /admin/stats = %d\n%s", code, body)
	}
	var got stats.JSONTable
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	// Three referrals: 1-7, shown as *; the month and its total alike.
	if len(got.Rows) != 2 || got.Rows[0].Group["month"] != month || got.Rows[0].Values["referrals"] != "*" ||
		got.Rows[1].Group["month"] != stats.Total || got.Rows[1].Values["referrals"] != "*" || len(got.Rules) < 4 {
		t.Errorf("GET /admin/stats json:\n%s", body)
	}
	code, body = adminCall(t, http.MethodGet, url+"&format=markdown", token, "")
	if code != http.StatusOK || !bytes.Contains(body, []byte("| council | month | referrals |")) || !bytes.Contains(body, []byte("Rules applied:")) {
		t.Errorf("GET /admin/stats markdown = %d\n%s", code, body)
	}
	code, csvBody := adminCall(t, http.MethodGet, url, token, "")
	if code != http.StatusOK || !bytes.HasPrefix(csvBody, []byte("# primary suppression")) {
		t.Errorf("GET /admin/stats csv = %d\n%s", code, csvBody)
	}
	for _, bad := range []string{"", "?from=" + month, "?from=2026-1&to=2026-02", "?from=2026-03&to=2026-01",
		"?from=" + month + "&to=" + month + "&by=postcode", "?from=" + month + "&to=" + month + "&format=xml"} {
		if code, body := adminCall(t, http.MethodGet, o.base+"/admin/stats"+bad, token, ""); code != http.StatusBadRequest {
			t.Errorf("GET /admin/stats%s = %d, want 400\n%s", bad, code, body)
		}
	}

	// The command prints what the API serves, and refuses the same
	// mistakes as usage errors.
	var out, errs bytes.Buffer
	if code := run([]string{"stats", "--data", o.dir, "--from", month, "--to", month}, &out, &errs); code != 0 {
		t.Fatalf("stats exited %d: %s", code, errs.String())
	}
	if out.String() != string(csvBody) {
		t.Errorf("stats printed\n%s\nthe admin API served\n%s", out.String(), csvBody)
	}
	// The picture: the same from the command and the API, drawn by month
	// and priority, the three referrals withheld.
	code, svgBody := adminCall(t, http.MethodGet, url+"&format=svg", token, "")
	out.Reset()
	if c := run([]string{"stats", "--data", o.dir, "--from", month, "--to", month, "--format", "svg"}, &out, &errs); c != 0 || code != http.StatusOK ||
		out.String() != string(svgBody) || !bytes.HasPrefix(svgBody, []byte(`<svg xmlns="http://www.w3.org/2000/svg"`)) ||
		!bytes.Contains(svgBody, []byte(month+" referrals: withheld (*)")) {
		t.Errorf("stats --format svg exited %d, GET /admin/stats svg = %d\n%s", c, code, svgBody)
	}
	for _, args := range [][]string{{"--from", month}, {"--from", month, "--to", month, "--by", "postcode"},
		{"--from", month, "--to", month, "--by", "council", "--format", "svg"},
		{"--from", month, "--to", month, "--format", "xml"}, {"--from", "2026-03", "--to", "2026-01"}} {
		if code := run(append([]string{"stats", "--data", o.dir}, args...), io.Discard, io.Discard); code != 2 {
			t.Errorf("stats %v exited %d, want 2", args, code)
		}
	}
}
