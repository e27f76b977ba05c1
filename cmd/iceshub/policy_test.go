package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updatePolicy = flag.Bool("update", false, "rewrite the golden files under testdata/policy and testdata/e2e")

// TestPolicyExplainDefaultGolden compares the data flow table of the built-in
// configuration with testdata/policy/explain-default.{md,csv}. Run with
// -update to rewrite them, then review the diff.
func TestPolicyExplainDefaultGolden(t *testing.T) {
	for _, c := range []struct{ format, file string }{
		{"markdown", "explain-default.md"},
		{"csv", "explain-default.csv"},
	} {
		t.Run(c.format, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run([]string{"policy", "explain", "--format", c.format}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			path := filepath.Join("..", "..", "testdata", "policy", c.file)
			if *updatePolicy {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("policy explain --format %s differs from %s (run with -update and review the diff):\n%s", c.format, path, out.String())
			}
		})
	}
}

func TestPolicyExplainShowsTransforms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iceshub.yaml")
	cfg := `
policy:
  pseudonym_key_env: ICESHUB_PSEUDONYM_KEY
partners:
  - id: council-a
    kind: council
    name: Example Council
    base_url: http://127.0.0.1:2
    postcode_prefixes: [CH1]
routes:
  - message: referral
    to: council
    purpose: case tracking
    lawful_basis: Art 6(1)(e)
    fields:
      - {field: person.nhsNumber, as: pseudonymise}
      - field: person.birthDate
        as: age-band
      - {field: person.postcode, as: district}
      - {field: accessNotes, as: redact}
      - priority
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"policy", "explain", "--config", path, "--format", "csv"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"person.nhsNumber,personal,pseudonymise,", "$ICESHUB_PSEUDONYM_KEY",
		"person.birthDate,personal,age-band,age band only",
		"person.postcode,personal,district,postcode district only",
		"accessNotes,personal,redact,redacted ([redacted])",
		"priority,none,keep,as is",
		"council of the person's area (council-a)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPolicyExplainUsage(t *testing.T) {
	for _, args := range [][]string{{"policy"}, {"policy", "list"}, {"policy", "explain", "--format", "pdf"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}
