package hub

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/subject"
	"github.com/iceshub/iceshub/routes"
)

// NewHeldResolver returns the use case "resolve a held message" (route to
// a chosen council, release once permission is recorded, close), shared by
// the held command and the admin API, under cfg's routes, councils and
// partners, with the hub's subject key.
func NewHeldResolver(st routes.HeldStore, cfg *config.Config, subjects subject.Key, logger *slog.Logger) (*routes.Held, error) {
	councils, err := cfg.CouncilTable()
	if err != nil {
		return nil, err
	}
	kinds := map[string]string{}
	for _, p := range cfg.Partners {
		kinds[p.ID] = p.Kind
	}
	return routes.NewHeld(routes.Config{
		Routes: cfg.Routes, Councils: councils, Requesters: cfg.RequesterTable(), PartnerKinds: kinds, SubjectKey: subjects,
	}, st, logger)
}

// ParsePermissionTime reads when permission was recorded: RFC 3339 or a
// date (YYYY-MM-DD); empty is now.
func ParsePermissionTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
}
