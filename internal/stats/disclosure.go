package stats

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Count is one row of the statistics table: N steps of Measure in Key,
// each Days from acceptance to delivery (NoDays for other measures).
type Count struct {
	Key
	Measure Measure
	Days    int
	N       int64
}

// Rules is the disclosure control applied before anything is published:
// the rules NHS England applies below national level by default.
type Rules struct {
	// SuppressUpTo: counts from 1 to SuppressUpTo are published as
	// Suppressed. Default 7.
	SuppressUpTo int
	// RoundTo: other counts are rounded to the nearest multiple of RoundTo
	// (halves up); 1 publishes them as they are. A count that rounding
	// would bring to SuppressUpTo or below (0 among them) is published as
	// the first multiple above SuppressUpTo. Default 5.
	RoundTo int
	// MinValues: medians and percentiles over fewer values are published
	// as Suppressed. Default 8.
	MinValues int
	// Standards are the days within which each priority's equipment should
	// be delivered ("urgent": 1, "routine": 7); deliveries of a priority
	// without one are not measured against a standard.
	Standards map[string]int
}

// DefaultRules are NHS England's: 1-7 suppressed, others rounded to the
// nearest 5, statistics over fewer than 8 values withheld; urgent
// equipment within 1 day, routine within 7.
func DefaultRules() Rules {
	return Rules{SuppressUpTo: 7, RoundTo: 5, MinValues: 8, Standards: map[string]int{"urgent": 1, "routine": 7}}
}

// Check reports what makes r unusable.
func (r Rules) Check() error {
	var errs []error
	if r.SuppressUpTo < 1 {
		errs = append(errs, fmt.Errorf("suppress_up_to must be at least 1, got %d", r.SuppressUpTo))
	}
	if r.RoundTo < 1 {
		errs = append(errs, fmt.Errorf("round_to must be at least 1, got %d", r.RoundTo))
	}
	if r.MinValues < 1 {
		errs = append(errs, fmt.Errorf("min_values must be at least 1, got %d", r.MinValues))
	}
	for _, p := range sortedKeys(r.Standards) {
		if d := r.Standards[p]; d < 1 || d > MaxDays {
			errs = append(errs, fmt.Errorf("standards.%s must be from 1 to %d days, got %d", p, MaxDays, d))
		}
	}
	return errors.Join(errs...)
}

// Suppressed is what a withheld count or statistic is published as.
const Suppressed = "*"

// Total is the group value of a row that totals a dimension.
const Total = "Total"

// NotKnown is the group value of a council, priority or setting that was
// not known.
const NotKnown = "(not known)"

// Dim is a dimension the statistics may be grouped by.
type Dim string

// The dimensions.
const (
	DimCouncil  Dim = "council"
	DimMonth    Dim = "month"
	DimPriority Dim = "priority"
	DimSetting  Dim = "setting"
	DimClass    Dim = "class"
)

// Dims returns every dimension.
func Dims() []Dim { return []Dim{DimCouncil, DimMonth, DimPriority, DimSetting, DimClass} }

// ParseDims parses a comma-separated list of dimensions, each at most once.
func ParseDims(s string) ([]Dim, error) {
	var out []Dim
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d := Dim(f)
		if !slices.Contains(Dims(), d) {
			return nil, fmt.Errorf("unknown dimension %q (want council, month, priority, setting or class)", f)
		}
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("dimension %q named twice", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// ParseMonth checks a YYYY-MM month.
func ParseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("month %q: want YYYY-MM", s)
	}
	return t, nil
}

// Query is what to publish: the months From to To (YYYY-MM, both
// included) grouped by By, with a total row over each dimension.
type Query struct {
	From, To string
	By       []Dim
}

// maxMonths bounds a query's months, and maxCells its groups and totals
// (each dimension's values and Total, multiplied).
const (
	maxMonths = 120
	maxCells  = 200_000
)

// Published columns beside the measures.
const (
	ColDeliveredWithStandard = "delivered_with_standard"
	ColWithinStandard        = "delivered_within_standard"
	ColWithinStandardPercent = "within_standard_percent"
	ColMedianDays            = "days_to_delivery_median"
	ColP90Days               = "days_to_delivery_p90"
)

