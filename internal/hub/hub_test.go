package hub

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestAnOpenDataDirectoryIsWarnedAbout: a data directory the operator made
// readable by others is left as it is, and warned about; a 0700 one is not.
func TestAnOpenDataDirectoryIsWarnedAbout(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		warn bool
	}{{0o755, true}, {0o700, false}} {
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		warnIfOpen(dir, slog.New(slog.NewTextHandler(&logs, nil)))
		if got := strings.Contains(logs.String(), "chmod 0700"); got != c.warn {
			t.Errorf("mode %v: warned %v, want %v: %q", c.mode, got, c.warn, logs.String())
		}
	}
}
