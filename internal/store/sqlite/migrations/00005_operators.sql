-- +goose Up
-- The operators' console (internal/console): operator accounts, and the
-- operator record, a hash chain (store.OperatorAction.Digest) whose last
-- id given out is kept in operator_record_tip, written with each entry,
-- so that a removed tail is found too.
CREATE TABLE IF NOT EXISTS operators (
	name            TEXT NOT NULL PRIMARY KEY,
	role            TEXT NOT NULL,
	password_hash   TEXT NOT NULL,
	disabled        INTEGER NOT NULL DEFAULT 0,
	created_at      TEXT NOT NULL,
	failed_sign_ins INTEGER NOT NULL DEFAULT 0,
	last_failed_at  TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS operator_record (
	id        INTEGER NOT NULL PRIMARY KEY,
	at        TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_record_tip (
	one     INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
	last_id INTEGER NOT NULL
);

-- +goose Down
DROP TABLE operator_record_tip;
DROP TABLE operator_record;
DROP TABLE operators;
