// Command iceshub is the integration hub of an Integrated Community Equipment
// Service: it takes NHS FHIR referrals, stores them so they cannot be lost,
// and delivers to the equipment provider and the council only what each may
// see.
//
// Usage:
//
//	iceshub serve [--config FILE] [--addr HOST:PORT] [--ops-addr HOST:PORT] [--data DIR] [--insecure-dev]
//	iceshub demo  [--referrals DIR] [--keep] [--no-return] [--stay]
//	iceshub check [--config FILE] [--fields] [--file-only] [--insecure-dev]
//	iceshub audit verify | subject --nhs-number N [--json] [--data DIR | --config FILE]
//	iceshub policy explain [--config FILE] [--format markdown|csv]
//	iceshub retention run [--config FILE] [--data DIR] [--now RFC3339]
//	iceshub bench [--scenario steady|outage|backlog] [--flow default|f1] [--duration D] [--rate N] [--json]
//	iceshub dlq list [--json] [--all] | show ID | replay ID... | discard ID... --reason TEXT
//	iceshub held list [--json] [--all] | route ID --council C --reason TEXT | release ID --permission-recorded-by NAME --evidence REF | close ID --reason TEXT
//	iceshub operators add --name NAME --role viewer|operator|dpo | list | password --name NAME | disable --name NAME
//	iceshub stats --from YYYY-MM --to YYYY-MM [--by council,month] [--format csv|json|markdown|svg] | publish --month YYYY-MM
//	iceshub keys rotate [--config FILE] [--data DIR] [--new-key]
//	iceshub migrate [status] [--data DIR | --config FILE]
//	iceshub store copy --from-data DIR --config FILE
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/iceshub/iceshub/internal/logging"
)

