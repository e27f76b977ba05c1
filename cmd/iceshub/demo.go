package main

import (
	"context"
	"flag"
	"io"
	"path/filepath"
	"time"

	"github.com/iceshub/iceshub/internal/demo"
)

// cmdDemo runs the hub with simulated partners on a temporary embedded store,
// sends the sample referrals through it and prints what each partner got
// (internal/demo).
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.Options
	fs.StringVar(&o.Referrals, "referrals", filepath.Join("testdata", "fhir"), "directory of referral-*.json FHIR bundles to send")
	fs.StringVar(&o.Refuse, "refuse", filepath.Join("testdata", "fhir", "invalid", "nhs-number-check-digit.json"), "a bundle the hub must refuse, sent to show the OperationOutcome (empty: none)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary data directory and print where it is")
	fs.BoolVar(&o.Verbose, "v", false, "show the hub's logs")
	fs.DurationVar(&o.Wait, "wait", time.Minute, "how long to wait for deliveries before giving up")
	fs.BoolVar(&o.NoReturn, "no-return", false, "skip the return journey (status updates, complaints, safeguarding, cancellations, collections)")
	fs.BoolVar(&o.Stay, "stay", false, "keep the hub up afterwards (until Ctrl-C), with an operators' console account whose one-time password is printed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return demo.Run(ctx, o, stdout, stderr)
}
