package store

// RotateCount is what RotateKeys did to one column.
type RotateCount struct {
	Table, Column string
	// Rewritten values were sealed under another key, or stored in clear,
	// and are now sealed under the active key.
	Rewritten int
	// Current values were sealed under the active key already.
	Current int
}

// DefaultRotateBatch is how many rows RotateKeys rewrites per transaction.
const DefaultRotateBatch = 500
