package stats

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strconv"
	"strings"
)

// The published table as a picture (issue 19): referrals and deliveries
// per month, days from referral to delivery (median and 90th percentile)
// against each priority's standard, and the share delivered within it.
// It is drawn from a published Table only, so it shows nothing the table
// does not: a withheld value (Suppressed) is drawn as a hatched stub
// labelled "*", never as a number.

// ChartBy is the grouping a chart is drawn from: by month and priority,
// whose totals give each month and each priority.
func ChartBy() []Dim { return []Dim{DimMonth, DimPriority} }

// chartData is what a chart draws, each value as published.
type chartData struct {
	from, to  string
	months    []chartMonth
	prios     []chartPriority // each priority, then "All priorities"
	standards map[string]int
}

type chartMonth struct{ month, referrals, delivered string }

type chartPriority struct{ name, delivered, median, p90, share string }

// chartOf picks from t the rows a chart draws: each month over every
// priority, each priority over every month, and the total of both. Any
// other dimension of t is taken at its Total.
func chartOf(t Table) (chartData, error) {
	mi, pi := slices.Index(t.By, DimMonth), slices.Index(t.By, DimPriority)
	if mi < 0 || pi < 0 {
		return chartData{}, fmt.Errorf("a chart needs the statistics by month and priority, not by %v", t.By)
	}
	col := func(r Row, name string) string {
		if i := slices.Index(t.Columns, name); i >= 0 && i < len(r.Values) {
			return r.Values[i]
		}
		return Suppressed
	}
	d := chartData{from: t.From, to: t.To, standards: t.Standards}
	var all *chartPriority
	for _, r := range t.Rows {
		if !othersTotal(r.Group, mi, pi) {
			continue
		}
		m, p := r.Group[mi], r.Group[pi]
		cp := chartPriority{name: p, delivered: col(r, string(Delivered)), median: col(r, ColMedianDays),
			p90: col(r, ColP90Days), share: col(r, ColWithinStandardPercent)}
		switch {
		case m != Total && p == Total:
			d.months = append(d.months, chartMonth{month: m, referrals: col(r, string(Referrals)), delivered: cp.delivered})
		case m == Total && p != Total:
			d.prios = append(d.prios, cp)
		case m == Total && p == Total:
			cp.name = "All priorities"
			all = &cp
		}
	}
	if all != nil {
		d.prios = append(d.prios, *all)
	}
	return d, nil
}

func othersTotal(group []string, mi, pi int) bool {
	for i, g := range group {
		if i != mi && i != pi && g != Total {
			return false
		}
	}
	return true
}

// Colours of the picture: each at least 4.5:1 against white (text) and
// 3:1 (shapes).
const (
	inkColour       = "#0b0c0c"
	mutedColour     = "#4b5157"
	referralsColour = "#1d4f91"
	deliveredColour = "#00703c"
	p90Colour       = "#6f3c97"
	standardColour  = "#a4211b"
	chartWidth      = 760
	chartLeft       = 150
)

