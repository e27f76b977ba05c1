package bench

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
)

// The profiles a hub under test writes when bench asks (serve --cpuprofile
// and --memprofile, from bench --profile).

// StartCPUProfile profiles the process into path until the returned stop.
func StartCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// WriteAllocProfile writes the allocation profile to path; a failure is
// logged, since the hub has stopped by then.
func WriteAllocProfile(path string, logger *slog.Logger) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		logger.Error("could not write the allocation profile", "error", err)
	}
}
