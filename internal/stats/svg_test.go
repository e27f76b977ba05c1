package stats

import (
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var countLabel = regexp.MustCompile(`<text class="count"[^>]*>([^<]*)</text>`)

// wellFormed reports whether s parses as XML.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed: %v\n%s", err, s)
		}
	}
}

// TestSVGDrawsOnlyPublishedCounts: over generated months with many small
// cells, the picture labels no count from 1 to 7, every count it labels is
// 0, a multiple of 5 or *, and it is accessible (role img, title, desc).
func TestStatsSVGDrawsOnlyPublishedCounts(t *testing.T) {
	months := []string{"2026-01", "2026-02", "2026-03", "2026-04"}
	withheld := 0
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 19))
		tab, err := Publish(activity(r, months), Query{From: months[0], To: months[len(months)-1], By: ChartBy()}, DefaultRules())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := WriteSVG(&b, tab, true); err != nil {
			t.Fatal(err)
		}
		svg := b.String()
		wellFormed(t, svg)
		for _, want := range []string{`role="img"`, `<title id="stats-title">`, `<desc id="stats-desc">`, `aria-labelledby="stats-title stats-desc"`} {
			if !strings.Contains(svg, want) {
				t.Fatalf("seed %d: no %s", seed, want)
			}
		}
		labels := countLabel.FindAllStringSubmatch(svg, -1)
		if len(labels) == 0 {
			t.Fatalf("seed %d: no count labelled", seed)
		}
		for _, m := range labels {
			if m[1] == Suppressed {
				withheld++
				continue
			}
			n, err := strconv.Atoi(m[1])
			if err != nil || (n >= 1 && n <= 7) || n%5 != 0 {
				t.Fatalf("seed %d: count drawn as %q", seed, m[1])
			}
		}
	}
	if withheld == 0 {
		t.Fatal("no withheld count in 40 generated tables: the test tests nothing")
	}
}

// TestSVGDrawsAWithheldCellAsAMarkNotANumber: a month whose referrals
// are withheld is a hatched stub labelled *, and its title says withheld.
func TestStatsSVGDrawsAWithheldCellAsAMarkNotANumber(t *testing.T) {
	cols := Columns()
	row := func(month, prio string, set map[string]string) Row {
		v := make([]string, len(cols))
		for i, c := range cols {
			v[i] = "0"
			if s, ok := set[c]; ok {
				v[i] = s
			}
		}
		return Row{Group: []string{month, prio}, Values: v}
	}
	tab := Table{From: "2026-05", To: "2026-05", By: ChartBy(), Columns: cols, Standards: map[string]int{"urgent": 1},
		Rows: []Row{
			row("2026-05", Total, map[string]string{string(Referrals): Suppressed, string(Delivered): "15"}),
			row(Total, "urgent", map[string]string{string(Delivered): "15", ColMedianDays: "1", ColP90Days: Suppressed, ColWithinStandardPercent: Suppressed}),
			row(Total, Total, map[string]string{string(Referrals): Suppressed, string(Delivered): "15"}),
		}}
	var b strings.Builder
	if err := WriteSVG(&b, tab, false); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	wellFormed(t, svg)
	for _, want := range []string{
		`<title>2026-05 referrals: withheld (*)</title>`,
		`<title>2026-05 delivered: 15</title>`,
		`<title>urgent 90th percentile: withheld (*)</title>`,
		`<title>urgent: withheld (*)</title>`,
		`<title>urgent standard: 1 day</title>`,
		`2026-05: * (withheld) referrals, 15 delivered`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("no %q in\n%s", want, svg)
		}
	}
	var labels []string
	for _, m := range countLabel.FindAllStringSubmatch(svg, -1) {
		labels = append(labels, m[1])
	}
	if !slices.Equal(labels, []string{Suppressed, "15"}) {
		t.Errorf("count labels %q, want [* 15]", labels)
	}
}

func TestStatsSVGFormatDrawsByMonthAndPriority(t *testing.T) {
	q, f, err := Request{From: "2026-01", To: "2026-02", By: DefaultBy, Format: "svg"}.Query()
	if err != nil || f != "svg" || !slices.Equal(q.By, ChartBy()) {
		t.Fatalf("svg with the default by: %v %q %v", q.By, f, err)
	}
	if _, _, err := (Request{From: "2026-01", To: "2026-02", By: "council", Format: "svg"}).Query(); !errors.Is(err, ErrRequest) {
		t.Fatalf("svg by council: %v, want a request error", err)
	}
	if err := WriteSVG(io.Discard, Table{By: []Dim{DimCouncil}}, true); err == nil {
		t.Fatal("a table by council drawn")
	}
}
