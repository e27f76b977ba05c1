package routes

import "time"

// ParkWait exposes Park.wait to the tests of package routes_test.
func ParkWait(p Park, n int, err error) time.Duration { return p.wait(n, err) }

// SyncLog is the tests' log buffer, safe for a logger's goroutine and the
// test's (warnings_internal_test.go).
type SyncLog = syncLog
