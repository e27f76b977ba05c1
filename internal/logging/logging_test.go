package logging

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"nhs 9990000026 here":                  "nhs [redacted] here",
		"nhs 999 000 0026":                     "nhs [redacted]",
		"born 1941-03-02.":                     "born [redacted].",
		"born 02/03/1941":                      "born [redacted]",
		"at CW1 2AB today":                     "at [redacted] today",
		"lower ch65 0bb":                       "lower [redacted]",
		"tight SK101AA":                        "tight [redacted]",
		"call 07700 900123":                    "call [redacted]",
		"call 01632 960001 or +44 7700 900456": "call [redacted] or [redacted]",
		"call 0113 496 0000":                   "call [redacted]",
		// What must survive: timestamps, uuids, hashes, statuses, counts.
		"at 2025-06-02T09:30:00Z":                  "at 2025-06-02T09:30:00Z",
		"ref 918e19e1-647e-5c54-a34d-970fbe8dbb43": "ref 918e19e1-647e-5c54-a34d-970fbe8dbb43",
		"HTTP 422, 3 attempts, 250ms":              "HTTP 422, 3 attempts, 250ms",
		"918e19e1-0123-4567-8901-5c54a34d970f":     "918e19e1-0123-4567-8901-5c54a34d970f",
		// A UUID is passed only whole: around it the patterns still apply.
		"918e19e1-0123-4567-8901-5c54a34d970f 9990000026":  "918e19e1-[redacted]-5c54a34d970f [redacted]",
		"918e19e1-0123-4567-8901-5c54a34d970":              "918e19e1-[redacted]-5c54a34d970",
		"no digits at all":                                 "no digits at all",
		"sha 4f2a9c1e0b7d3a5f8e6c2b1a0d9f8e7c6b5a4f3e2d1c": "sha 4f2a9c1e0b7d3a5f8e6c2b1a0d9f8e7c6b5a4f3e2d1c",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHandlerDropsUnknownKeysAndScrubsValues(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(slog.NewTextHandler(&buf, nil))).With("partner", "provider", "nhs_number", "9990000026")
	log.Info("referral for 9990000026 accepted",
		"referral_id", "r-1", "payload", `{"name":"Ada Smith"}`, "postcode", "CW1 2AB",
		"error", errors.New("partner said: no patient 999 000 0026 at CW1 2AB, born 1941-03-02, tel 07700 900123"),
		"status", 422, "correlation_id", "sender-9990000026",
		slog.Group("person", "name", "Ada Smith"), slog.Group("", "route", "council"))
	out := buf.String()
	for _, gone := range []string{"9990000026", "999 000 0026", "Ada", "CW1", "1941", "07700", "payload", "postcode", "nhs_number", "person"} {
		if strings.Contains(out, gone) {
			t.Errorf("log holds %q: %s", gone, out)
		}
	}
	for _, kept := range []string{"partner=provider", "referral_id=r-1", "status=422", "route=council", "partner said: no patient [redacted]",
		"correlation_id=sender-[redacted]", "referral for [redacted] accepted"} {
		if !strings.Contains(out, kept) {
			t.Errorf("log lacks %q: %s", kept, out)
		}
	}
}

// TestAllowedCoversEveryKeyLogged reads the hub's source for every log call
// (a method Debug, Info, Warn, Error, Log or With on something named log or
// logger, and the attrs slices built for them) and checks that each
// literal key is on the allowlist, so that nothing the code means to log is
// silently dropped, and that adding a key is a deliberate change here.
func TestAllowedCoversEveryKeyLogged(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	seen := map[string]bool{}
	keysFrom := func(args []ast.Expr, pos string) {
		for i := 0; i < len(args); i += 2 {
			lit, ok := args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			k, _ := strconv.Unquote(lit.Value)
			seen[k] = true
			if !Allowed[k] {
				t.Errorf("%s: log key %q is not in logging.Allowed: add it if its values never hold personal data", pos, k)
			}
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "append" && len(n.Args) > 1 {
					if a, ok := n.Args[0].(*ast.Ident); ok && a.Name == "attrs" {
						keysFrom(n.Args[1:], fset.Position(n.Pos()).String())
					}
					return true
				}
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || !isLogger(sel.X) {
					return true
				}
				pos := fset.Position(n.Pos()).String()
				switch sel.Sel.Name {
				case "Debug", "Info", "Warn", "Error":
					if len(n.Args) > 1 {
						keysFrom(n.Args[1:], pos)
					}
				case "Log":
					if len(n.Args) > 3 {
						keysFrom(n.Args[3:], pos)
					}
				case "With":
					keysFrom(n.Args, pos)
				}
			case *ast.AssignStmt:
				if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
					if id, ok := n.Lhs[0].(*ast.Ident); ok && id.Name == "attrs" {
						if cl, ok := n.Rhs[0].(*ast.CompositeLit); ok {
							keysFrom(cl.Elts, fset.Position(n.Pos()).String())
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"referral_id", "partner", "error", "status"} {
		if !seen[k] {
			t.Errorf("the source scan found no %q key: it no longer finds the log calls", k)
		}
	}
}

func isLogger(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name == "log" || x.Name == "logger"
	case *ast.SelectorExpr:
		return x.Sel.Name == "log" || x.Sel.Name == "logger"
	}
	return false
}
