// Package policy explains the configured data sharing policy for people:
// per flow and recipient, every field disclosed, its class, how it is
// sent, the purpose and the lawful basis ('iceshub policy explain').
package policy

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
)

// Flow is one field disclosed on one flow to one recipient.
type Flow struct {
	Flow, Recipient, Field, Class, Transform, How, Purpose, Article6, Article9 string
}

var header = []string{"flow", "recipient", "field", "class", "transform", "how", "purpose", "lawful basis (Art 6)", "special category condition (Art 9)"}

func (r Flow) cells() []string {
	return []string{r.Flow, r.Recipient, r.Field, r.Class, r.Transform, r.How, r.Purpose, r.Article6, r.Article9}
}

// Flows lists, route by route in configuration order, every field each
// recipient receives: its class, how it is sent, and why.
func Flows(cfg *config.Config) []Flow {
	var rows []Flow
	for _, r := range cfg.Routes {
		recipient := r.To
		if r.To == config.RecipientCouncil {
			var ids []string
			for _, p := range cfg.Partners {
				if p.Kind == config.KindCouncil {
					ids = append(ids, p.ID)
				}
			}
			recipient = fmt.Sprintf("council of the person's area (%s)", strings.Join(ids, ", "))
		} else if p, ok := cfg.PartnerByID(r.To); ok && p.Name != "" {
			recipient = fmt.Sprintf("%s (%s)", r.To, p.Name)
		}
		if r.Message == config.MessageStatistics {
			// No field of anyone's: the month's published table.
			rows = append(rows, Flow{
				Flow: r.Message, Recipient: recipient, Field: model.StatisticsLabel, Class: string(model.ClassNone), Transform: "aggregate",
				How: "counts by council and month, suppressed and rounded (stats)", Purpose: r.Purpose, Article6: r.LawfulBasis,
				Article9: "not needed (no personal data)",
			})
			continue
		}
		for _, rule := range r.Rules() {
			f, _ := model.LookupField(rule.Field) // Parse has checked every name
			how := minimise.Describe(rule.As)
			if rule.As == minimise.Pseudonymise && r.PseudonymKeyEnv != "" {
				how += ", key in $" + r.PseudonymKeyEnv
			}
			art9 := "not needed (not special category)"
			if f.Class == model.ClassSpecial {
				art9 = r.SpecialCategoryBasis
			}
			rows = append(rows, Flow{
				Flow: r.Message, Recipient: recipient, Field: rule.Field, Class: string(f.Class),
				Transform: rule.As, How: how, Purpose: r.Purpose, Article6: r.LawfulBasis, Article9: art9,
			})
		}
	}
	return rows
}

// WriteCSV writes rows as CSV, with a header line.
func WriteCSV(w io.Writer, rows []Flow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r.cells()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteMarkdown writes rows as a Markdown table under a heading naming
// source, the configuration they come from.
func WriteMarkdown(w io.Writer, source string, rows []Flow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Data flows\n\n")
	fmt.Fprintf(&b, "Configuration: %s. Deny by default: a field not listed here is not sent to that recipient.\n\n", mdCell(source))
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, r := range rows {
		cells := r.cells()
		for i := range cells {
			cells[i] = mdCell(cells[i])
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
