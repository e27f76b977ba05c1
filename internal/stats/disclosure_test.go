package stats

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// activity generates months of activity: counts of every measure in cells
// of random councils, priorities, settings and classes, many of them
// small, with delivered counts spread over days.
func activity(r *rand.Rand, months []string) []Count {
	councils := []string{"council-a", "council-b", "council-c", ""}[:1+r.IntN(4)]
	priorities := []string{"urgent", "routine", "asap", ""}[:1+r.IntN(4)]
	settings := []string{"home", "care-home", ""}[:1+r.IntN(3)]
	classes := []string{"12 22", "18 12", "04 33", UnknownClass}[:1+r.IntN(4)]
	small := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return 1 + r.Int64N(7) // the numbers to hide
		case 2:
			return 8 + r.Int64N(5) // just above them
		default:
			return r.Int64N(60)
		}
	}
	var out []Count
	for _, m := range months {
		for _, c := range councils {
			for _, p := range priorities {
				for _, s := range settings {
					for _, cl := range classes {
						if r.IntN(3) == 0 {
							continue // no activity at all in this cell
						}
						k := Key{Month: m, Council: c, Priority: p, Setting: s, Class: cl}
						for _, meas := range Measures() {
							if meas == Delivered {
								for range r.IntN(4) {
									if n := small(); n > 0 {
										out = append(out, Count{Key: k, Measure: meas, Days: r.IntN(12), N: n})
									}
								}
								continue
							}
							if n := small(); n > 0 {
								out = append(out, Count{Key: k, Measure: meas, Days: NoDays, N: n})
							}
						}
					}
				}
			}
		}
	}
	return out
}

// truth computes, by brute force from counts, the true value of a column
// in the group a row names (Total matching everything).
func truth(counts []Count, by []Dim, group []string, col string, rules Rules) (n int64, days []int) {
	for _, c := range counts {
		match := true
		for i, d := range by {
			if group[i] != Total && valueOf(c.Key, d) != group[i] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		std, hasStd := rules.Standards[c.Priority]
		switch {
		case string(c.Measure) == col,
			col == ColDeliveredWithStandard && c.Measure == Delivered && hasStd,
			col == ColWithinStandard && c.Measure == Delivered && hasStd && c.Days <= std:
			n += c.N
			if c.Measure == Delivered && string(c.Measure) == col {
				for range c.N {
					days = append(days, c.Days)
				}
			}
		}
	}
	return n, days
}

var propertySeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946}

// TestPublishProperties: over generated months of activity, grouped every
// way, no published count is from 1 to 7, every count is 0, a multiple of
// 5 or *, every true count from 1 to 7 is *, no line (the cells a
// published total sums) has exactly one *, so none is the difference of
// its total and the published cells, and medians appear only over 8
// deliveries or more, equal to those of the deliveries themselves.
func TestPublishProperties(t *testing.T) {
	ruleSets := []Rules{DefaultRules(), {SuppressUpTo: 10, RoundTo: 10, MinValues: 10, Standards: map[string]int{"urgent": 2}},
		{SuppressUpTo: 3, RoundTo: 1, MinValues: 15, Standards: map[string]int{"routine": 3}}}
	groupings := [][]Dim{nil, {DimCouncil}, {DimMonth}, {DimCouncil, DimMonth}, {DimCouncil, DimMonth, DimPriority},
		{DimClass, DimPriority}, {DimCouncil, DimMonth, DimPriority, DimClass}, {DimSetting, DimCouncil}}
	allMonths := []string{"2026-01", "2026-02", "2026-03", "2026-04"}
	suppressedSeen, secondarySeen := 0, 0
	for _, seed := range propertySeeds {
		r := rand.New(rand.NewPCG(seed, 19))
		months := allMonths[:1+r.IntN(len(allMonths))]
		counts := activity(r, months)
		for ri, rules := range ruleSets {
			for _, by := range groupings {
				name := fmt.Sprintf("seed %d rules %d by %v", seed, ri, by)
				tab, err := Publish(counts, Query{From: months[0], To: months[len(months)-1], By: by}, rules)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				s, sec := checkTable(t, name, tab, counts, by, rules)
				suppressedSeen += s
				secondarySeen += sec
			}
		}
	}
	// The generator must exercise what it tests.
	if suppressedSeen == 0 || secondarySeen == 0 {
		t.Fatalf("the generated activity never needed suppression (%d) or secondary suppression (%d)", suppressedSeen, secondarySeen)
	}
	t.Logf("%d counts withheld, %d of them by secondary suppression", suppressedSeen, secondarySeen)
}

