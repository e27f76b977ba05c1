package audit

import (
	"testing"
	"time"
)

func TestOneMonthAfter(t *testing.T) {
	for in, want := range map[string]string{
		"2025-01-15": "2025-02-15", "2025-01-31": "2025-02-28", "2024-01-31": "2024-02-29",
		"2025-03-31": "2025-04-30", "2025-12-20": "2026-01-20",
	} {
		d, _ := time.Parse(time.DateOnly, in)
		if got := OneMonthAfter(d).Format(time.DateOnly); got != want {
			t.Errorf("OneMonthAfter(%s) = %s, want %s", in, got, want)
		}
	}
}
