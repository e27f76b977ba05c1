package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/console"
	"github.com/iceshub/iceshub/internal/policy"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/subject"
	"github.com/iceshub/iceshub/routes"
)

// mountConsole adds the operators' console (internal/console) to the
// operator's mux, on the same use cases as the admin API: held resolves
// held messages, dlq replays and discards dead letters; subject access
// reports are those of 'audit subject' (internal/audit), the policy table
// that of 'policy explain' (internal/policy), the statistics those of
// 'iceshub stats' under the configuration's rules.
func (h *Hub) mountConsole(mux *http.ServeMux, held *routes.Held, dlq *DLQActions, subjects subject.Key) error {
	var partners []console.Partner
	for _, p := range h.cfg.Partners {
		partners = append(partners, console.Partner{ID: p.ID, Name: p.Name, Kind: p.Kind})
	}
	var rows []console.PolicyRow
	for _, r := range policy.Flows(h.cfg) {
		rows = append(rows, console.PolicyRow(r))
	}
	st, rules := h.store, h.cfg.Stats.Rules()
	c, err := console.New(console.Config{
		Store: st, Held: held, DeadLetter: dlq, Subject: subjects.Of,
		SubjectAccess: func(ctx context.Context, nhs string, received time.Time) (console.SubjectReport, error) {
			day := time.Date(received.Year(), received.Month(), received.Day(), 0, 0, 0, 0, time.UTC)
			rep, err := audit.SubjectReport(ctx, st, nhs, subjects.Of(nhs), day, time.Now())
			if err != nil {
				return console.SubjectReport{}, err
			}
			b, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				return console.SubjectReport{}, err
			}
			return console.SubjectReport{NHSNumber: rep.NHSNumber, GeneratedAt: rep.GeneratedAt, RequestReceived: rep.RequestReceived,
				ReplyDueBy: rep.ReplyDueBy, DeadlineRule: rep.DeadlineRule, Integrity: rep.RecordIntegrity, Disclosures: rep.Disclosures,
				Download: append(b, '\n')}, nil
		},
		Stats: func(ctx context.Context, q stats.Query) (stats.Table, error) {
			return PublishStats(ctx, st, q, rules)
		},
		Partners: partners, BreakerOpen: h.ops.breakerOpen, Policy: rows, Logger: h.log,
		SecureCookies: h.cfg.Console.SecureCookies, Idle: h.cfg.Console.SessionIdle, Lifetime: h.cfg.Console.SessionLifetime,
		MaxFailures: h.cfg.Console.MaxFailedSignIns, LockFor: h.cfg.Console.LockFor,
	})
	if err != nil {
		return err
	}
	c.Mount(mux)
	return nil
}
