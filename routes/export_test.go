package routes

import "time"

// ParkWait exposes Park.wait to the tests of package routes_test.
func ParkWait(p Park, n int, err error) time.Duration { return p.wait(n, err) }
