-- +goose Up
-- The operators' console (internal/console): operator accounts, and the
-- operator record, a hash chain (store.OperatorAction.Digest) kept one
-- line with several writers as the disclosure record is: a writer locks
-- operator_record_head (the last id given out), takes the next id and
-- moves it on. at is text as store.Timestamp writes it: the hash covers it.
CREATE TABLE operators (
	name            TEXT PRIMARY KEY,
	role            TEXT NOT NULL,
	password_hash   TEXT NOT NULL,
	disabled        BOOLEAN NOT NULL DEFAULT false,
	created_at      TEXT NOT NULL,
	failed_sign_ins INTEGER NOT NULL DEFAULT 0,
	last_failed_at  TEXT NOT NULL DEFAULT ''
);
CREATE TABLE operator_record (
	id        BIGINT PRIMARY KEY,
	at        TEXT NOT NULL,
	operator  TEXT NOT NULL,
	action    TEXT NOT NULL,
	target    TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE TABLE operator_record_head (
	last_id BIGINT NOT NULL,
	hash    TEXT NOT NULL
);
INSERT INTO operator_record_head (last_id, hash) VALUES (0, '');

-- +goose Down
DROP TABLE operator_record_head, operator_record, operators;
