package console

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/iceshub/iceshub/internal/stats"
)

// The statistics page (issue 19): the statistics of the service as
// commissioners may see them, published through the hub's disclosure
// control and drawn as an inline SVG (stats.WriteSVG) beside the table it
// is drawn from. It shows only published figures, so any signed-in role
// may see it, and nothing about a person is viewed: it is not recorded in
// the operator record, as other pages without personal values are not.
// Months are not personal data, so they come in the URL.

type statsData struct {
	From, To  string
	Problem   string
	Available bool
	Chart     template.HTML
	Headings  []string
	Table     stats.Table
}

// defaultMonths are the months the page shows without from and to: the
// twelve months up to now's.
const defaultMonths = 12

func (c *Console) statsPage(w http.ResponseWriter, r *http.Request, s *session) {
	now := c.cfg.Now().UTC()
	data := statsData{From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to"), Available: c.cfg.Stats != nil}
	if data.From == "" && data.To == "" {
		data.From = now.AddDate(0, 1-defaultMonths, 0).Format("2006-01")
		data.To = now.Format("2006-01")
	}
	data.From, data.To = oneLine(data.From, 7), oneLine(data.To, 7)
	if !data.Available {
		c.render(w, r, s, http.StatusOK, "stats", "Statistics", data)
		return
	}
	q, _, err := stats.Request{From: data.From, To: data.To, Format: "svg"}.Query()
	if err == nil {
		data.Table, err = c.cfg.Stats(r.Context(), q)
	}
	if errors.Is(err, stats.ErrRequest) {
		data.Problem = "Give the first and last months as YYYY-MM, the first not after the last, at most 120 months apart."
		c.render(w, r, s, http.StatusBadRequest, "stats", "Statistics", data)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var b strings.Builder
	if err := stats.WriteSVG(&b, data.Table, false); err != nil {
		c.fail(w, r, s, err)
		return
	}
	data.Chart = template.HTML(b.String()) // drawn from the published table, every text escaped
	for _, d := range data.Table.By {
		data.Headings = append(data.Headings, string(d))
	}
	for _, col := range data.Table.Columns {
		data.Headings = append(data.Headings, strings.ReplaceAll(col, "_", " "))
	}
	c.render(w, r, s, http.StatusOK, "stats", "Statistics", data)
}
