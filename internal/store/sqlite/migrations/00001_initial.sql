-- +goose Up
-- The embedded store's tables as they were when its schema came under
-- versioned migrations. Every statement is IF NOT EXISTS: a database
-- written before then already has them, and this migration leaves it as
-- it is (the upgrades of such databases are 00002 to 00004). Each topic's
-- two tables are made when the topic is first used (EnsureTopics), not
-- here.
CREATE TABLE IF NOT EXISTS idempotency (
	key        TEXT NOT NULL PRIMARY KEY,
	response   BLOB NOT NULL,
	created_at TEXT NOT NULL
);
-- Delivery receipts, clustered by referral: referral ids are time-ordered,
-- so a new receipt lands beside the last ones written, where a table keyed
-- by the idempotency key alone (a hash) put every receipt on a page of its
-- own and kept a second index by referral (migrateReceipts).
CREATE TABLE IF NOT EXISTS receipts (
	referral_id       TEXT NOT NULL,
	idempotency_key   TEXT NOT NULL,
	recipient         TEXT NOT NULL,
	kind              TEXT NOT NULL,
	partner_reference TEXT NOT NULL,
	status_code       INTEGER NOT NULL,
	at                TEXT NOT NULL,
	PRIMARY KEY (referral_id, idempotency_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS disclosures (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	at             TEXT NOT NULL,
	referral_id    TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	recipient      TEXT NOT NULL,
	kind           TEXT NOT NULL,
	fields         TEXT NOT NULL,
	purpose        TEXT NOT NULL,
	lawful_basis   TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	detail         TEXT NOT NULL,
	-- The person, as a keyed hash of the NHS number (internal/subject).
	subject        TEXT NOT NULL DEFAULT '',
	-- The hash chain (disclosures.go): hash covers prev_hash and every
	-- other column of the entry.
	prev_hash      TEXT NOT NULL DEFAULT '',
	hash           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS disclosures_referral ON disclosures(referral_id);
-- Who the disclosure record names, once per referral: a subject access
-- request finds the person's referrals here, then their entries by
-- referral. An index of disclosures by subject wrote a page at a random
-- place for every entry (three to five per referral); this writes one per
-- referral and none for its later entries (migrateSubjectIndex).
CREATE TABLE IF NOT EXISTS disclosure_subjects (
	subject     TEXT NOT NULL,
	referral_id TEXT NOT NULL,
	PRIMARY KEY (subject, referral_id)
) WITHOUT ROWID;
-- A checkpoint stands for the entries up to upto_id once they are removed:
-- hash is the hash of entry upto_id, and the chain goes on from it.
CREATE TABLE IF NOT EXISTS disclosure_checkpoints (
	upto_id INTEGER NOT NULL PRIMARY KEY,
	hash    TEXT NOT NULL,
	at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          TEXT NOT NULL,
	referral_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	route       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	payload     BLOB
);
-- A referral fanned out twice after a crash is held once.
CREATE UNIQUE INDEX IF NOT EXISTS held_once ON held(referral_id, kind, route);
CREATE TABLE IF NOT EXISTS dead_letters (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	at              TEXT NOT NULL,
	recipient       TEXT NOT NULL,
	kind            TEXT NOT NULL,
	referral_id     TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	status_code     INTEGER NOT NULL,
	partner_answer  TEXT NOT NULL,
	error           TEXT NOT NULL,
	payload         BLOB
);
-- What a person decided about a dead letter (deadletters.go): at most one
-- decision each, and the dead letter itself is never changed or deleted.
CREATE TABLE IF NOT EXISTS dead_letter_resolutions (
	dead_letter_id INTEGER NOT NULL PRIMARY KEY REFERENCES dead_letters(id),
	action         TEXT NOT NULL,
	decided_by     TEXT NOT NULL,
	at             TEXT NOT NULL,
	reason         TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS referrals (
	referral_id        TEXT NOT NULL PRIMARY KEY,
	service_request_id TEXT NOT NULL,
	requester_ods      TEXT NOT NULL,
	council            TEXT NOT NULL DEFAULT '',
	order_reference    TEXT NOT NULL DEFAULT '',
	order_sent_to      TEXT NOT NULL DEFAULT '',
	task_id            TEXT NOT NULL DEFAULT '',
	status             TEXT NOT NULL,
	record             BLOB NOT NULL,
	created_at         TEXT NOT NULL,
	updated_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS referrals_service_request ON referrals(service_request_id);
CREATE INDEX IF NOT EXISTS referrals_order ON referrals(order_reference);
-- A council's case references: the case the hub opened for an order, a
-- safeguarding case, and complaint cases the council raised.
CREATE TABLE IF NOT EXISTS case_refs (
	council        TEXT NOT NULL,
	case_reference TEXT NOT NULL,
	referral_id    TEXT NOT NULL,
	purpose        TEXT NOT NULL,
	at             TEXT NOT NULL,
	PRIMARY KEY (council, case_reference)
);
CREATE INDEX IF NOT EXISTS case_refs_referral ON case_refs(referral_id);
CREATE INDEX IF NOT EXISTS case_refs_reference ON case_refs(case_reference);
-- Events refused at the edge (unknown reference, impossible transition,
-- not the sender's): kept for operators, never applied.
CREATE TABLE IF NOT EXISTS rejected_events (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	at            TEXT NOT NULL,
	sender        TEXT NOT NULL,
	kind          TEXT NOT NULL,
	sender_event  TEXT NOT NULL,
	referral_id   TEXT NOT NULL,
	reason        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS parked (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	partner         TEXT NOT NULL,
	lane            TEXT NOT NULL,
	urgent          INTEGER NOT NULL,
	kind            TEXT NOT NULL,
	referral_id     TEXT NOT NULL,
	idempotency_key TEXT NOT NULL UNIQUE,
	payload         BLOB NOT NULL,
	attempts        INTEGER NOT NULL,
	-- Unix milliseconds, so that they compare as numbers.
	next_at         INTEGER NOT NULL,
	first_failed_at INTEGER NOT NULL,
	last_error      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_lane ON parked(partner, lane, id);
-- Due copies in the order they are offered, urgent ones first: read as
-- ranges (DueParked), never sorted, however many are parked.
DROP INDEX IF EXISTS parked_due;
CREATE INDEX IF NOT EXISTS parked_due_by_urgency ON parked(partner, urgent, next_at, id);

CREATE TABLE IF NOT EXISTS replays (
	key      BLOB NOT NULL PRIMARY KEY,
	-- Unix milliseconds: the key is remembered until then.
	until_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replays_until ON replays(until_ms);

CREATE TABLE IF NOT EXISTS statistics (
	month    TEXT NOT NULL,
	council  TEXT NOT NULL,
	priority TEXT NOT NULL,
	setting  TEXT NOT NULL,
	class    TEXT NOT NULL,
	measure  TEXT NOT NULL,
	days     INTEGER NOT NULL,
	n        INTEGER NOT NULL,
	PRIMARY KEY (month, council, priority, setting, class, measure, days)
) WITHOUT ROWID;

-- What a person decided about a held message (held.go): at most one
-- decision each; the hold itself is never changed or deleted.
CREATE TABLE IF NOT EXISTS held_resolutions (
	held_id       INTEGER NOT NULL PRIMARY KEY REFERENCES held(id),
	action        TEXT NOT NULL,
	decided_by    TEXT NOT NULL,
	at            TEXT NOT NULL,
	reason        TEXT NOT NULL,
	recipient     TEXT NOT NULL,
	permission_by TEXT NOT NULL,
	permission_at TEXT NOT NULL,
	evidence      TEXT NOT NULL
);

-- +goose Down
-- The first migration is not undone: it would delete the store.
SELECT 1;
