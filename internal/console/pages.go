package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// partnerRow is one partner on the overview.
type partnerRow struct {
	ID, Name, Kind                   string
	Delivered, Pending, Parked, Dead int64
	Breaker                          string
	Oldest                           time.Time
	OldestAgo                        string
	Last24h                          int64
	Chart                            template.HTML
}

type overviewData struct {
	Partners []partnerRow
	Held     int64
	Now      time.Time
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	now := c.cfg.Now()
	st := c.cfg.Store
	totals, err := st.DeliveredTotals(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	since := now.Add(-23 * time.Hour).Truncate(time.Hour)
	hours, err := st.DeliveredSince(ctx, since)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	queues, err := st.Queues(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	dead, err := st.DeadLetterCounts(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	parked, err := st.ParkedDeliveries(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	held, err := st.AllHeld(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	data := overviewData{Now: now}
	for _, h := range held {
		if h.Resolution == nil {
			data.Held++
		}
	}
	for _, p := range c.cfg.Partners {
		row := partnerRow{ID: p.ID, Name: p.Name, Kind: p.Kind, Delivered: totals[p.ID], Breaker: "closed"}
		if c.cfg.BreakerOpen != nil && c.cfg.BreakerOpen(p.ID) {
			row.Breaker = "open"
		}
		for _, q := range queues {
			if q.Topic == routes.TopicDeliver(p.ID) || q.Topic == routes.TopicUrgent(p.ID) {
				row.Pending += q.Pending
				if !q.OldestPending.IsZero() && (row.Oldest.IsZero() || q.OldestPending.Before(row.Oldest)) {
					row.Oldest = q.OldestPending
				}
			}
		}
		for _, pk := range parked {
			if pk.Partner == p.ID {
				row.Parked++
			}
		}
		for _, d := range dead {
			if d.Recipient == p.ID {
				row.Dead += d.Open
			}
		}
		row.OldestAgo = ago(now, row.Oldest)
		var perHour [24]int64
		for _, h := range hours {
			if h.Recipient != p.ID {
				continue
			}
			if i := int(h.Hour.Sub(since) / time.Hour); i >= 0 && i < 24 {
				perHour[i] += h.Count
				row.Last24h += h.Count
			}
		}
		row.Chart = chart(p.ID, perHour, since)
		data.Partners = append(data.Partners, row)
	}
	c.render(w, r, s, http.StatusOK, "overview", "Overview", data)
}

// chart draws deliveries per hour as an inline SVG bar chart, with a text
// alternative.
func chart(partner string, perHour [24]int64, since time.Time) template.HTML {
	var peak, total int64
	for _, n := range perHour {
		peak = max(peak, n)
		total += n
	}
	const w, h, bar = 240, 48, 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h+12, w, h+12,
		template.HTMLEscapeString(fmt.Sprintf("Deliveries accepted by %s per hour since %s UTC: %d in all, at most %d in an hour",
			partner, since.UTC().Format("15:04"), total, peak)))
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" class="axis"/>`, h, w, h)
	for i, n := range perHour {
		if n == 0 {
			continue
		}
		bh := max(1, int(int64(h-2)*n/max(peak, 1)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="bar"><title>%s: %d</title></rect>`,
			i*bar, h-bh, bar-2, bh, since.Add(time.Duration(i)*time.Hour).UTC().Format("15:04"), n)
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" class="tick">-24 h</text><text x="%d" y="%d" class="tick" text-anchor="end">now</text></svg>`, h+11, w, h+11)
	return template.HTML(b.String())
}

type heldData struct {
	Open, Resolved []store.Hold
	Councils       []string
	Today          string
}

func (c *Console) heldPage(w http.ResponseWriter, r *http.Request, s *session) {
	all, err := c.cfg.Store.AllHeld(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	data := heldData{Councils: c.councils, Today: c.cfg.Now().UTC().Format(time.DateOnly)}
	for _, h := range all {
		if h.Resolution == nil {
			data.Open = append(data.Open, h)
		} else {
			data.Resolved = append(data.Resolved, h)
		}
	}
	slices.Reverse(data.Resolved)
	c.render(w, r, s, http.StatusOK, "held", "Held for review", data)
}

// resolveHeld routes, releases or closes one held message through the
// resolver the admin API and `iceshub held` use, recorded as the signed-in
// operator.
func (c *Console) resolveHeld(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{Message: "The held message's number is not a number."})
		return
	}
	by := "console:" + s.name
	reason := oneLine(r.PostFormValue("reason"), 500)
	var res routes.Resolved
	action := r.PathValue("action")
	switch action {
	case "route":
		council := strings.TrimSpace(r.PostFormValue("council"))
		if council == "" || reason == "" {
			c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{Message: "Choose the council and give a reason."})
			return
		}
		res, err = c.cfg.Held.Route(r.Context(), id, council, by, reason)
	case "release":
		at, perr := parseDay(r.PostFormValue("permission_at"))
		permBy, evidence := oneLine(r.PostFormValue("permission_by"), 200), oneLine(r.PostFormValue("evidence"), 200)
		if perr != nil || permBy == "" || evidence == "" {
			c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{
				Message: "Record who recorded the person's permission, when (YYYY-MM-DD), and a reference to the evidence."})
			return
		}
		res, err = c.cfg.Held.Release(r.Context(), id, store.PermissionRecord{RecordedBy: permBy, RecordedAt: at, Evidence: evidence}, by, reason)
	case "close":
		if reason == "" {
			c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{Message: "A close needs a reason."})
			return
		}
		res, err = c.cfg.Held.Close(r.Context(), id, by, reason)
	default:
		c.render(w, r, s, http.StatusNotFound, "error", "Not done", errorPage{Message: "No such action."})
		return
	}
	target := "held:" + strconv.FormatInt(id, 10)
	if err != nil {
		_ = c.recordAction(r.Context(), s, "held."+action, target, "refused", oneLine(err.Error(), 200))
		c.fail(w, r, s, err)
		return
	}
	detail := res.Recipient
	if res.HeldAgain != "" {
		detail += " (held again: " + res.HeldAgain + ")"
	}
	if err := c.recordAction(r.Context(), s, "held."+action, target, res.Action, detail); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("held message resolved", "held_id", id, "status", res.Action, "partner", res.Recipient, "kind", res.Kind)
	msg := fmt.Sprintf("Held message %d %s.", id, res.Action)
	switch {
	case res.Action == store.ActionClosed:
		msg += " Nothing was sent."
	case res.HeldAgain != "":
		msg += fmt.Sprintf(" It was held again for %s: %s", res.Recipient, res.HeldAgain)
	default:
		msg += fmt.Sprintf(" The %s for %s is queued.", res.Kind, res.Recipient)
	}
	if res.Action == store.ActionReleased {
		msg += " The permission now stands for the referral's later messages."
	}
	c.setFlash(r.Context(), s, msg)
	http.Redirect(w, r, Prefix+"held", http.StatusSeeOther)
}

func parseDay(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.DateOnly, s)
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n]
	}
	return s
}

