package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
)

// cmdPolicy answers questions about the configured data sharing policy.
// Today it has one subcommand, explain.
func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "explain" {
		return fmt.Errorf("%w: want 'policy explain [--config FILE] [--format markdown|csv]'", errUsage)
	}
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to explain (default: the built-in configuration)")
	format := fs.String("format", "markdown", "output format: markdown or csv")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *format != "markdown" && *format != "csv" {
		return fmt.Errorf("%w: --format %q: want markdown or csv", errUsage, *format)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	rows := flowRows(cfg)
	if *format == "csv" {
		return writeFlowsCSV(stdout, rows)
	}
	return writeFlowsMarkdown(stdout, cfg.Source, rows)
}

// flowRow is one field disclosed on one flow to one recipient.
type flowRow struct {
	Flow, Recipient, Field, Class, Transform, How, Purpose, Article6, Article9 string
}

var flowHeader = []string{"flow", "recipient", "field", "class", "transform", "how", "purpose", "lawful basis (Art 6)", "special category condition (Art 9)"}

func (r flowRow) cells() []string {
	return []string{r.Flow, r.Recipient, r.Field, r.Class, r.Transform, r.How, r.Purpose, r.Article6, r.Article9}
}

// flowRows lists, route by route in configuration order, every field each
// recipient receives: its class, how it is sent, and why.
func flowRows(cfg *config.Config) []flowRow {
	var rows []flowRow
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
			rows = append(rows, flowRow{
				Flow: r.Message, Recipient: recipient, Field: rule.Field, Class: string(f.Class),
				Transform: rule.As, How: how, Purpose: r.Purpose, Article6: r.LawfulBasis, Article9: art9,
			})
		}
	}
	return rows
}

func writeFlowsCSV(w io.Writer, rows []flowRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(flowHeader); err != nil {
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

func writeFlowsMarkdown(w io.Writer, source string, rows []flowRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Data flows\n\n")
	fmt.Fprintf(&b, "Configuration: %s. Deny by default: a field not listed here is not sent to that recipient.\n\n", mdCell(source))
	b.WriteString("| " + strings.Join(flowHeader, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(flowHeader)) + "\n")
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
