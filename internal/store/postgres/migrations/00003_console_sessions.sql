-- +goose Up
-- The console's sessions (store.ConsoleSession), kept here so that every
-- hub on this database knows them: a load balancer may send an operator's
-- requests to any hub, and a hub's restart signs nobody out. id is the
-- SHA-256 of the session cookie, never the cookie itself. started and
-- seen are Unix nanoseconds, so that an expiry is a comparison of numbers.
CREATE TABLE console_sessions (
	id       TEXT PRIMARY KEY,
	operator TEXT NOT NULL,
	role     TEXT NOT NULL,
	csrf     TEXT NOT NULL,
	started  BIGINT NOT NULL,
	seen     BIGINT NOT NULL,
	flash    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_operator ON console_sessions (operator);

-- +goose Down
DROP TABLE console_sessions;