// deadLetterRow is a dead letter as the console shows it: the partner's
// answer and the error scrubbed of anything like a person's values.
type deadLetterRow struct {
	store.DeadLetter
	State, Answer, Problem string
	Fields                 []string
}

func rowOf(d store.DeadLetter) deadLetterRow {
	row := deadLetterRow{DeadLetter: d, State: "open", Answer: logging.Scrub(oneLine(d.PartnerAnswer, 300)), Problem: logging.Scrub(oneLine(d.Error, 300))}
	if d.Resolution != nil {
		row.State = d.Resolution.Action
	}
	return row
}

type deadLettersData struct {
	Open, Resolved []deadLetterRow
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request, s *session) {
	dls, err := c.cfg.Store.DeadLetters(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var data deadLettersData
	for _, d := range dls {
		if d.Resolution == nil {
			data.Open = append(data.Open, rowOf(d))
		} else {
			data.Resolved = append(data.Resolved, rowOf(d))
		}
	}
	slices.Reverse(data.Resolved)
	c.render(w, r, s, http.StatusOK, "deadletters", "Dead letters", data)
}

// deadLetter shows one dead letter: what it was, the partner's answer, and
// the names of the fields its copy carried, never their values.
func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.render(w, r, s, http.StatusBadRequest, "error", "Not found", errorPage{Message: "The dead letter's number is not a number."})
		return
	}
	d, err := c.cfg.Store.DeadLetter(r.Context(), id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	row := rowOf(d)
	row.Fields = fieldNames(d.Payload)
	c.render(w, r, s, http.StatusOK, "deadletter", fmt.Sprintf("Dead letter %d", id), row)
}

