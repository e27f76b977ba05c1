package store

import (
	"errors"
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