// checkTable checks one published table; it returns how many counts were
// withheld, and how many of those were not from 1 to the threshold.
func checkTable(t *testing.T, name string, tab Table, counts []Count, by []Dim, rules Rules) (withheld, secondary int) {
	t.Helper()
	col := map[string]int{}
	for i, c := range tab.Columns {
		col[c] = i
	}
	countCols := counted()
	rowAt := map[string]Row{}
	for _, row := range tab.Rows {
		rowAt[strings.Join(row.Group, "\x00")] = row
		for _, c := range countCols {
			v := row.Values[col[c]]
			tru, days := truth(counts, by, row.Group, c, rules)
			if v == Suppressed {
				withheld++
				if tru == 0 || tru > int64(rules.SuppressUpTo) {
					secondary++
				}
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v %s = %q: neither a count nor %s", name, row.Group, c, v, Suppressed)
			}
			if n >= 1 && n <= int64(rules.SuppressUpTo) {
				t.Fatalf("%s: %v %s published as %d", name, row.Group, c, n)
			}
			if n%int64(rules.RoundTo) != 0 {
				t.Fatalf("%s: %v %s = %d is not a multiple of %d", name, row.Group, c, n, rules.RoundTo)
			}
			if tru >= 1 && tru <= int64(rules.SuppressUpTo) {
				t.Fatalf("%s: %v %s is %d, published as %d", name, row.Group, c, tru, n)
			}
			if (tru == 0) != (n == 0) || abs(n-tru) > int64(rules.RoundTo) {
				t.Fatalf("%s: %v %s is %d, published as %d", name, row.Group, c, tru, n)
			}
			if c == string(Delivered) {
				checkDays(t, name, row, col, days, rules)
			}
		}
	}
	// Every line: a total row and the rows it sums (one dimension running
	// over its values, the others fixed). Exactly one * in a line is a
	// count anyone could work out.
	for d := range by {
		values := map[string]bool{}
		for _, row := range tab.Rows {
			if row.Group[d] != Total {
				values[row.Group[d]] = true
			}
		}
		for _, totalRow := range tab.Rows {
			if totalRow.Group[d] != Total {
				continue
			}
			line := []Row{totalRow}
			for v := range values {
				g := slices.Clone(totalRow.Group)
				g[d] = v
				row, ok := rowAt[strings.Join(g, "\x00")]
				if !ok {
					t.Fatalf("%s: no row %v beside total %v", name, g, totalRow.Group)
				}
				line = append(line, row)
			}
			for _, c := range countCols {
				stars, sum, total := 0, int64(0), int64(0)
				for i, row := range line {
					v := row.Values[col[c]]
					if v == Suppressed {
						stars++
						continue
					}
					n, _ := strconv.ParseInt(v, 10, 64)
					if i == 0 {
						total = n
					} else {
						sum += n
					}
				}
				if stars == 1 {
					t.Fatalf("%s: %s along %s beside total %v: one count withheld, which the total (%d) and the others (%d) give away",
						name, c, by[d], totalRow.Group, total, sum)
				}
			}
		}
	}
	return withheld, secondary
}

