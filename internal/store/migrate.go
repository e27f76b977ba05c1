package store

import "github.com/pressly/goose/v3"

// MigrationState is one schema migration of an engine and whether the
// database has it (`iceshub migrate status`).
type MigrationState struct {
	Version int64  `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
	// AppliedAt is when it was applied (RFC 3339), empty when it is not.
	AppliedAt string `json:"appliedAt,omitempty"`
}

// MigrationStates turns goose's status into MigrationStates: every
// engine's schema is kept by goose migrations.
func MigrationStates(st []*goose.MigrationStatus) []MigrationState {
	out := make([]MigrationState, 0, len(st))
	for _, s := range st {
		m := MigrationState{Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied}
		if m.Applied {
			m.AppliedAt = s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
		}
		out = append(out, m)
	}
	return out
}
