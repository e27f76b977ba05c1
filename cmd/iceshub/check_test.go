package main

import (
	"bytes"
	"github.com/iceshub/iceshub/internal/hub"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDefaultConfiguration(t *testing.T) {
	setPartnerTokens(t)
	t.Setenv(hub.AdminTokenEnv, "")
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--fields"}, &out, &errOut); code != 0 {
		t.Fatalf("check exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"ok (4 partners, 17 routes)", "clinical.notes", "special"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckRefusesAFieldTheCouncilContractCannotCarry(t *testing.T) {
	cfg := strings.Replace(string(mustRead(t, "../../internal/config/default.yaml")),
		"      - requester.organisation\n      - priority\n",
		"      - requester.organisation\n      - priority\n      - clinical.weight\n", 1)
	cfg = strings.Replace(cfg, "purpose: Joint controller's", "special_category_basis: UK GDPR Art 9(2)(h)\n    purpose: Joint controller's", 1)
	path := filepath.Join(t.TempDir(), "iceshub.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"check", "--config", path}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), `council contract cannot carry field "clinical.weight"`) || !strings.Contains(errOut.String(), path+":") {
		t.Fatalf("check exited %d: %s", code, errOut.String())
	}
}
