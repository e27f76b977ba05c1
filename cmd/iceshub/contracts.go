package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	crmmap "github.com/iceshub/iceshub/mappings/crm"
	providermap "github.com/iceshub/iceshub/mappings/provider"
)

// contractFields is, per partner kind, the canonical fields its wire contract
// can carry. A route naming any other field would dead-letter every message
// at delivery time, so it is refused at start-up instead.
var contractFields = map[string][]string{
	config.KindProvider: providermap.Fields(),
	config.KindCouncil:  crmmap.Fields(),
}

// checkContracts reports every route field its recipient's contract cannot
// carry, naming the file and line.
func checkContracts(cfg *config.Config) error {
	var errs []error
	for _, r := range cfg.Routes {
		var kinds []string
		if r.To == config.RecipientCouncil {
			kinds = []string{config.KindCouncil}
		} else if p, ok := cfg.PartnerByID(r.To); ok {
			kinds = []string{p.Kind}
		}
		for _, kind := range kinds {
			carried := contractFields[kind]
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
