package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/model"
	crmmap "github.com/iceshub/iceshub/mappings/crm"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
	providermap "github.com/iceshub/iceshub/mappings/provider"
)

// contractFields returns, for a partner kind and a kind of message, the
// canonical fields the partner's wire contract can carry; nil when the
// contract has no request for that kind of message. A route naming any other
// field would dead-letter every message at delivery time, so it is refused
// at start-up instead.
func contractFields(partnerKind string, msg model.Kind) []string {
	switch partnerKind {
	case config.KindProvider:
		return providermap.FieldsFor(msg)
	case config.KindCouncil:
		return crmmap.FieldsFor(msg)
	case config.KindNHS:
		if slices.Contains(fhirmap.EmittedKinds(), msg) {
			return fhirmap.FieldsFor(msg)
		}
	case config.KindCommissioner:
		if msg == model.KindStatistics {
			return []string{} // the published table, no one's fields
		}
	}
	return nil
}

// checkContracts reports every route its recipient's contract cannot carry,
// for its kind of message or for a field, naming the file and line.
func checkContracts(cfg *config.Config) error {
	var errs []error
	for _, r := range cfg.Routes {
		var kinds []string
		switch r.To {
		case config.RecipientCouncil:
			kinds = []string{config.KindCouncil}
		case config.RecipientRequester:
			kinds = []string{config.KindNHS}
		default:
			if p, ok := cfg.PartnerByID(r.To); ok {
				kinds = []string{p.Kind}
			}
		}
		for _, kind := range kinds {
			carried := contractFields(kind, model.Kind(r.Message))
			if carried == nil {
				errs = append(errs, fmt.Errorf("%s:%d: route %s -> %s: the %s contract has no request for %q messages",
					cfg.Source, r.Line, r.Message, r.To, kind, r.Message))
				continue
			}
			for _, f := range r.Fields {
				if !slices.Contains(carried, f) {
					errs = append(errs, fmt.Errorf("%s:%d: route %s -> %s: the %s contract cannot carry field %q (it carries: %s)",
						cfg.Source, r.Line, r.Message, r.To, kind, f, strings.Join(carried, ", ")))
				}
			}
		}
	}
	return errors.Join(errs...)
}
