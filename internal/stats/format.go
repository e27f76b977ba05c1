package stats

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The published table as 'iceshub stats' prints it and GET /admin/stats
// serves it: the request's options checked, and the table written as CSV,
// JSON or Markdown.

// Default grouping and format of the statistics.
const (
	DefaultBy     = "council,month"
	DefaultFormat = "csv"
)

// Request is a request for statistics, as given: by and format empty take
// DefaultBy and DefaultFormat.
type Request struct {
	From, To, By, Format string
}

// ErrRequest marks a statistics request's mistake (a usage error, a 400).
var ErrRequest = errors.New("invalid statistics request")

// Query checks o and returns the query and format it names; a mistake
// wraps ErrRequest.
func (o Request) Query() (Query, string, error) {
	if o.From == "" || o.To == "" {
		return Query{}, "", fmt.Errorf("%w: from and to are required (YYYY-MM)", ErrRequest)
	}
	for _, m := range []string{o.From, o.To} {
		if _, err := ParseMonth(m); err != nil {
			return Query{}, "", fmt.Errorf("%w: %v", ErrRequest, err)
		}
	}
	by := o.By
	if by == "" {
		by = DefaultBy
	}
	dims, err := ParseDims(by)
	if err != nil {
		return Query{}, "", fmt.Errorf("%w: by: %v", ErrRequest, err)
	}
	format := o.Format
	if format == "" {
		format = DefaultFormat
	}
	switch format {
	case "csv", "json", "markdown":
	case "svg":
		// The picture is drawn by month and by priority (ChartBy).
		if by != DefaultBy && !slices.Equal(dims, ChartBy()) {
			return Query{}, "", fmt.Errorf("%w: by: svg draws by month,priority: leave by out", ErrRequest)
		}
		dims = ChartBy()
	default:
		return Query{}, "", fmt.Errorf("%w: format %q: want csv, json, markdown or svg", ErrRequest, format)
	}
	return Query{From: o.From, To: o.To, By: dims}, format, nil
}

// ContentType is the media type of each format.
var ContentType = map[string]string{
	"csv":      "text/csv; charset=utf-8",
	"json":     "application/json",
	"markdown": "text/markdown; charset=utf-8",
	"svg":      "image/svg+xml",
}

// Write writes t in format (csv, json, markdown or svg; anything else is
// csv). CSV starts with the rules applied, each on a line of its own
// beginning "# ". SVG is the picture of WriteSVG, standalone.
func Write(w io.Writer, t Table, format string) error {
	switch format {
	case "svg":
		return WriteSVG(w, t, true)
	case "json":
		return writeJSON(w, t)
	case "markdown":
		return writeMarkdown(w, t)
	}
	for _, r := range t.Rules {
		if _, err := fmt.Fprintf(w, "# %s\n", r); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header(t)); err != nil {
		return err
	}
	for _, row := range t.Rows {
		if err := cw.Write(append(append([]string(nil), row.Group...), row.Values...)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func header(t Table) []string {
	h := make([]string, 0, len(t.By)+len(t.Columns))
	for _, d := range t.By {
		h = append(h, string(d))
	}
	return append(h, t.Columns...)
}

// JSONTable is the JSON form of a published table.
type JSONTable struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	By      []Dim     `json:"by"`
	Rules   []string  `json:"rules"`
	Columns []string  `json:"columns"`
	Rows    []JSONRow `json:"rows"`
}

// JSONRow is one row of a JSONTable: its group and its values, by name.
type JSONRow struct {
	Group  map[string]string `json:"group"`
	Values map[string]string `json:"values"`
}

func writeJSON(w io.Writer, t Table) error {
	out := JSONTable{From: t.From, To: t.To, By: t.By, Rules: t.Rules, Columns: t.Columns, Rows: []JSONRow{}}
	if out.By == nil {
		out.By = []Dim{}
	}
	for _, row := range t.Rows {
		r := JSONRow{Group: map[string]string{}, Values: map[string]string{}}
		for i, d := range t.By {
			r.Group[string(d)] = row.Group[i]
		}
		for i, c := range t.Columns {
			r.Values[c] = row.Values[i]
		}
		out.Rows = append(out.Rows, r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeMarkdown(w io.Writer, t Table) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Statistics of the service, %s to %s\n\n", t.From, t.To)
	h := header(t)
	b.WriteString("| " + strings.Join(h, " | ") + " |\n|")
	for range h {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		cells := append(append([]string(nil), row.Group...), row.Values...)
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
			if cells[i] == Suppressed {
				cells[i] = `\*`
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\nRules applied:\n\n")
	for _, r := range t.Rules {
		b.WriteString("- " + strings.ReplaceAll(r, "*", `\*`) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
