package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// Statistics of the service for commissioners (issue 19): the counts the
// store keeps by cell, published through internal/stats's disclosure
// control with the configuration's rules, by 'iceshub stats' and
// GET /admin/stats alike.

// Default grouping and format of the statistics.
const (
	defaultStatsBy     = "council,month"
	defaultStatsFormat = "csv"
)

// statsOptions are a request for statistics, as given.
type statsOptions struct {
	from, to, by, format string
}

// errStatsOption is a statistics request's mistake (a usage error, a 400).
var errStatsOption = errors.New("invalid statistics request")

// query checks o and returns the query and format it names.
func (o statsOptions) query() (stats.Query, string, error) {
	if o.from == "" || o.to == "" {
		return stats.Query{}, "", fmt.Errorf("%w: from and to are required (YYYY-MM)", errStatsOption)
	}
	for _, m := range []string{o.from, o.to} {
		if _, err := stats.ParseMonth(m); err != nil {
			return stats.Query{}, "", fmt.Errorf("%w: %v", errStatsOption, err)
		}
	}
	by := o.by
	if by == "" {
		by = defaultStatsBy
	}
	dims, err := stats.ParseDims(by)
	if err != nil {
		return stats.Query{}, "", fmt.Errorf("%w: by: %v", errStatsOption, err)
	}
	format := o.format
	if format == "" {
		format = defaultStatsFormat
	}
	switch format {
	case "csv", "json", "markdown":
	default:
		return stats.Query{}, "", fmt.Errorf("%w: format %q: want csv, json or markdown", errStatsOption, format)
	}
	return stats.Query{From: o.from, To: o.to, By: dims}, format, nil
}

// publishStats reads the counts of q's months and publishes them under
// rules. A query the rules refuse (too many months or groups, months
// backwards) wraps errStatsOption.
func publishStats(ctx context.Context, st store.Statistics, q stats.Query, rules stats.Rules) (stats.Table, error) {
	counts, err := st.Statistics(ctx, q.From, q.To)
	if err != nil {
		return stats.Table{}, err
	}
	t, err := stats.Publish(counts, q, rules)
	if err != nil {
		return stats.Table{}, fmt.Errorf("%w: %v", errStatsOption, err)
	}
	return t, nil
}

// statsContentType is the media type of each format.
var statsContentType = map[string]string{
	"csv":      "text/csv; charset=utf-8",
	"json":     "application/json",
	"markdown": "text/markdown; charset=utf-8",
}

// writeStats writes t in format. CSV starts with the rules applied, each
// on a line of its own beginning "# ".
func writeStats(w io.Writer, t stats.Table, format string) error {
	switch format {
	case "json":
		return writeStatsJSON(w, t)
	case "markdown":
		return writeStatsMarkdown(w, t)
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

func header(t stats.Table) []string {
	h := make([]string, 0, len(t.By)+len(t.Columns))
	for _, d := range t.By {
		h = append(h, string(d))
	}
	return append(h, t.Columns...)
}

// statsJSON is the JSON form of a published table.
type statsJSON struct {
	From    string         `json:"from"`
	To      string         `json:"to"`
	By      []stats.Dim    `json:"by"`
	Rules   []string       `json:"rules"`
	Columns []string       `json:"columns"`
	Rows    []statsJSONRow `json:"rows"`
}

type statsJSONRow struct {
	Group  map[string]string `json:"group"`
	Values map[string]string `json:"values"`
}

func writeStatsJSON(w io.Writer, t stats.Table) error {
	out := statsJSON{From: t.From, To: t.To, By: t.By, Rules: t.Rules, Columns: t.Columns, Rows: []statsJSONRow{}}
	if out.By == nil {
		out.By = []stats.Dim{}
	}
	for _, row := range t.Rows {
		r := statsJSONRow{Group: map[string]string{}, Values: map[string]string{}}
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

func writeStatsMarkdown(w io.Writer, t stats.Table) error {
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
			if cells[i] == stats.Suppressed {
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

// cmdStats prints the statistics of the service, as commissioners may see
// them.
func cmdStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file whose stats rules and store.data_dir to use (default: the built-in configuration)")
	data := fs.String("data", "", "data directory (overrides store.data_dir)")
	var o statsOptions
	fs.StringVar(&o.from, "from", "", "first month, YYYY-MM (required)")
	fs.StringVar(&o.to, "to", "", "last month, YYYY-MM (required)")
	fs.StringVar(&o.by, "by", defaultStatsBy, "group by these, comma-separated: council, month, priority, setting, class")
	fs.StringVar(&o.format, "format", defaultStatsFormat, "csv, json or markdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	q, format, err := o.query()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Store.DataDir = *data
	}
	st, err := openExisting(cfg.Store.DataDir, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := publishStats(ctx, st, q, cfg.Stats.Rules())
	if errors.Is(err, errStatsOption) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	return writeStats(stdout, t, format)
}

// statsHandler serves GET /admin/stats?from=&to=[&by=][&format=], the
// options of 'iceshub stats'.
func (a *admin) statsHandler(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, format, err := statsOptions{from: v.Get("from"), to: v.Get("to"), by: v.Get("by"), format: v.Get("format")}.query()
	var t stats.Table
	if err == nil {
		t, err = publishStats(r.Context(), a.dlq.store, q, a.rules)
	}
	if errors.Is(err, errStatsOption) {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", err.Error(),
			[]partnersim.Problem{{Field: "query", Message: "from and to (YYYY-MM), by (council, month, priority, setting, class), format (csv, json, markdown)"}})
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", statsContentType[format])
	w.Header().Set("Cache-Control", "no-store")
	_ = writeStats(w, t, format)
}
