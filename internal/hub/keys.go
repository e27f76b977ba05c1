package hub

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// LoadSubjectKey returns the key of the disclosure record's subjects, the
// same way for serve and audit: from the environment (subject.EnvKey), else
// from the data directory's subject.key, kept apart from the database. When
// neither holds one and create is true (serve) it generates the key file and
// logs that it did, never the key; otherwise it is an error.
func LoadSubjectKey(dataDir string, create bool, logger *slog.Logger) (subject.Key, error) {
	k, generated, err := subject.Load(os.Getenv(subject.EnvKey), dataDir, create)
	if err != nil {
		return subject.Key{}, err
	}
	if generated {
		logger.Warn("generated a new subject key for the disclosure record; keep it with the data directory's backups, apart from the database",
			"path", filepath.Join(dataDir, subject.FileName), "env", subject.EnvKey)
	}
	return k, nil
}

// DataKeyFile is where the data keys are kept: store.data_key_file, else
// data.key in the data directory (apart from the database file).
func DataKeyFile(cfg *config.Config) string { return dataKeyFile(cfg.Store) }

func dataKeyFile(st config.Store) string {
	if st.DataKeyFile != "" {
		return st.DataKeyFile
	}
	return filepath.Join(st.DataDir, crypt.FileName)
}

// LoadDataKeys returns the keys that seal stored payloads, from the
// environment (crypt.EnvKey) or the key file; when neither holds one and
// create is true it generates the file and logs that it did, never the key.
func LoadDataKeys(cfg *config.Config, create bool, logger *slog.Logger) (*crypt.Keyring, error) {
	path := DataKeyFile(cfg)
	k, generated, err := crypt.Load(os.Getenv(crypt.EnvKey), path, create)
	if err != nil {
		return nil, err
	}
	if generated {
		logger.Warn("generated a new data key to encrypt stored messages; keep it with the data directory's backups, apart from the database",
			"path", path, "env", crypt.EnvKey)
	}
	return k, nil
}

// OpenWithSubjectKey opens the existing store st names with the subject key
// serve uses (never making a new one), for the commands that read or write
// what is recorded about a person.
func OpenWithSubjectKey(st config.Store, stderr io.Writer) (store.Engine, subject.Key, error) {
	key, err := LoadSubjectKey(st.DataDir, false, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return nil, subject.Key{}, err
	}
	s, err := OpenExisting(st, key.Bytes())
	if err != nil {
		return nil, subject.Key{}, err
	}
	return s, key, nil
}