// Columns returns the published columns, in order.
func Columns() []string {
	var cols []string
	for _, m := range Measures() {
		cols = append(cols, string(m))
	}
	return append(cols, ColDeliveredWithStandard, ColWithinStandard, ColWithinStandardPercent, ColMedianDays, ColP90Days)
}

// Table is what may be published: every value has passed the rules.
type Table struct {
	From, To string
	By       []Dim
	// Rules says, in words, every rule applied to the values.
	Rules   []string
	Columns []string
	Rows    []Row
	// Standards are the days within which each priority's equipment
	// should be delivered, as the rules gave them (for charts).
	Standards map[string]int
}

// Row is one group: Group holds its value of each of By (Total in a total
// row), Values the published value of each column.
type Row struct {
	Group  []string
	Values []string
}

// counted are the columns kept as counts in the cube, in order: the
// measures, then deliveries with a standard and within it. Each is
// suppressed and rounded on its own.
func counted() []string {
	cols := make([]string, 0, len(Measures())+2)
	for _, m := range Measures() {
		cols = append(cols, string(m))
	}
	return append(cols, ColDeliveredWithStandard, ColWithinStandard)
}

// cube holds every group of a query and every total: each dimension has
// its values and then Total, so that a cell's index runs over (values+1)
// per dimension.
type cube struct {
	dims    []Dim
	values  [][]string // per dimension, its values (not Total)
	sizes   []int      // len(values[d]) + 1
	strides []int
	n       int
	counts  [][]int64       // per counted column, per cell
	hist    []map[int]int64 // per cell, delivered days -> count; nil when none
	supp    [][]bool        // per counted column, per cell: suppressed
}

// Publish applies rules to counts for q and returns the table to publish.
// counts outside q's months are ignored.
func Publish(counts []Count, q Query, rules Rules) (Table, error) {
	if err := rules.Check(); err != nil {
		return Table{}, err
	}
	months, err := monthsOf(q.From, q.To)
	if err != nil {
		return Table{}, err
	}
	c, err := newCube(counts, q.By, months, rules)
	if err != nil {
		return Table{}, err
	}
	for col := range c.counts {
		c.supp[col] = c.suppress(c.counts[col], rules.SuppressUpTo)
	}
	return c.table(q, rules), nil
}

func monthsOf(from, to string) ([]string, error) {
	f, err := ParseMonth(from)
	if err != nil {
		return nil, err
	}
	t, err := ParseMonth(to)
	if err != nil {
		return nil, err
	}
	if t.Before(f) {
		return nil, fmt.Errorf("the months run from %s to %s: backwards", from, to)
	}
	var out []string
	for m := f; !m.After(t); m = m.AddDate(0, 1, 0) {
		if len(out) == maxMonths {
			return nil, fmt.Errorf("at most %d months at once", maxMonths)
		}
		out = append(out, m.Format("2006-01"))
	}
	return out, nil
}

func valueOf(k Key, d Dim) string {
	v := ""
	switch d {
	case DimCouncil:
		v = k.Council
	case DimMonth:
		v = k.Month
	case DimPriority:
		v = k.Priority
	case DimSetting:
		v = k.Setting
	case DimClass:
		v = k.Class
	}
	if v == "" {
		return NotKnown
	}
	return v
}

