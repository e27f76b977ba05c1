// Package minimise cuts a canonical record down to what one recipient may
// receive. It denies by default: a field that is not named is not copied, and
// a field that is named is copied as is or generalised by its transform.
package minimise

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/postcode"
)

// Transforms: how a named field reaches the recipient.
const (
	// Keep copies the field as it is.
	Keep = "keep"
	// Pseudonymise replaces the NHS number with a keyed HMAC-SHA256 of it in
	// Person.Pseudonym, with Person.PseudonymSystem set to
	// model.PseudonymSystem; the copy holds no NHS number.
	Pseudonymise = "pseudonymise"
	// Year keeps only the year of the date of birth.
	Year = "year"
	// AgeBand replaces the date of birth with the person's age band on the
	// day the copy is cut (Options.Now) in Person.AgeBand.
	AgeBand = "age-band"
	// District keeps only the postcode district ("CH65"); for the address it
	// also drops the address lines and keeps town and district.
	District = "district"
	// Redact replaces free text with Redacted, so the recipient knows that
	// something was withheld.
	Redact = "redact"
)

// Redacted is what a redacted free-text field holds.
const Redacted = "[redacted]"

// MinPseudonymKeyBytes is the shortest pseudonymisation key Apply accepts.
const MinPseudonymKeyBytes = 16

// appliesTo lists, per transform, the fields it can be applied to; nil means
// every field.
var appliesTo = map[string][]string{
	Keep:         nil,
	Pseudonymise: {"person.nhsNumber"},
	Year:         {"person.birthDate"},
	AgeBand:      {"person.birthDate"},
	District:     {"person.address", "person.postcode"},
	Redact:       {"accessNotes", "clinical.notes"},
}

// Errors returned by CheckRule and Apply; each is wrapped with detail.
var (
	ErrUnknownTransform = errors.New("unknown transform")
	ErrNotApplicable    = errors.New("transform does not apply to field")
	ErrNoPseudonymKey   = errors.New("no pseudonymisation key")
	ErrNoClock          = errors.New("no clock for age bands")
)

// Rule names one field a recipient may receive and how. The zero As means
// Keep.
type Rule struct {
	Field string
	As    string
}

// Label returns how the rule is recorded with a disclosure (see
// model.FieldLabel): "person.name", "person.birthDate(year)".
func (r Rule) Label() string { return model.FieldLabel(r.Field, r.As) }

func (r Rule) as() string {
	if r.As == "" {
		return Keep
	}
	return r.As
}

// Options are what transforms need besides the record.
type Options struct {
	// Now is the day age bands are computed for.
	Now time.Time
	// PseudonymKey is the secret key of Pseudonymise. It must be kept apart
	// from the data and be at least MinPseudonymKeyBytes long.
	PseudonymKey []byte
}

// Transforms returns the names of all transforms, Keep first.
func Transforms() []string {
	return []string{Keep, Pseudonymise, Year, AgeBand, District, Redact}
}

// TransformsFor returns the transforms that apply to field, Keep first.
func TransformsFor(field string) []string {
	var out []string
	for _, t := range Transforms() {
		if fs := appliesTo[t]; fs == nil || slices.Contains(fs, field) {
			out = append(out, t)
		}
	}
	return out
}

// Describe says in a few words what a transform does, for data flow tables.
func Describe(as string) string {
	switch as {
	case "", Keep:
		return "as is"
	case Pseudonymise:
		return "pseudonymised (keyed HMAC-SHA256; not an NHS number)"
	case Year:
		return "year of birth only"
	case AgeBand:
		return "age band only"
	case District:
		return "postcode district only (no address lines)"
	case Redact:
		return "redacted (" + Redacted + ")"
	}
	return as
}

// CheckRule reports whether rule names a catalogue field and a transform
// that applies to it. The error wraps model.ErrUnknownField,
// ErrUnknownTransform or ErrNotApplicable.
func CheckRule(rule Rule) error {
	if _, ok := model.LookupField(rule.Field); !ok {
		return fmt.Errorf("%w %q", model.ErrUnknownField, rule.Field)
	}
	fs, ok := appliesTo[rule.as()]
	if !ok {
		return fmt.Errorf("%w %q (transforms: %s)", ErrUnknownTransform, rule.As, strings.Join(Transforms(), ", "))
	}
	if fs != nil && !slices.Contains(fs, rule.Field) {
		return fmt.Errorf("%w: %q cannot be applied to %q (it can be: %s)", ErrNotApplicable, rule.As, rule.Field, strings.Join(TransformsFor(rule.Field), ", "))
	}
	return nil
}

// Referral returns a new referral holding only the operational identifiers of
// r and the catalogue fields named in allowed, each as is. It is Apply with
// Keep rules.
func Referral(r *model.Referral, allowed []string) (model.Referral, error) {
	rules := make([]Rule, len(allowed))
	for i, f := range allowed {
		rules[i] = Rule{Field: f}
	}
	return Apply(r, rules, Options{})
}

