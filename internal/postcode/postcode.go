// Package postcode places UK postcodes in council areas.
package postcode

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Parts of a UK postcode: "CH65 0BA" has area "CH", district (outward code)
// "CH65" and sector "CH65 0".
type Parts struct {
	Area, District, Sector string
}

var (
	fullPattern   = regexp.MustCompile(`^([A-Z]{1,2})([0-9][A-Z0-9]?) ?([0-9])([A-Z]{2})$`)
	prefixPattern = regexp.MustCompile(`^[A-Z]{1,2}([0-9][A-Z0-9]?( [0-9])?)?$`)
)

// Normalise upper-cases a postcode and puts exactly one space before the
// inward code ("ch650ba" -> "CH65 0BA"). The second result is false when the
// input is not a well-formed UK postcode.
func Normalise(s string) (string, bool) {
	c := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	m := fullPattern.FindStringSubmatch(c)
	if m == nil {
		return "", false
	}
	return m[1] + m[2] + " " + m[3] + m[4], true
}

// Split returns the parts of a postcode, or false when it is not well formed.
func Split(s string) (Parts, bool) {
	n, ok := Normalise(s)
	if !ok {
		return Parts{}, false
	}
	m := fullPattern.FindStringSubmatch(strings.ReplaceAll(n, " ", ""))
	return Parts{Area: m[1], District: m[1] + m[2], Sector: m[1] + m[2] + " " + m[3]}, true
}

// Table maps postcode areas, districts and sectors to owners (council
// partner ids). The most specific entry wins: a sector beats a district, a
// district beats an area. It is safe for concurrent use once built.
type Table struct {
	owners map[string]string
}

// NewTable builds a table from owner -> prefixes. A prefix is an area ("CH"),
// a district ("CH65") or a sector ("CH65 0"). It is an error for a prefix to
// be malformed or claimed by two owners.
func NewTable(prefixesByOwner map[string][]string) (*Table, error) {
	owners := make([]string, 0, len(prefixesByOwner))
	for o := range prefixesByOwner {
		owners = append(owners, o)
	}
	sort.Strings(owners) // deterministic error messages
	t := &Table{owners: map[string]string{}}
	for _, owner := range owners {
		for _, raw := range prefixesByOwner[owner] {
			p := strings.ToUpper(strings.Join(strings.Fields(raw), " "))
			if !prefixPattern.MatchString(p) {
				return nil, fmt.Errorf("postcode prefix %q of %q: want an area (CH), district (CH65) or sector (CH65 0)", raw, owner)
			}
			if prev, dup := t.owners[p]; dup && prev != owner {
				return nil, fmt.Errorf("postcode prefix %q is claimed by both %q and %q", p, prev, owner)
			}
			t.owners[p] = owner
		}
	}
	return t, nil
}

// Lookup returns the owner of the area that holds postcode, or false when no
// entry covers it or it is not a well-formed postcode.
func (t *Table) Lookup(postcode string) (string, bool) {
	p, ok := Split(postcode)
	if !ok {
		return "", false
	}
	for _, k := range []string{p.Sector, p.District, p.Area} {
		if o, ok := t.owners[k]; ok {
			return o, true
		}
	}
	return "", false
}
