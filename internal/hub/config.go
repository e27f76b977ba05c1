package hub

import (
	"github.com/iceshub/iceshub/internal/config"
)

// LoadConfig loads path, or the built-in default when path is empty, and
// checks its routes against the partners' contracts.
func LoadConfig(path string) (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	if path == "" {
		cfg, err = config.Default()
	} else {
		cfg, err = config.Load(path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkContracts(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