// WriteSVG draws t, a table published by month and priority (ChartBy), as
// an accessible SVG picture: role img, a title and a description, text
// labels. standalone adds the XML namespace for a file of its own; inline
// in HTML it may be left out.
func WriteSVG(w io.Writer, t Table, standalone bool) error {
	d, err := chartOf(t)
	if err != nil {
		return err
	}
	var body strings.Builder
	y := 40
	y = d.monthBars(&body, y)
	y = d.daysChart(&body, y+30)
	y = d.shareChart(&body, y+30)
	y = legend(&body, y+24)
	var b strings.Builder
	ns := ""
	if standalone {
		ns = ` xmlns="http://www.w3.org/2000/svg"`
	}
	title := fmt.Sprintf("Statistics of the service, %s to %s", d.from, d.to)
	fmt.Fprintf(&b, `<svg%s class="stats-chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="stats-title stats-desc" font-family="system-ui, Arial, sans-serif">`,
		ns, chartWidth, y, chartWidth, y)
	fmt.Fprintf(&b, "\n<title id=\"stats-title\">%s</title>\n<desc id=\"stats-desc\">%s</desc>\n", esc(title), esc(d.describe()))
	b.WriteString(`<defs><pattern id="stats-withheld" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
		`<rect width="6" height="6" fill="#ffffff"/><line x1="0" y1="0" x2="0" y2="6" stroke="` + mutedColour + `" stroke-width="2"/></pattern></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartWidth, y)
	fmt.Fprintf(&b, `<text x="8" y="22" font-size="16" font-weight="700" fill="%s">%s</text>`+"\n", inkColour, esc(title))
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// describe is the text alternative: every value drawn, in words.
func (d chartData) describe() string {
	var parts []string
	for _, m := range d.months {
		parts = append(parts, fmt.Sprintf("%s: %s referrals, %s delivered", m.month, words(m.referrals), words(m.delivered)))
	}
	for _, p := range d.prios {
		s := fmt.Sprintf("%s: days to delivery median %s, 90th percentile %s", p.name, words(p.median), words(p.p90))
		if std, ok := d.standards[p.name]; ok {
			s += fmt.Sprintf(" (standard %s)", days(int64(std)))
		}
		if _, ok := number(p.share); ok {
			s += fmt.Sprintf(", %s%% within standard", p.share)
		} else if p.share != "" {
			s += ", share within standard " + words(p.share)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ") + ". Values marked * are withheld by disclosure control."
}

// words says a published value: Suppressed as "withheld", none as "none".
func words(v string) string {
	switch v {
	case Suppressed:
		return "* (withheld)"
	case "":
		return "none"
	}
	return v
}

// number is a published value as a number; false when it is withheld or
// empty.
func number(v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// monthBars draws referrals and deliveries per month from y and returns
// where it ends.
func (d chartData) monthBars(b *strings.Builder, y int) int {
	const height = 160
	heading(b, y, "Referrals and deliveries per month")
	base := y + 16 + height
	var peak int64 = 20 // so that no tick is from 1 to 7
	for _, m := range d.months {
		for _, v := range []string{m.referrals, m.delivered} {
			if n, ok := number(v); ok {
				peak = max(peak, n)
			}
		}
	}
	peak = niceCeiling(peak)
	scale := func(n int64) int { return int(int64(height) * n / peak) }
	for _, tick := range []int64{0, peak / 2, peak} {
		ty := base - scale(tick)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b1b4b6"/>`, chartLeft, ty, chartWidth-10, ty)
		fmt.Fprintf(b, `<text class="tick" x="%d" y="%d" font-size="11" text-anchor="end" fill="%s">%d</text>`+"\n", chartLeft-6, ty+4, mutedColour, tick)
	}
	n := max(len(d.months), 1)
	group := (chartWidth - 10 - chartLeft) / n
	bar := min(max(2, group*2/5), 40)
	every := 1 + (n*60)/(chartWidth-chartLeft)
	for i, m := range d.months {
		x := chartLeft + i*group + (group-2*bar)/2
		countBar(b, x, bar, base, scale, m.referrals, referralsColour, m.month+" referrals", bar >= 12)
		countBar(b, x+bar, bar, base, scale, m.delivered, deliveredColour, m.month+" delivered", bar >= 12)
		if i%every == 0 {
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="%s">%s</text>`+"\n", x+bar, base+14, inkColour, esc(m.month))
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", chartLeft, base, chartWidth-10, base, mutedColour)
	return base + 18
}

// countBar draws one published count as a bar, or a withheld one as a
// hatched stub labelled "*"; labelled says whether the value is written
// above it (it is always in the bar's title).
func countBar(b *strings.Builder, x, width, base int, scale func(int64) int, v, colour, what string, labelled bool) {
	label := v
	n, ok := number(v)
	if ok {
		h := scale(n)
		if n > 0 {
			h = max(h, 1)
		}
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`, x, base-h, width, h, colour, esc(what), n)
		base -= h
	} else {
		label = Suppressed
		fmt.Fprintf(b, `<rect class="withheld" x="%d" y="%d" width="%d" height="10" fill="url(#stats-withheld)" stroke="%s"><title>%s: withheld (*)</title></rect>`,
			x, base-10, width, mutedColour, esc(what))
		base -= 10
	}
	if labelled || !ok {
		fmt.Fprintf(b, `<text class="count" x="%d" y="%d" font-size="10" text-anchor="middle" fill="%s">%s</text>`, x+width/2, base-3, inkColour, esc(label))
	}
	b.WriteString("\n")
}

// niceCeiling returns the least of 20, 50, 100, 200, 500, ... at or above
// n (n at least 11): the top of a count axis, whose half is a tick too.
func niceCeiling(n int64) int64 {
	for step := int64(10); ; step *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if f*step >= n {
				return f * step
			}
		}
	}
}

// daysChart draws each priority's median and 90th percentile days to
// delivery against its standard, from y, and returns where it ends.
func (d chartData) daysChart(b *strings.Builder, y int) int {
	heading(b, y, "Days from referral to delivery: median and 90th percentile, against the standard")
	y += 16
	var peak int64 = 7
	for _, p := range d.prios {
		for _, v := range []string{p.median, p.p90} {
			if n, ok := number(v); ok {
				peak = max(peak, n)
			}
		}
		peak = max(peak, int64(d.standards[p.name]))
	}
	span := chartWidth - 150 - chartLeft
	xOf := func(days int64) int { return chartLeft + int(int64(span)*days/peak) }
	for _, p := range d.prios {
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" text-anchor="end" fill="%s">%s</text>`, chartLeft-6, y+14, inkColour, esc(p.name))
		d.daysRow(b, p, y, xOf)
		y += 34
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`, chartLeft, y, chartLeft+span, y, mutedColour)
	fmt.Fprintf(b, `<text class="tick" x="%d" y="%d" font-size="11" fill="%s">0 days</text>`, chartLeft, y+14, mutedColour)
	fmt.Fprintf(b, `<text class="tick" x="%d" y="%d" font-size="11" text-anchor="end" fill="%s">%d days</text>`+"\n", chartLeft+span, y+14, mutedColour, peak)
	return y + 18
}

// daysRow draws one priority's median and 90th percentile as two thin
// bars, and its standard as a vertical line.
func (d chartData) daysRow(b *strings.Builder, p chartPriority, y int, xOf func(int64) int) {
	for i, v := range []struct{ what, value, colour string }{{"median", p.median, referralsColour}, {"90th percentile", p.p90, p90Colour}} {
		by := y + 2 + i*12
		n, ok := number(v.value)
		switch {
		case ok:
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="10" fill="%s"><title>%s %s: %s</title></rect>`,
				chartLeft, by, max(xOf(n)-chartLeft, 2), v.colour, esc(p.name), v.what, days(n))
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="%s">%s %d d</text>`, max(xOf(n), chartLeft+2)+4, by+9, inkColour, v.what, n)
		case v.value == "":
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="%s">%s: no deliveries</text>`, chartLeft+4, by+9, mutedColour, v.what)
		default:
			fmt.Fprintf(b, `<rect class="withheld" x="%d" y="%d" width="24" height="10" fill="url(#stats-withheld)" stroke="%s"><title>%s %s: withheld (*)</title></rect>`,
				chartLeft, by, mutedColour, esc(p.name), v.what)
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="%s">%s * (withheld)</text>`, chartLeft+30, by+9, inkColour, v.what)
		}
	}
	if std, ok := d.standards[p.name]; ok {
		x := xOf(int64(std))
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="4 2"><title>%s standard: %s</title></line>`,
			x, y-2, x, y+28, standardColour, esc(p.name), days(int64(std)))
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="%s">standard %d d</text>`, x+3, y+31, standardColour, std)
	}
	b.WriteString("\n")
}

// shareChart draws the share of each priority's deliveries made within
// its standard, from y, and returns where it ends.
func (d chartData) shareChart(b *strings.Builder, y int) int {
	heading(b, y, "Share delivered within standard")
	y += 16
	span := chartWidth - 150 - chartLeft
	for _, p := range d.prios {
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" text-anchor="end" fill="%s">%s</text>`, chartLeft-6, y+12, inkColour, esc(p.name))
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="14" fill="none" stroke="#b1b4b6"/>`, chartLeft, y, span)
		n, ok := number(p.share)
		switch {
		case ok:
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="14" fill="%s"><title>%s: %d%% within standard</title></rect>`,
				chartLeft, y, span*int(min(max(n, 0), 100))/100, deliveredColour, esc(p.name), n)
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="%s">%d%%</text>`, chartLeft+span+6, y+12, inkColour, n)
		case p.share == "":
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="%s">no standard, or no deliveries</text>`, chartLeft+6, y+11, mutedColour)
		default:
			fmt.Fprintf(b, `<rect class="withheld" x="%d" y="%d" width="24" height="14" fill="url(#stats-withheld)" stroke="%s"><title>%s: withheld (*)</title></rect>`,
				chartLeft, y, mutedColour, esc(p.name))
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="%s">* (withheld)</text>`, chartLeft+span+6, y+12, inkColour)
		}
		b.WriteString("\n")
		y += 22
	}
	return y
}

func heading(b *strings.Builder, y int, s string) {
	fmt.Fprintf(b, `<text x="8" y="%d" font-size="13" font-weight="700" fill="%s">%s</text>`+"\n", y, inkColour, esc(s))
}

// legend explains the colours and the withheld mark, from y, and returns
// the picture's height.
func legend(b *strings.Builder, y int) int {
	x := 8
	for _, k := range []struct{ colour, what string }{{referralsColour, "referrals / median"}, {deliveredColour, "delivered / within standard"},
		{p90Colour, "90th percentile"}, {standardColour, "standard"}, {"url(#stats-withheld)", "* withheld"}} {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s" stroke="%s"/><text x="%d" y="%d" font-size="11" fill="%s">%s</text>`,
			x, y-10, k.colour, mutedColour, x+16, y, inkColour, esc(k.what))
		x += 30 + 6*len(k.what)
	}
	b.WriteString("\n")
	return y + 12
}

// days says n days.
func days(n int64) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

func esc(s string) string { return html.EscapeString(s) }