// fieldNames lists the paths of the non-empty values in a JSON payload
// (a.b, a.c[]), sorted: what the copy carried, without what it said.
func fieldNames(payload []byte) []string {
	var v any
	if json.Unmarshal(payload, &v) != nil {
		return nil
	}
	seen := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		case nil:
		default:
			if s, ok := x.(string); ok && s == "" {
				return
			}
			if prefix != "" {
				seen[prefix] = true
			}
		}
	}
	walk("", v)
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *Console) resolveDeadLetter(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{Message: "The dead letter's number is not a number."})
		return
	}
	by := "console:" + s.name
	reason := oneLine(r.PostFormValue("reason"), 500)
	action := r.PathValue("action")
	target := "dead-letter:" + strconv.FormatInt(id, 10)
	var msg, detail string
	switch action {
	case "replay":
		del, rerr := c.cfg.DeadLetter.Replay(r.Context(), id, by, reason)
		err = rerr
		msg = fmt.Sprintf("Dead letter %d replayed: the %s for %s is queued again, with the same idempotency key.", id, del.Kind, del.Recipient)
		detail = del.Recipient
	case "discard":
		if reason == "" {
			c.render(w, r, s, http.StatusBadRequest, "error", "Not done", errorPage{Message: "A discard needs a reason."})
			return
		}
		err = c.cfg.DeadLetter.Discard(r.Context(), id, by, reason)
		msg = fmt.Sprintf("Dead letter %d discarded; nothing was deleted.", id)
	default:
		c.render(w, r, s, http.StatusNotFound, "error", "Not done", errorPage{Message: "No such action."})
		return
	}
	if err != nil {
		_ = c.recordAction(r.Context(), s, "dead-letter."+action, target, "refused", oneLine(err.Error(), 200))
		c.fail(w, r, s, err)
		return
	}
	if err := c.recordAction(r.Context(), s, "dead-letter."+action, target, action+"ed", detail); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("dead letter resolved", "dead_letter_id", id, "status", action)
	c.setFlash(r.Context(), s, msg)
	http.Redirect(w, r, Prefix+"dead-letters", http.StatusSeeOther)
}

// Search: by hub reference, order or case reference, correlation id, or
// NHS number. The NHS number comes by POST only, is turned into the
// disclosure record's keyed hash at once and is never written anywhere,
// nor put in a URL.

type searchData struct {
	By, Query string
	Results   []string
	Searched  bool
	Problem   string
}

func (c *Console) searchPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "search", "Search", searchData{By: "hub"})
}