// Apply returns a new referral holding only the operational identifiers of r
// (ID, Source, ReceivedAt, and model.EventSkeleton of its Event) and the fields the rules name, each as is or
// transformed. It never changes r, and the result shares no slices with it.
//
// Fields kept as is are copied first and transformed fields after them, so
// when two rules touch the same data (person.address and person.postcode)
// the generalised form wins. A rule CheckRule refuses, Pseudonymise without a
// key of at least MinPseudonymKeyBytes, or AgeBand without Options.Now, is an
// error and no copy is returned: a mistake never leaks data.
func Apply(r *model.Referral, rules []Rule, opts Options) (model.Referral, error) {
	out := model.Referral{ID: r.ID, Source: r.Source, ReceivedAt: r.ReceivedAt, Event: model.EventSkeleton(r.Event)}
	ordered := slices.Clone(rules)
	slices.SortStableFunc(ordered, func(a, b Rule) int {
		return boolInt(a.as() != Keep) - boolInt(b.as() != Keep)
	})
	for _, rule := range ordered {
		if err := CheckRule(rule); err != nil {
			return model.Referral{}, fmt.Errorf("minimise: %w", err)
		}
		f, _ := model.LookupField(rule.Field)
		if err := apply(&out, r, f, rule.as(), opts); err != nil {
			return model.Referral{}, fmt.Errorf("minimise: %s(%s): %w", rule.Field, rule.As, err)
		}
	}
	return out, nil
}

func apply(dst, src *model.Referral, f model.Field, as string, opts Options) error {
	switch as {
	case Keep:
		f.Copy(dst, src)
	case Pseudonymise:
		if len(opts.PseudonymKey) < MinPseudonymKeyBytes {
			return fmt.Errorf("%w (need at least %d bytes)", ErrNoPseudonymKey, MinPseudonymKeyBytes)
		}
		dst.Person.NHSNumber = ""
		if n := nhsnumber.Normalise(src.Person.NHSNumber); n != "" {
			dst.Person.Pseudonym = Pseudonym(opts.PseudonymKey, n)
			dst.Person.PseudonymSystem = model.PseudonymSystem
		}
	case Year:
		dst.Person.BirthDate = ""
		if y, _, _, ok := splitDate(src.Person.BirthDate); ok {
			dst.Person.BirthDate = fmt.Sprintf("%04d", y)
		}
	case AgeBand:
		if opts.Now.IsZero() {
			return ErrNoClock
		}
		dst.Person.BirthDate = ""
		dst.Person.AgeBand = ""
		if y, m, d, ok := splitDate(src.Person.BirthDate); ok {
			dst.Person.AgeBand = Band(minAge(y, m, d, opts.Now))
		}
	case District:
		district := ""
		if p, ok := postcode.Split(src.Person.Address.Postcode); ok {
			district = p.District
		}
		if f.Name == "person.address" {
			a := src.Person.Address
			dst.Person.Address = model.Address{City: a.City, District: a.District}
		}
		dst.Person.Address.Lines = nil
		dst.Person.Address.Postcode = district
	case Redact:
		switch f.Name {
		case "accessNotes":
			dst.AccessNotes = ""
			if strings.TrimSpace(src.AccessNotes) != "" {
				dst.AccessNotes = Redacted
			}
		case "clinical.notes":
			dst.Clinical.Notes = nil
			if len(src.Clinical.Notes) > 0 {
				dst.Clinical.Notes = []string{Redacted}
			}
		}
	}
	return nil
}

// Pseudonym returns the pseudonym of a normalised NHS number under key: the
// lower-case hex HMAC-SHA256, 64 characters, never 10 digits.
func Pseudonym(key []byte, nhsNumber string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nhsNumber))
	return hex.EncodeToString(m.Sum(nil))
}

// Band returns the age band of age: "0-17", "18-24", then ten-year bands
// "25-34" to "75-84", then "85+".
func Band(age int) string {
	switch {
	case age < 18:
		return "0-17"
	case age < 25:
		return "18-24"
	case age >= 85:
		return "85+"
	}
	lo := 25 + (age-25)/10*10
	return fmt.Sprintf("%d-%d", lo, lo+9)
}

// splitDate parses YYYY, YYYY-MM or YYYY-MM-DD; month and day are 0 when
// absent.
func splitDate(s string) (y, m, d int, ok bool) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) > 3 || len(parts[0]) != 4 {
		return 0, 0, 0, false
	}
	vals := make([]int, 3)
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || (i > 0 && len(p) != 2) {
			return 0, 0, 0, false
		}
		vals[i] = v
	}
	y, m, d = vals[0], vals[1], vals[2]
	if m > 12 || d > 31 || (len(parts) > 1 && m == 0) || (len(parts) > 2 && d == 0) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// minAge is the youngest the person can be on now's date: a date of birth
// given as a year or a month is taken at its last possible day.
func minAge(y, m, d int, now time.Time) int {
	if m == 0 {
		m, d = 12, 31
	}
	if d == 0 {
		d = time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	}
	age := now.Year() - y
	if int(now.Month()) < m || (int(now.Month()) == m && now.Day() < d) {
		age--
	}
	return max(age, 0)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
