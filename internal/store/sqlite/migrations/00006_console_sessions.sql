-- +goose Up
-- The console's sessions (store.ConsoleSession), kept in the store so that
-- a restart signs nobody out. id is the SHA-256 of the session cookie,
-- never the cookie itself. started and seen are Unix nanoseconds, so that
-- an expiry is a comparison of numbers.
CREATE TABLE IF NOT EXISTS console_sessions (
	id       TEXT NOT NULL PRIMARY KEY,
	operator TEXT NOT NULL,
	role     TEXT NOT NULL,
	csrf     TEXT NOT NULL,
	started  INTEGER NOT NULL,
	seen     INTEGER NOT NULL,
	flash    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS console_sessions_operator ON console_sessions (operator);

-- +goose Down
DROP TABLE console_sessions;