const usage = `iceshub: the ICES integration hub

Usage:
  iceshub serve [--config FILE] [--addr HOST:PORT] [--ops-addr HOST:PORT] [--data DIR]
                [--insecure-dev] [--log-format text|json] [--debug]
        run the hub (built-in default configuration when --config is absent);
        --ops-addr serves /healthz, /readyz, /metrics and /admin/ there only
  iceshub demo [--referrals DIR] [--refuse FILE] [--keep] [--no-return] [--stay] [--v] [--wait D]
        run the hub with simulated partners on a temporary embedded store,
        send the sample referrals through it and show what each partner got;
        --stay keeps it up and prints the operators' console address and a
        one-time password
  iceshub check [--config FILE] [--fields] [--file-only] [--insecure-dev]
        check a configuration file without starting anything, and the
        environment serve would need with it: inbound secrets, pseudonym
        keys, every token_env, ICESHUB_ADMIN_TOKEN (--file-only: the file alone)
  iceshub audit verify [--data DIR | --config FILE]
        check that the disclosure record is intact (hash chain); exit 1
        naming the first changed or missing entry
  iceshub audit subject --nhs-number N [--json] [--received YYYY-MM-DD] [--data DIR | --config FILE]
        print everything shared about one person, for a subject access reply
  iceshub policy explain [--config FILE] [--format markdown|csv]
        print the data flow table: per flow and recipient, every field
        disclosed, its class, how it is sent, purpose and lawful basis
  iceshub retention run [--config FILE] [--data DIR] [--now RFC3339]
        delete what the retention settings no longer allow the hub to keep
        (serve does this every retention.interval) and print the counts
  iceshub bench [--scenario steady|outage|backlog] [--flow default|f1] [--duration 10s]
                [--rate N] [--senders 8] [--preload N] [--profile DIR] [--json]
        run this binary's hub on a temporary embedded store against partner
        stand-ins, drive it with referral bundles over HTTP, report
        throughput, latency, CPU, memory and database size
  iceshub dlq list [--json] [--all] [--data DIR | --config FILE]
        list the dead letters waiting for a person (--all: replayed and
        discarded ones too)
  iceshub dlq show ID [--data DIR | --config FILE]
        print one dead letter, the partner's answer and the delivery it carried
  iceshub dlq replay ID... [--by NAME] [--reason TEXT] [--data DIR | --config FILE]
        queue each delivery again for its partner, same idempotency key
  iceshub dlq discard ID... --reason TEXT [--by NAME] [--data DIR | --config FILE]
        record that each will not be delivered, and why (nothing is deleted)
  iceshub held list [--json] [--all] [--data DIR | --config FILE]
        list the messages held for review (--all: resolved ones too)
  iceshub held route ID --council C --reason TEXT [--by NAME] [--data DIR | --config FILE]
        send a copy held because no council covers the postcode to council C,
        cut by the council route, and record C as the referral's council
  iceshub held release ID --permission-recorded-by NAME --evidence REF [--permission-recorded-at DATE]
                     [--reason TEXT] [--by NAME] [--data DIR | --config FILE]
        record the person's express permission (who, when, a reference to the
        evidence, never personal values) and send the copy held for want of it
  iceshub held close ID --reason TEXT [--by NAME] [--data DIR | --config FILE]
        record that a held copy will not be sent, and why (nothing is sent)
        route, release and close are refused while a hub runs on the data
        directory: use its admin API (POST /admin/held/{id}/route|release|close)
  iceshub operators add --name NAME --role viewer|operator|dpo [--data DIR | --config FILE]
        add an account of the operators' console (/console/); the password
        is read from standard input
  iceshub operators list [--json] | password --name NAME | disable --name NAME [--data DIR | --config FILE]
        list the console's accounts, replace one's password (read from
        standard input; clears its failed sign-ins), or stop one signing
        in; password and disable end the account's console sessions
  iceshub stats --from YYYY-MM --to YYYY-MM [--by council,month,priority,setting,class] [--format csv|json|markdown|svg] [--config FILE] [--data DIR]
        print the statistics of the service as commissioners may see them:
        counts by group with totals, after small-number suppression and
        rounding (the stats rules of the configuration, stated in the output)
  iceshub stats publish --month YYYY-MM --config FILE [--data DIR]
        send an ended month's statistics to every commissioner the routes
        name that has not had them (a month no hub ran to send); queued in
        the store and delivered by the hub. Refused while a hub runs on an
        embedded store: use POST /admin/stats/publish
  iceshub keys rotate [--config FILE] [--data DIR] [--new-key] [--batch N]
        re-encrypt every stored payload under the active data key (with
        --new-key, first make a new key the active one) and print the counts
  iceshub migrate [status] [--json] [--data DIR | --config FILE]
        bring the store's schema up to date (serve does it as it starts,
        unless a PostgreSQL store's store.migrate is manual; the embedded
        store always does) and list its migrations and which are applied
  iceshub store copy --from-data DIR --config FILE [--json]
        copy everything the embedded store in DIR holds into the new, empty
        PostgreSQL store of FILE, in one transaction, checked before it commits

Run 'iceshub COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "retention":
		err = cmdRetention(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(ctx, args[1:], stdout, stderr)
	case "held":
		err = cmdHeld(ctx, args[1:], stdout, stderr)
	case "operators":
		err = cmdOperators(ctx, args[1:], os.Stdin, stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr)
	case "stats":
		err = cmdStats(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout, stderr)
	case "store":
		err = cmdStore(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "iceshub: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "iceshub %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "iceshub %s: %v\n", args[0], err)
		return 1
	}
}

// newLogger returns the process logger: structured, to stderr. Handlers log
// ids and outcomes only, never payloads or personal data, and
// logging.Handler enforces it: attributes not on its allowlist are dropped,
// and NHS numbers, postcodes, phone numbers and dates are scrubbed from the
// rest.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(logging.New(slog.NewJSONHandler(w, opts))), nil
	case "text", "":
		return slog.New(logging.New(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
	}
}

// writeJSON prints v as indented JSON, what every command's --json prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
