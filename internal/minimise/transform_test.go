package minimise

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

var (
	testKey = []byte("a-test-key-of-32-bytes-for-tests")
	testNow = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
)

func TestApplyTransforms(t *testing.T) {
	cases := []struct {
		name  string
		rules []Rule
		check func(t *testing.T, got model.Referral)
	}{
		{"pseudonymise", []Rule{{"person.nhsNumber", Pseudonymise}}, func(t *testing.T, got model.Referral) {
			p := got.Person
			if p.NHSNumber != "" || p.PseudonymSystem != model.PseudonymSystem || len(p.Pseudonym) != 64 || strings.Contains(p.Pseudonym, "9990000018") {
				t.Errorf("person = %+v", p)
			}
			if p.Pseudonym != Pseudonym(testKey, "9990000018") || p.Pseudonym == Pseudonym([]byte("another-key-of-enough-bytes"), "9990000018") {
				t.Error("pseudonym is not the keyed HMAC of the number")
			}
		}},
		{"year", []Rule{{"person.birthDate", Year}}, func(t *testing.T, got model.Referral) {
			if got.Person.BirthDate != "1941" || got.Person.AgeBand != "" {
				t.Errorf("person = %+v", got.Person)
			}
		}},
		{"age band", []Rule{{"person.birthDate", AgeBand}}, func(t *testing.T, got model.Referral) {
			if got.Person.BirthDate != "" || got.Person.AgeBand != "85+" {
				t.Errorf("person = %+v", got.Person)
			}
		}},
		{"postcode district", []Rule{{"person.postcode", District}}, func(t *testing.T, got model.Referral) {
			if a := got.Person.Address; a.Postcode != "CH1" || len(a.Lines) != 0 || a.City != "" {
				t.Errorf("address = %+v", a)
			}
		}},
		{"address district", []Rule{{"person.address", District}}, func(t *testing.T, got model.Referral) {
			if a := got.Person.Address; a.Postcode != "CH1" || len(a.Lines) != 0 || a.City != "Chester" {
				t.Errorf("address = %+v", a)
			}
		}},
		{"address kept, postcode generalised: the generalisation wins", []Rule{{"person.postcode", District}, {"person.address", Keep}}, func(t *testing.T, got model.Referral) {
			if got.Person.Address.Postcode != "CH1" {
				t.Errorf("address = %+v", got.Person.Address)
			}
		}},
		{"redact access notes", []Rule{{"accessNotes", Redact}}, func(t *testing.T, got model.Referral) {
			if got.AccessNotes != Redacted {
				t.Errorf("access notes = %q", got.AccessNotes)
			}
		}},
		{"redact clinical notes", []Rule{{"clinical.notes", Redact}}, func(t *testing.T, got model.Referral) {
			if len(got.Clinical.Notes) != 1 || got.Clinical.Notes[0] != Redacted {
				t.Errorf("notes = %q", got.Clinical.Notes)
			}
		}},
		{"empty As means keep", []Rule{{"person.birthDate", ""}}, func(t *testing.T, got model.Referral) {
			if got.Person.BirthDate != "1941-03-07" {
				t.Errorf("birth date = %q", got.Person.BirthDate)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			full := fullReferral()
			before := fullReferral()
			got, err := Apply(&full, c.rules, Options{Now: testNow, PseudonymKey: testKey})
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, got)
			if got.Person.Name.Text != "" || len(got.Equipment) != 0 {
				t.Errorf("unnamed fields leaked: %+v", got)
			}
			if full.Person.NHSNumber != before.Person.NHSNumber || full.AccessNotes != before.AccessNotes || full.Clinical.Notes[0] != before.Clinical.Notes[0] {
				t.Error("Apply changed its input")
			}
		})
	}
}

func TestApplyLeavesAbsentValuesAbsent(t *testing.T) {
	empty := model.Referral{ID: "r"}
	got, err := Apply(&empty, []Rule{{"person.nhsNumber", Pseudonymise}, {"accessNotes", Redact}, {"clinical.notes", Redact},
		{"person.birthDate", AgeBand}, {"person.address", District}}, Options{Now: testNow, PseudonymKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if got.Person.Pseudonym != "" || got.AccessNotes != "" || got.Clinical.Notes != nil || got.Person.AgeBand != "" || !got.Person.Address.IsZero() {
		t.Errorf("nothing to disclose, got %+v", got)
	}
}

func TestBand(t *testing.T) {
	cases := []struct {
		birth string
		want  string
	}{
		{"2010-01-01", "0-17"},
		{"2008-11-02", "18-24"}, // 18 today
		{"2008-11-03", "0-17"},  // 18 tomorrow
		{"1951-11-02", "75-84"},
		{"1941-11-03", "75-84"}, // 84, 85 tomorrow
		{"1941-11-02", "85+"},
		{"1980", "45-54"},    // taken at 31 December 1980: 45
		{"1951-11", "65-74"}, // taken at 30 November 1951: 74
	}
	for _, c := range cases {
		full := model.Referral{Person: model.Person{BirthDate: c.birth}}
		got, err := Apply(&full, []Rule{{"person.birthDate", AgeBand}}, Options{Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		if got.Person.AgeBand != c.want {
			t.Errorf("%s on %s: band %q, want %q", c.birth, testNow.Format(time.DateOnly), got.Person.AgeBand, c.want)
		}
	}
}

func TestApplyRefusesWhatItCannotDoSafely(t *testing.T) {
	full := fullReferral()
	cases := []struct {
		name  string
		rules []Rule
		opts  Options
		want  error
	}{
		{"unknown transform", []Rule{{"person.birthDate", "month"}}, Options{}, ErrUnknownTransform},
		{"inapplicable transform", []Rule{{"person.name", Redact}}, Options{}, ErrNotApplicable},
		{"pseudonymise a postcode", []Rule{{"person.postcode", Pseudonymise}}, Options{}, ErrNotApplicable},
		{"no key", []Rule{{"person.nhsNumber", Pseudonymise}}, Options{}, ErrNoPseudonymKey},
		{"short key", []Rule{{"person.nhsNumber", Pseudonymise}}, Options{PseudonymKey: []byte("short")}, ErrNoPseudonymKey},
		{"no clock", []Rule{{"person.birthDate", AgeBand}}, Options{}, ErrNoClock},
		{"unknown field", []Rule{{"person.nickname", Keep}}, Options{}, model.ErrUnknownField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Apply(&full, c.rules, c.opts)
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "9990000018") {
				t.Errorf("error holds personal data: %v", err)
			}
			if got.ID != "" {
				t.Errorf("a copy was returned with the error: %+v", got)
			}
		})
	}
}

func TestTransformsFor(t *testing.T) {
	if got := strings.Join(TransformsFor("person.birthDate"), ","); got != "keep,year,age-band" {
		t.Errorf("person.birthDate: %s", got)
	}
	if got := strings.Join(TransformsFor("equipment"), ","); got != "keep" {
		t.Errorf("equipment: %s", got)
	}
}
