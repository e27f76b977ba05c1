package store

import "errors"

// ErrSubjectKeyMismatch is returned by Open when Options.SubjectKey is not
// the key the store's subjects were recorded under.
var ErrSubjectKeyMismatch = errors.New("store: subject key differs from the key this store's disclosure record was written with")

// VerifyReport is the result of VerifyDisclosures.
type VerifyReport struct {
	// OK is true when every entry from the checkpoint on is intact.
	OK bool `json:"ok"`
	// Entries is how many entries were verified (up to the first bad one).
	Entries int `json:"entries"`
	// Checkpoint is the id of the last entry removed under a checkpoint;
	// verification started after it. 0 when none was removed.
	Checkpoint int64 `json:"checkpoint,omitempty"`
	// Head is the hash of the last verified entry (or of the checkpoint):
	// record it elsewhere to anchor the record up to here.
	Head string `json:"head,omitempty"`
	// BadID is the id of the first entry that is changed, missing or out
	// of place; Problem says which.
	BadID   int64  `json:"badId,omitempty"`
	Problem string `json:"problem,omitempty"`
}
