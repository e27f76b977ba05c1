package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
)

// cmdCheck validates a configuration file without starting anything, and
// the environment serve would read with it (unless --file-only).
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check (default: the built-in configuration)")
	fields := fs.Bool("fields", false, "also list the canonical fields routes may name, with their data protection class")
	fileOnly := fs.Bool("file-only", false, "check the file alone, not the environment serve would need (secrets, token_env, "+hub.AdminTokenEnv+"): for checking a file where its secrets are not")
	insecureDev := fs.Bool("insecure-dev", false, "check as serve --insecure-dev would start: an unset token_env is a warning, not an error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := hub.LoadConfig(*path)
	if err != nil {
		return err
	}
	if !*fileOnly {
		warnings, err := hub.CheckEnvironment(cfg, cfg.Server.InsecureDev || *insecureDev, hub.AdminTokenFrom(""))
		for _, w := range warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d partners, %d routes)\n", cfg.Source, len(cfg.Partners), len(cfg.Routes))
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE\tTO\tFIELDS\tLAWFUL BASIS")
	for _, r := range cfg.Routes {
		basis := r.LawfulBasis
		if r.SpecialCategoryBasis != "" {
			basis += "; " + r.SpecialCategoryBasis
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Message, r.To, len(r.Fields), basis)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *fields {
		fmt.Fprintln(stdout)
		tw = tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FIELD\tCLASS\tWHAT")
		for _, f := range model.ReferralFields() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, f.Class, f.Description)
		}
		return tw.Flush()
	}
	return nil
}