func checkDays(t *testing.T, name string, row Row, col map[string]int, days []int, rules Rules) {
	t.Helper()
	median, p90 := row.Values[col[ColMedianDays]], row.Values[col[ColP90Days]]
	if len(days) < rules.MinValues {
		if len(days) > 0 && (median != Suppressed || p90 != Suppressed) {
			t.Fatalf("%s: %v: median %q and p90 %q over %d deliveries", name, row.Group, median, p90, len(days))
		}
		return
	}
	sort.Ints(days)
	rank := func(p float64) string {
		k := int(float64(len(days))*p + 0.999999)
		return strconv.Itoa(days[max(k, 1)-1])
	}
	if median != rank(0.5) || p90 != rank(0.9) {
		t.Fatalf("%s: %v: median %q p90 %q, want %s and %s", name, row.Group, median, p90, rank(0.5), rank(0.9))
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestRound(t *testing.T) {
	r := DefaultRules()
	for v, want := range map[int64]int64{0: 0, 8: 10, 12: 10, 13: 15, 17: 15, 18: 20, 100: 100, 102: 100, 103: 105} {
		if got := r.Round(v); got != want {
			t.Errorf("Round(%d) = %d, want %d", v, got, want)
		}
	}
	// A rounding that would publish a small number publishes the first
	// multiple above the threshold instead.
	odd := Rules{SuppressUpTo: 7, RoundTo: 6, MinValues: 8}
	if got := odd.Round(8); got != 12 {
		t.Errorf("Round(8) by 6 with 1-7 withheld = %d, want 12", got)
	}
}

// TestSecondarySuppression: one council's single small count is withheld,
// and so is a second count in its month, so the month's total does not
// give it away; the other months are published.
func TestSecondarySuppression(t *testing.T) {
	counts := []Count{
		{Key: Key{Month: "2026-01", Council: "council-a"}, Measure: Referrals, N: 3},
		{Key: Key{Month: "2026-01", Council: "council-b"}, Measure: Referrals, N: 40},
		{Key: Key{Month: "2026-01", Council: "council-c"}, Measure: Referrals, N: 20},
		{Key: Key{Month: "2026-02", Council: "council-a"}, Measure: Referrals, N: 30},
		{Key: Key{Month: "2026-02", Council: "council-b"}, Measure: Referrals, N: 40},
		{Key: Key{Month: "2026-02", Council: "council-c"}, Measure: Referrals, N: 50},
	}
	tab, err := Publish(counts, Query{From: "2026-01", To: "2026-02", By: []Dim{DimCouncil, DimMonth}}, DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range tab.Rows {
		got[strings.Join(row.Group, " ")] = row.Values[0]
	}
	want := map[string]string{
		"council-a 2026-01": "*", "council-c 2026-01": "*", "council-b 2026-01": "40", "Total 2026-01": "65",
		// council-a's total would give its January away: its February is withheld too, and
		// then council-c's February, for February's total.
		"council-a 2026-02": "*", "council-a Total": "35",
		"council-c 2026-02": "*", "council-c Total": "70",
		"council-b 2026-02": "40", "Total 2026-02": "120", "Total Total": "185",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q (table %v)", k, got[k], w, got)
		}
	}
}

func TestRulesCheck(t *testing.T) {
	if err := DefaultRules().Check(); err != nil {
		t.Fatal(err)
	}
	bad := Rules{SuppressUpTo: 0, RoundTo: 0, MinValues: 0, Standards: map[string]int{"urgent": 0}}
	err := bad.Check()
	for _, want := range []string{"suppress_up_to", "round_to", "min_values", "standards.urgent"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to name %s", err, want)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	for _, q := range []Query{{From: "2026-13", To: "2026-12"}, {From: "2026-03", To: "2026-01"}, {From: "2000-01", To: "2026-01"}} {
		if _, err := Publish(nil, q, DefaultRules()); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
	if _, err := ParseDims("council,postcode"); err == nil {
		t.Error("ParseDims accepted postcode")
	}
	if _, err := ParseDims("council,council"); err == nil {
		t.Error("ParseDims accepted a dimension twice")
	}
	if d, err := ParseDims(" council, month "); err != nil || !slices.Equal(d, []Dim{DimCouncil, DimMonth}) {
		t.Errorf("ParseDims = %v, %v", d, err)
	}
}
