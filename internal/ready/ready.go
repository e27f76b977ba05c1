// Package ready waits for a hub to answer ready: the demo for the hub it
// serves, the bench for the hub process it runs, and the tests.
package ready

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Wait polls base's /readyz until the hub answers 200.
func Wait(ctx context.Context, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the hub did not become ready")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
