package hub

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/subject"
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
	errs = append(errs, checkSharedStore(cfg.Store))
	return warnings, errors.Join(errs...)
}

// checkSharedStore checks what hubs on PostgreSQL need from the
// environment: the database's URL, and the data keys, which every hub must
// hold alike (none is ever generated for them).
func checkSharedStore(st config.Store) error {
	if !IsShared(st) {
		return nil
	}
	var errs []error
	if os.Getenv(st.Postgres.URLEnv) == "" {
		errs = append(errs, fmt.Errorf("store.backend is postgres but %s (store.postgres.url_env) is not set: set it to the database's URL", st.Postgres.URLEnv))
	}
	if _, _, err := crypt.Load(os.Getenv(crypt.EnvKey), dataKeyFile(st), false); err != nil {
		errs = append(errs, fmt.Errorf("store.backend is postgres: every hub needs the same data keys, in %s or store.data_key_file: %w", crypt.EnvKey, err))
	}
	if _, _, err := subject.Load(os.Getenv(subject.EnvKey), st.DataDir, false); err != nil {
		errs = append(errs, fmt.Errorf("store.backend is postgres: every hub needs the same subject key, in %s or the data directory: %w", subject.EnvKey, err))
	}
	return errors.Join(errs...)
}
