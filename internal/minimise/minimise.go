// Package minimise cuts a canonical record down to what one recipient may
// receive. It denies by default: a field that is not named is not copied.
package minimise

import (
	"fmt"

	"github.com/iceshub/iceshub/internal/model"
)

// Referral returns a new referral holding only the operational identifiers of
// r and the catalogue fields named in allowed. It never changes r, and the
// result shares no slices with it. An unknown field name is an error, so a
// typo in configuration cannot silently withhold (or leak) data.
func Referral(r *model.Referral, allowed []string) (model.Referral, error) {
	out := model.Referral{ID: r.ID, Source: r.Source, ReceivedAt: r.ReceivedAt}
	for _, name := range allowed {
		f, ok := model.LookupField(name)
		if !ok {
			return model.Referral{}, fmt.Errorf("minimise: %w %q", model.ErrUnknownField, name)
		}
		f.Copy(&out, r)
	}
	return out, nil
}
