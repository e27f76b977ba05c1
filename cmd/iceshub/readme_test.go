package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeShBlock finds the README's shell blocks: what a newcomer pastes.
var readmeShBlock = regexp.MustCompile("(?s)```sh\n(.*?)```")

// TestReadmeCommandsWork pastes every command of the README's sh blocks, in
// order, into one bash session in a fresh copy of the repository (the files
// git tracks or would add, nothing built, no ICESHUB_ variable set), as a
// newcomer would, and requires each to succeed:
//
//   - `go run ./cmd/iceshub demo` runs the demo to its end;
//   - the test command is what .ci/run runs; here only its `go vet ./...`
//     half runs (running the whole suite inside one of its own tests would
//     recurse);
//   - the five-minute deployment builds the binary, copies the example
//     configuration, sets the variables it names, checks it, and starts
//     serve, which is left running (as the README leaves it) until /readyz
//     answers, then stopped with SIGTERM and must exit 0. The README's
//     address is replaced by a free one, so the test does not depend on port
//     8080 being free.
func TestReadmeCommandsWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary in a copy of the repository; skipped with -short")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's readiness check uses curl, which is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeShBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 3 {
		t.Fatalf("the README has %d sh blocks; expected the two commands, the deployment and the readiness check", len(blocks))
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}

	const readmeAddr = "127.0.0.1:8080"
	addr := freeAddr(t)
	var script strings.Builder
	script.WriteString("set -euo pipefail\nserve_pid=\n" +
		"trap 'if [ -n \"$serve_pid\" ]; then kill -TERM $serve_pid 2>/dev/null || true; fi' EXIT\n")
	var ran []string
	sawServe, sawDemo, sawTests := false, false, false
	for _, b := range blocks {
		for _, line := range strings.Split(strings.TrimSpace(b[1]), "\n") {
			cmd := strings.TrimSpace(line)
			if cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			ran = append(ran, cmd)
			cmd = strings.ReplaceAll(cmd, readmeAddr, addr)
			fmt.Fprintf(&script, "echo '+ %s'\n", strings.ReplaceAll(cmd, "'", `'\''`))
			switch {
			case strings.Contains(cmd, "go test"):
				sawTests = true
				bare, _, _ := strings.Cut(cmd, "#")
				bare = strings.TrimSpace(bare)
				want := strings.Replace(bare, "go test -race", "go test -race -count=1 -timeout 12m", 1)
				if !bytes.Contains(ci, []byte(want)) {
					t.Errorf("the README's test command %q is not what .ci/run runs (want a line with %q)", bare, want)
				}
				vet, _, ok := strings.Cut(bare, " && ")
				if !ok || vet != "go vet ./..." {
					t.Fatalf("the README's test command %q does not start with go vet ./...", bare)
				}
				script.WriteString(vet + "\n")
			case strings.Contains(cmd, "iceshub serve"):
				sawServe = true
				bare, _, _ := strings.Cut(cmd, "#")
				fmt.Fprintf(&script, "%s &\nserve_pid=$!\n", bare)
				fmt.Fprintf(&script, "for i in $(seq 300); do curl -sf http://%s/readyz >/dev/null && break; "+
					"kill -0 $serve_pid || { echo 'serve exited'; exit 1; }; sleep 0.1; done\n", addr)
			default:
				sawDemo = sawDemo || strings.Contains(cmd, "cmd/iceshub demo")
				script.WriteString(cmd + "\n")
			}
		}
	}
	if !sawServe || !sawDemo || !sawTests {
		t.Fatalf("the README should show the demo, the tests and serve; ran %q", ran)
	}
	script.WriteString("kill -TERM $serve_pid\nwait $serve_pid\nserve_pid=\necho serve stopped\n")

	dir := freshCopy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = envWithout("ICESHUB_")
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		t.Fatalf("the README's commands failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"every accepted referral reached every recipient", "iceshub.yaml: ok",
		"ready: config loaded, router running, store writable", "serve stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the README's commands did not print %q:\n%s", want, out.String())
		}
	}
}

// freshCopy copies the repository's files as a clone of the next commit
// would have them (tracked, and untracked ones not ignored) into a new
// directory, and returns it.
func freshCopy(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	files, err := ls.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "iceshub")
	n := 0
	for _, name := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		body, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, body, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("copied only %d files of the repository", n)
	}
	return dst
}

// envWithout is the process environment without the variables whose names
// start with prefix: a newcomer's shell has none of the hub's.
func envWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// TestUsageListsEveryCommand: every command run dispatches is in the usage
// text, and the usage names no command run does not know.
func TestUsageListsEveryCommand(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "func run(")
	body, _, _ = strings.Cut(body, "\n}\n")
	dispatched := map[string]bool{}
	for _, m := range regexp.MustCompile(`case "([a-z]+)"`).FindAllStringSubmatch(body, -1) {
		if m[1] != "help" {
			dispatched[m[1]] = true
		}
	}
	if len(dispatched) < 10 {
		t.Fatalf("found %d commands in run: the parse is broken", len(dispatched))
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  iceshub ([a-z]+)`).FindAllStringSubmatch(usage, -1) {
		listed[m[1]] = true
	}
	for c := range dispatched {
		if !listed[c] {
			t.Errorf("iceshub %s is not in the usage text", c)
		}
	}
	for c := range listed {
		if !dispatched[c] {
			t.Errorf("the usage text lists iceshub %s, which run does not dispatch", c)
		}
	}
}
