package console

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/stats"
)

// smallStats publishes generated counts for q's months, every cell of
// them from 1 to 7 (what must never be shown), through the default rules.
func smallStats(_ context.Context, q stats.Query) (stats.Table, error) {
	from, err := stats.ParseMonth(q.From)
	if err != nil {
		return stats.Table{}, err
	}
	to, err := stats.ParseMonth(q.To)
	if err != nil {
		return stats.Table{}, err
	}
	r := rand.New(rand.NewPCG(19, 2))
	var counts []stats.Count
	for m := from; !m.After(to); m = m.AddDate(0, 1, 0) {
		for _, p := range []string{"urgent", "routine", "asap"} {
			k := stats.Key{Month: m.Format("2006-01"), Council: "council-cwac", Priority: p, Class: "12 22"}
			for _, meas := range stats.Measures() {
				counts = append(counts, stats.Count{Key: k, Measure: meas, Days: stats.NoDays, N: 1 + r.Int64N(7)})
			}
			for d := range 3 {
				counts = append(counts, stats.Count{Key: k, Measure: stats.Delivered, Days: d * 2, N: 1 + r.Int64N(7)})
			}
		}
	}
	t, err := stats.Publish(counts, q, stats.DefaultRules())
	if err != nil {
		return stats.Table{}, fmt.Errorf("%w: %v", stats.ErrRequest, err) // as hub.PublishStats
	}
	return t, nil
}

var (
	svgCount = regexp.MustCompile(`<text class="count"[^>]*>([^<]*)</text>`)
	numCell  = regexp.MustCompile(`<td class="num">([^<]*)</td>`)
	barTitle = regexp.MustCompile(`<title>\d{4}-\d{2} (referrals|delivered): ([^<]*)</title>`)
)

// TestStatsPageShowsOnlyPublishedFigures: a viewer sees the statistics
// page, linked from the navigation, with an inline SVG and the table; no
// count from 1 to 7 appears in either although every generated cell is one,
// and a withheld cell is drawn as a mark, not a number.
func TestStatsPageShowsOnlyPublishedFigures(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	r.signIn(t, c, "vera", testPassword)
	resp, body := get(t, c, r.srv.URL+"/console/stats?from=2026-01&to=2026-06")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /console/stats: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{`<svg`, `role="img"`, `aria-labelledby="stats-title stats-desc"`, `<figure`, `<figcaption>`,
		`<th scope="col">referrals</th>`, `href="/console/stats" aria-current="page"`, `withheld (*)`, `primary suppression`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page has no %q", want)
		}
	}
	check := func(where, v string) {
		if v == stats.Suppressed || v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || (n >= 1 && n <= 7) {
			t.Errorf("%s shows %q", where, v)
		}
	}
	svg := body[strings.Index(body, "<svg"):strings.Index(body, "</svg>")]
	labels := svgCount.FindAllStringSubmatch(svg, -1)
	if len(labels) == 0 {
		t.Fatal("no count labelled in the chart")
	}
	for _, m := range labels {
		check("a chart label", m[1])
	}
	withheld := 0
	for _, m := range barTitle.FindAllStringSubmatch(svg, -1) {
		if m[2] == "withheld (*)" {
			withheld++
			continue
		}
		check("a bar", m[2])
	}
	if withheld == 0 {
		t.Error("no bar drawn as withheld, though every generated cell is from 1 to 7")
	}
	// The table's counts (not its days or percentages): the first columns.
	rows := strings.Split(body[strings.Index(body, "<tbody>"):], "<tr>")
	for _, row := range rows[1:] {
		cells := numCell.FindAllStringSubmatch(row, -1)
		for _, m := range cells[:len(stats.Measures())+2] {
			check("the table", m[1])
		}
	}
}

func TestStatsPageRefusesBadMonths(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	r.signIn(t, c, "vera", testPassword)
	for _, q := range []string{"from=2026-13&to=2026-14", "from=2026-06&to=2026-01", "from=x&to=2026-01"} {
		resp, body := get(t, c, r.srv.URL+"/console/stats?"+q)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "YYYY-MM") || strings.Contains(body, "<svg") {
			t.Errorf("%s: %d", q, resp.StatusCode)
		}
	}
	resp, body := get(t, c, r.srv.URL+"/console/stats")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `value="2026-12"`) || !strings.Contains(body, `value="2026-01"`) {
		t.Errorf("without months: %d, want the twelve months to 2026-12", resp.StatusCode)
	}
}
