package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cmdLineBudget is how many lines the command's own code (not its tests)
// may have: it parses flags, calls the packages that do the work
// (internal/hub, internal/demo, ...) and prints. Assembling a hub, the
// demo's stand-ins and the use cases the admin API shares do not belong
// here (issue 20).
const cmdLineBudget = 1500

// maxFuncLines is the longest a function of the project's code (not its
// tests) may be.
const maxFuncLines = 100

// TestCommandStaysThin: cmd/iceshub's non-test Go files hold fewer than
// cmdLineBudget lines.
func TestCommandStaysThin(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines < 500 {
		t.Fatalf("cmd/iceshub has %d lines of code: the count is broken", lines)
	}
	if lines >= cmdLineBudget {
		t.Errorf("cmd/iceshub has %d lines of code, at most %d allowed: move what is not flag parsing, calling and printing into the internal package named for it",
			lines, cmdLineBudget-1)
	}
}

// TestNoFunctionOverAHundredLines reads every Go file of the module, its
// tests included (not testdata), and checks that no function or method is
// longer than maxFuncLines, from its func keyword to its closing brace,
// unless its doc comment gives the reason, in a line beginning "Longer than
// 100 lines:" (a scenario test told in order, a table of cases).
func TestNoFunctionOverAHundredLines(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	funcs := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			funcs++
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			if n > maxFuncLines && !strings.Contains(fd.Doc.Text(), "Longer than 100 lines: ") {
				t.Errorf("%s: %s is %d lines long, at most %d allowed: split it, or say why beside it (\"Longer than 100 lines: ...\")",
					fset.Position(fd.Pos()), fd.Name.Name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if funcs < 500 {
		t.Fatalf("found %d functions: the walk is broken", funcs)
	}
}