func (c *Console) search(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	by := r.PostFormValue("by")
	q := strings.TrimSpace(r.PostFormValue("q"))
	data := searchData{By: by, Searched: true}
	if len(q) > 200 {
		q = q[:200]
	}
	var ids []string
	var err error
	find := func(l intake.Lookup) {
		rec, found, ferr := c.cfg.Store.FindReferral(ctx, l)
		if err = ferr; found {
			ids = []string{rec.Referral.ID}
		}
	}
	target := by
	switch by {
	case "hub":
		data.Query = q
		find(intake.Lookup{ReferralID: q})
	case "order":
		data.Query = q
		find(intake.Lookup{OrderReference: q})
	case "case":
		data.Query = q
		find(intake.Lookup{CaseReference: q})
	case "correlation":
		data.Query = q
		ids, err = c.cfg.Store.ReferralsByCorrelation(ctx, q)
	case "nhs":
		// Never shown back, never recorded: the hash is.
		n := nhsnumber.Normalise(q)
		if cerr := nhsnumber.Check(n); cerr != nil {
			data.Problem = "That is not a valid NHS number (10 digits with a valid check digit)."
			c.render(w, r, s, http.StatusBadRequest, "search", "Search", data)
			return
		}
		subject := c.cfg.Subject(n)
		target = "subject:" + subject
		var ds []store.Disclosure
		ds, err = c.cfg.Store.DisclosuresBySubject(ctx, subject)
		for _, d := range ds {
			if !slices.Contains(ids, d.ReferralID) {
				ids = append(ids, d.ReferralID)
			}
		}
	default:
		data.Problem = "Choose what to search by."
		c.render(w, r, s, http.StatusBadRequest, "search", "Search", data)
		return
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if by != "nhs" {
		target += ":" + q
	}
	if rerr := c.recordAction(ctx, s, "search", oneLine(target, 200), strconv.Itoa(len(ids))+" found", ""); rerr != nil {
		c.fail(w, r, s, rerr)
		return
	}
	data.Results = ids
	c.render(w, r, s, http.StatusOK, "search", "Search", data)
}

// journeyData is one referral's journey: its references and status, each
// decision to share (recipient, the names of the fields sent with their
// transforms, as the disclosure record holds them, purpose, outcome), each
// delivery a partner accepted, and what waits for a person.
type journeyData struct {
	ID          string
	Record      intake.Record
	Disclosures []store.Disclosure
	Deliveries  []store.Delivered
	Held        []store.Hold
	Dead        []deadLetterRow
}

func (c *Console) journey(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	rec, found, err := c.cfg.Store.FindReferral(ctx, intake.Lookup{ReferralID: id})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	data := journeyData{ID: id, Record: rec}
	if data.Disclosures, err = c.cfg.Store.Disclosures(ctx, id); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if !found && len(data.Disclosures) == 0 {
		c.render(w, r, s, http.StatusNotFound, "error", "Not found", errorPage{Message: "The hub holds no referral by that reference."})
		return
	}
	if data.Deliveries, err = c.cfg.Store.Deliveries(ctx, id); err != nil {
		c.fail(w, r, s, err)
		return
	}
	held, err := c.cfg.Store.AllHeld(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, h := range held {
		if h.ReferralID == id {
			data.Held = append(data.Held, h)
		}
	}
	dls, err := c.cfg.Store.DeadLetters(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, d := range dls {
		if d.ReferralID == id {
			data.Dead = append(data.Dead, rowOf(d))
		}
	}
	c.render(w, r, s, http.StatusOK, "journey", "Referral "+id, data)
}

type subjectData struct {
	Report   *SubjectReport
	Today    string
	Problem  string
	Download bool
}

func (c *Console) subjectAccessPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "subject", "Subject access", subjectData{Today: c.cfg.Now().UTC().Format(time.DateOnly)})
}

// subjectAccess answers a subject access request: the report on the page,
// or, with download set, as the JSON of `iceshub audit subject --json`.
// Each is recorded in the operator record, with the subject's keyed hash.
func (c *Console) subjectAccess(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	data := subjectData{Today: c.cfg.Now().UTC().Format(time.DateOnly)}
	n := nhsnumber.Normalise(r.PostFormValue("nhs_number"))
	received, derr := parseDay(r.PostFormValue("received"))
	if err := nhsnumber.Check(n); err != nil || derr != nil {
		data.Problem = "Give a valid NHS number (10 digits with a valid check digit) and the date the request was received (YYYY-MM-DD)."
		c.render(w, r, s, http.StatusBadRequest, "subject", "Subject access", data)
		return
	}
	if received.IsZero() {
		received = c.cfg.Now()
	}
	rep, err := c.cfg.SubjectAccess(ctx, n, received)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	download := r.PostFormValue("download") != ""
	action := "subject-access.view"
	if download {
		action = "subject-access.download"
	}
	if err := c.recordAction(ctx, s, action, "subject:"+c.cfg.Subject(n), strconv.Itoa(len(rep.Disclosures))+" entries", ""); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if download {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="subject-access-`+rep.GeneratedAt.UTC().Format("20060102T150405Z")+`.json"`)
		_, _ = w.Write(rep.Download)
		return
	}
	data.Report = &rep
	c.render(w, r, s, http.StatusOK, "subject", "Subject access", data)
}

type policyData struct{ Rows []PolicyRow }

func (c *Console) policy(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, r, s, http.StatusOK, "policy", "Data sharing policy", policyData{Rows: c.cfg.Policy})
}

type recordData struct {
	Disclosures store.VerifyReport
	Operators   store.VerifyReport
	Actions     []store.OperatorAction
	Accounts    []store.Operator
}

// record shows whether the disclosure record and the operator record are
// intact (`iceshub audit verify`), and the newest operator actions.
func (c *Console) record(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	var data recordData
	var err error
	if data.Disclosures, err = c.cfg.Store.VerifyDisclosures(ctx); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if data.Operators, err = c.cfg.Store.VerifyOperatorRecord(ctx); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if data.Actions, err = c.cfg.Store.OperatorActions(ctx, 200); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if data.Accounts, err = c.cfg.Store.ListOperators(ctx); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "record", "Records and verification", data)
}