func newCube(counts []Count, by []Dim, months []string, rules Rules) (*cube, error) {
	inRange := map[string]bool{}
	for _, m := range months {
		inRange[m] = true
	}
	c := &cube{dims: by}
	seen := make([]map[string]bool, len(by))
	for i := range seen {
		seen[i] = map[string]bool{}
	}
	for _, r := range counts {
		if inRange[r.Month] {
			for i, d := range by {
				seen[i][valueOf(r.Key, d)] = true
			}
		}
	}
	c.values = make([][]string, len(by))
	c.sizes = make([]int, len(by))
	c.strides = make([]int, len(by))
	c.n = 1
	for i := len(by) - 1; i >= 0; i-- {
		if by[i] == DimMonth {
			c.values[i] = months // every month, those without activity too
		} else {
			c.values[i] = sortedKeys(seen[i])
		}
		c.sizes[i] = len(c.values[i]) + 1
		c.strides[i] = c.n
		c.n *= c.sizes[i]
		if c.n > maxCells {
			return nil, fmt.Errorf("more than %d groups and totals: group by fewer dimensions or fewer months", maxCells)
		}
	}
	cols := counted()
	c.counts = make([][]int64, len(cols))
	c.supp = make([][]bool, len(cols))
	for i := range c.counts {
		c.counts[i] = make([]int64, c.n)
	}
	c.hist = make([]map[int]int64, c.n)
	colOf := map[string]int{}
	for i, name := range cols {
		colOf[name] = i
	}
	index := make([]map[string]int, len(by))
	for i := range by {
		index[i] = map[string]int{}
		for j, v := range c.values[i] {
			index[i][v] = j
		}
	}
	coord := make([]int, len(by))
	for _, r := range counts {
		if !inRange[r.Month] || r.N <= 0 {
			continue
		}
		col, ok := colOf[string(r.Measure)]
		if !ok {
			continue // a measure of a later version
		}
		for i, d := range by {
			coord[i] = index[i][valueOf(r.Key, d)]
		}
		std, hasStd := rules.Standards[r.Priority]
		hasStd = hasStd && r.Measure == Delivered
		c.eachMargin(coord, func(cell int) {
			c.counts[col][cell] += r.N
			if r.Measure != Delivered {
				return
			}
			if c.hist[cell] == nil {
				c.hist[cell] = map[int]int64{}
			}
			c.hist[cell][max(r.Days, 0)] += r.N
			if hasStd {
				c.counts[colOf[ColDeliveredWithStandard]][cell] += r.N
				if r.Days <= std {
					c.counts[colOf[ColWithinStandard]][cell] += r.N
				}
			}
		})
	}
	return c, nil
}

// eachMargin calls fn with the index of the cell at coord and of every
// total it adds to: each dimension either at its value or at Total.
func (c *cube) eachMargin(coord []int, fn func(int)) {
	k := len(c.dims)
	for mask := 0; mask < 1<<k; mask++ {
		idx := 0
		for i := 0; i < k; i++ {
			v := coord[i]
			if mask&(1<<i) != 0 {
				v = c.sizes[i] - 1
			}
			idx += v * c.strides[i]
		}
		fn(idx)
	}
}

// eachLine calls fn with every line of the cube: the cells that run along
// one dimension with every other fixed (at a value or at Total), the last
// of them the line's total, which is the sum of the others.
func (c *cube) eachLine(fn func(line []int)) {
	for d := range c.dims {
		line := make([]int, c.sizes[d])
		for base := 0; base < c.n; base++ {
			if (base/c.strides[d])%c.sizes[d] != 0 {
				continue
			}
			for j := range line {
				line[j] = base + j*c.strides[d]
			}
			fn(line)
		}
	}
}

// suppress returns which cells of one counted column are withheld:
// primary suppression of counts from 1 to upTo, then secondary
// suppression until no line has exactly one cell withheld, so that no
// withheld cell is the difference of its line's total and published
// cells. The cell added to a line with one withheld is the smallest
// non-zero published cell among those the total sums, else the smallest,
// else the total.
func (c *cube) suppress(vals []int64, upTo int) []bool {
	supp := make([]bool, c.n)
	for i, v := range vals {
		supp[i] = v >= 1 && v <= int64(upTo)
	}
	for changed := true; changed; {
		changed = false
		c.eachLine(func(line []int) {
			withheld := 0
			for _, i := range line {
				if supp[i] {
					withheld++
				}
			}
			if withheld != 1 {
				return
			}
			pick := -1
			for _, i := range line[:len(line)-1] {
				if supp[i] {
					continue
				}
				if pick < 0 || better(vals[i], vals[pick]) {
					pick = i
				}
			}
			if pick < 0 {
				pick = line[len(line)-1]
			}
			if !supp[pick] {
				supp[pick] = true
				changed = true
			}
		})
	}
	return supp
}

// better reports whether a is a better second cell to withhold than b:
// the smallest non-zero count, zero last (withholding a zero beside a
// small count hides less).
func better(a, b int64) bool {
	if (a == 0) != (b == 0) {
		return a != 0
	}
	return a < b
}

// Round returns what a count that is not withheld is published as.
func (r Rules) Round(v int64) int64 {
	if v == 0 {
		return 0
	}
	step := int64(r.RoundTo)
	out := (v + step/2) / step * step
	if out <= int64(r.SuppressUpTo) {
		out = (int64(r.SuppressUpTo)/step + 1) * step
	}
	return out
}

