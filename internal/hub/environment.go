package hub

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
)

// minAdminTokenBytes is the shortest admin token the hub accepts: 32 bytes,
// as many as a random 256-bit key has (openssl rand -hex 32 gives 64).
const minAdminTokenBytes = 32

// AdminTokenFrom returns the admin token: override when not empty (tests,
// the demo), else the environment's ICESHUB_ADMIN_TOKEN.
func AdminTokenFrom(override string) string {
	if override != "" {
		return override
	}
	return os.Getenv(AdminTokenEnv)
}

// checkAdminToken refuses an admin token shorter than minAdminTokenBytes or
// with spaces around it (a bearer header's spaces are not part of it, so it
// could never match). Empty is fine: the admin API is then not served.
func checkAdminToken(token string) error {
	switch {
	case token == "":
		return nil
	case strings.TrimSpace(token) != token:
		return fmt.Errorf("%s has spaces or line breaks around the token: remove them", AdminTokenEnv)
	case len(token) < minAdminTokenBytes:
		return fmt.Errorf("%s holds %d bytes: the admin token must be at least %d (for example: openssl rand -hex 32)", AdminTokenEnv, len(token), minAdminTokenBytes)
	}
	return nil
}

// CheckEnvironment checks what serve reads from the environment and files
// besides the configuration: the partners' inbound secrets, the keys of
// pseudonymising routes, every token_env and the admin token. serve refuses
// to start and check fails on any problem, except that in insecure
// development mode a partner's unset token_env is returned as a warning
// (that partner is then called without any Authorization header).
func CheckEnvironment(cfg *config.Config, insecureDev bool, adminToken string) (warnings []string, err error) {
	var errs []error
	errs = append(errs, cfg.CheckSecrets())
	if terr := cfg.CheckTokens(); terr != nil {
		if insecureDev {
			for _, line := range strings.Split(terr.Error(), "\n") {
				warnings = append(warnings, "INSECURE DEVELOPMENT MODE: "+line+"; the hub calls this partner WITHOUT a bearer token")
			}
		} else {
			errs = append(errs, terr)
		}
	}
	errs = append(errs, checkAdminToken(adminToken))
	return warnings, errors.Join(errs...)
}
