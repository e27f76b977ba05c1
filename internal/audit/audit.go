// Package audit answers questions about the disclosure record for people:
// what was shared about one person, as a subject access report with the
// deadline of its reply (UK GDPR Art 12(3)).
package audit

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

// Article 12(3) UK GDPR, as the reports state it.
const sarDeadlineRule = "UK GDPR Art 12(3): reply without undue delay and at the latest within one month of receiving the request " +
	"(extendable by two further months for complex or numerous requests, telling the person within the first month)"

// Report is a subject access report; its JSON form is what
// 'iceshub audit subject --json' prints.
type Report struct {
	NHSNumber       string             `json:"nhsNumber"`
	Subject         string             `json:"subject"`
	GeneratedAt     time.Time          `json:"generatedAt"`
	RequestReceived string             `json:"requestReceived"`
	ReplyDueBy      string             `json:"replyDueBy"`
	DeadlineRule    string             `json:"deadlineRule"`
	RecordIntegrity store.VerifyReport `json:"recordIntegrity"`
	Disclosures     []store.Disclosure `json:"disclosures"`
}

// SubjectReport gathers everything the disclosure record holds about the
// person whose subject value (subject.Key.Of) is sbj, NHS number nhs, for a
// request received on day, with the record's integrity, as at now.
func SubjectReport(ctx context.Context, st Record, nhs, sbj string, day, now time.Time) (Report, error) {
	ds, err := st.DisclosuresBySubject(ctx, sbj)
	if err != nil {
		return Report{}, err
	}
	integrity, err := st.VerifyDisclosures(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{
		NHSNumber: nhs, Subject: sbj, GeneratedAt: now.UTC().Truncate(time.Second),
		RequestReceived: day.Format(time.DateOnly), ReplyDueBy: OneMonthAfter(day).Format(time.DateOnly),
		DeadlineRule: sarDeadlineRule, RecordIntegrity: integrity, Disclosures: ds,
	}
	if rep.Disclosures == nil {
		rep.Disclosures = []store.Disclosure{}
	}
	return rep, nil
}

// Record is what a subject access report reads of the store.
type Record interface {
	DisclosuresBySubject(ctx context.Context, subject string) ([]store.Disclosure, error)
	VerifyDisclosures(ctx context.Context) (store.VerifyReport, error)
}

// Write prints rep for people: a heading with the deadline, the
// record's integrity, and a table of the disclosures.
func Write(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "Subject access report: what iceshub shared about NHS number %s %s %s\n", rep.NHSNumber[:3], rep.NHSNumber[3:6], rep.NHSNumber[6:])
	fmt.Fprintf(w, "Request received %s; reply due by %s. %s.\n", rep.RequestReceived, rep.ReplyDueBy, rep.DeadlineRule)
	fmt.Fprintf(w, "Generated %s.", rep.GeneratedAt.Format(time.RFC3339))
	if rep.RecordIntegrity.OK {
		fmt.Fprintf(w, " Disclosure record verified intact (%d entries).\n", rep.RecordIntegrity.Entries)
	} else {
		fmt.Fprintf(w, " WARNING: the disclosure record is broken at entry %d (%s); run 'iceshub audit verify'.\n",
			rep.RecordIntegrity.BadID, rep.RecordIntegrity.Problem)
	}
	fmt.Fprintf(w, "%d disclosure record entries.\n\n", len(rep.Disclosures))
	if len(rep.Disclosures) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN (UTC)\tRECIPIENT\tKIND\tOUTCOME\tPURPOSE\tLAWFUL BASIS\tREFERRAL\tFIELDS")
	for _, d := range rep.Disclosures {
		outcome := d.Outcome
		if d.Detail != "" {
			outcome += " (" + d.Detail + ")"
		}
		fields := strings.Join(d.Fields, ", ")
		if fields == "" {
			fields = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.At.UTC().Format("2006-01-02 15:04:05"), d.Recipient, d.Kind,
			outcome, d.Purpose, d.LawfulBasis, d.ReferralID, fields)
	}
	return tw.Flush()
}

// OneMonthAfter is the Art 12(3) deadline as the ICO counts it: the same
// day of the next month, or that month's last day when it has no such day
// (31 January gives 28 or 29 February).
func OneMonthAfter(d time.Time) time.Time {
	y, m, day := d.Date()
	first := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	if last := first.AddDate(0, 1, -1).Day(); day > last {
		day = last
	}
	return time.Date(first.Year(), first.Month(), day, 0, 0, 0, 0, time.UTC)
}
