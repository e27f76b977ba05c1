package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Hold resolution actions.
const (
	ActionRouted   = "routed"
	ActionReleased = "released"
	ActionClosed   = "closed"
)

// Errors of the hold resolutions.
var (
	ErrHoldResolved       = errors.New("store: held message already resolved")
	ErrPermissionRequired = errors.New("store: a release needs who recorded the person's permission and a reference to the evidence")
)

// PermissionRecord is the record of the person's express permission an
// operator made before releasing a copy held for want of it: who recorded
// it, when, and where the evidence is kept (a reference such as a case or
// document number, never personal values).
type PermissionRecord struct {
	RecordedBy string    `json:"recordedBy"`
	RecordedAt time.Time `json:"recordedAt"`
	Evidence   string    `json:"evidence"`
}

// HoldResolution is a person's decision about a held message.
type HoldResolution struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	// Recipient is the partner a routed or released copy was queued for.
	Recipient string `json:"recipient,omitempty"`
	// Permission is the permission recorded for a release.
	Permission *PermissionRecord `json:"permission,omitempty"`
}

// CheckHoldResolution returns res trimmed, or ErrByRequired,
// ErrReasonRequired (a route or close needs a reason) or
// ErrPermissionRequired (a release needs the permission record): what
// every engine's ResolveHold checks before it writes anything.
func CheckHoldResolution(res HoldResolution) (HoldResolution, error) {
	res.By, res.Reason = strings.TrimSpace(res.By), strings.TrimSpace(res.Reason)
	if res.By == "" {
		return res, ErrByRequired
	}
	switch res.Action {
	case ActionRouted, ActionClosed:
		if res.Reason == "" {
			return res, ErrReasonRequired
		}
	case ActionReleased:
		p := res.Permission
		if p == nil || strings.TrimSpace(p.RecordedBy) == "" || strings.TrimSpace(p.Evidence) == "" {
			return res, ErrPermissionRequired
		}
		res.Permission = &PermissionRecord{RecordedBy: strings.TrimSpace(p.RecordedBy), RecordedAt: p.RecordedAt,
			Evidence: strings.TrimSpace(p.Evidence)}
	default:
		return res, fmt.Errorf("store: unknown hold resolution %q", res.Action)
	}
	if res.Action != ActionReleased {
		res.Permission = nil
	}
	return res, nil
}