// percentile returns the nearest-rank p-th percentile of a histogram of
// n values: the least day d such that at least ceil(p*n) values are d
// or fewer.
func percentile(h map[int]int64, n int64, p float64) int {
	rank := int64(math.Ceil(p * float64(n)))
	if rank < 1 {
		rank = 1
	}
	days := make([]int, 0, len(h))
	for d := range h {
		days = append(days, d)
	}
	sort.Ints(days)
	var cum int64
	for _, d := range days {
		cum += h[d]
		if cum >= rank {
			return d
		}
	}
	return days[len(days)-1]
}

func (c *cube) table(q Query, rules Rules) Table {
	t := Table{From: q.From, To: q.To, By: q.By, Rules: rules.Describe(), Columns: Columns(), Standards: maps.Clone(rules.Standards)}
	cols := counted()
	colOf := map[string]int{}
	for i, name := range cols {
		colOf[name] = i
	}
	pub := func(col string, cell int) (string, int64, bool) {
		i := colOf[col]
		if c.supp[i][cell] {
			return Suppressed, 0, false
		}
		v := rules.Round(c.counts[i][cell])
		return strconv.FormatInt(v, 10), v, true
	}
	coord := make([]int, len(c.dims))
	for cell := 0; cell < c.n; cell++ {
		group := make([]string, len(c.dims))
		for i := range c.dims {
			coord[i] = (cell / c.strides[i]) % c.sizes[i]
			if coord[i] == len(c.values[i]) {
				group[i] = Total
			} else {
				group[i] = c.values[i][coord[i]]
			}
		}
		vals := make([]string, 0, len(t.Columns))
		for _, col := range cols {
			s, _, _ := pub(col, cell)
			vals = append(vals, s)
		}
		// The share within standard is computed from the published
		// counts only, so that it tells nothing they do not.
		_, within, okW := pub(ColWithinStandard, cell)
		_, with, okS := pub(ColDeliveredWithStandard, cell)
		share := Suppressed
		if okW && okS && with > 0 {
			share = strconv.FormatInt(int64(math.Round(100*float64(within)/float64(with))), 10)
		} else if okS && with == 0 {
			share = ""
		}
		// Days to delivery: withheld with the count of deliveries, so
		// that they tell nothing of a withheld count (not even that it is
		// 0), and over fewer than MinValues deliveries.
		n := c.counts[colOf[string(Delivered)]][cell]
		median, p90 := Suppressed, Suppressed
		switch _, _, shown := pub(string(Delivered), cell); {
		case !shown:
		case n == 0:
			median, p90 = "", ""
		case n >= int64(rules.MinValues):
			median = strconv.Itoa(percentile(c.hist[cell], n, 0.5))
			p90 = strconv.Itoa(percentile(c.hist[cell], n, 0.9))
		}
		vals = append(vals, share, median, p90)
		t.Rows = append(t.Rows, Row{Group: group, Values: vals})
	}
	return t
}

// Describe says in words every rule r applies.
func (r Rules) Describe() []string {
	out := []string{
		fmt.Sprintf("primary suppression: counts from 1 to %d are shown as %s", r.SuppressUpTo, Suppressed),
		"secondary suppression: where a row or column total would reveal a count shown as " + Suppressed +
			", a further count (or the total) is shown as " + Suppressed + " too",
	}
	if r.RoundTo > 1 {
		out = append(out, fmt.Sprintf("rounding: other counts are rounded to the nearest %d; 0 is shown as 0", r.RoundTo))
	} else {
		out = append(out, "rounding: none; 0 is shown as 0")
	}
	out = append(out,
		fmt.Sprintf("days to delivery (from the referral's acceptance, rounded up to whole days): median and 90th percentile (nearest rank) over fewer than %d deliveries are shown as %s", r.MinValues, Suppressed),
		"within_standard_percent is computed from the published (rounded) counts; empty when no delivery had a standard")
	var std []string
	for _, p := range sortedKeys(r.Standards) {
		std = append(std, fmt.Sprintf("%s %d day(s)", p, r.Standards[p]))
	}
	if len(std) > 0 {
		out = append(out, "standards: "+strings.Join(std, ", "))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
