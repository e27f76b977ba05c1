-- +goose Up
-- The PostgreSQL store: the tables of the embedded store's contract
-- (internal/store), kept by several hubs at once. Times the disclosure
-- chain hashes, and every time copied from an embedded store, are text as
-- store.Timestamp writes them, so that a copy keeps them exactly; the
-- times the engine compares (leases, due times) are timestamptz or
-- milliseconds.

-- Every topic's messages waiting to be handled, in one table. A message is
-- handed to one hub at a time under a lease (leased_by, lease_until), and
-- only the first message of its lane (the referral it is about) is ever
-- handed out, so copies about one referral keep their order across hubs.
-- A message handled is deleted: the table holds only what waits, so that
-- taking work stays cheap however much has passed through. Leases change
-- no indexed column: with room left on each page (fillfactor) the update
-- stays on its page.
CREATE TABLE messages (
	id          BIGSERIAL PRIMARY KEY,
	topic       TEXT NOT NULL,
	lane        TEXT NOT NULL,
	uuid        TEXT NOT NULL,
	payload     BYTEA NOT NULL,
	metadata    BYTEA NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
	leased_by   TEXT,
	lease_until TIMESTAMPTZ
) WITH (fillfactor = 70);
CREATE INDEX messages_waiting ON messages (topic, id);
CREATE INDEX messages_lane ON messages (topic, lane, id);
CREATE TABLE topics (
	name TEXT PRIMARY KEY
);

CREATE TABLE idempotency (
	key        TEXT PRIMARY KEY,
	response   BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE receipts (
	referral_id       TEXT NOT NULL,
	idempotency_key   TEXT NOT NULL,
	recipient         TEXT NOT NULL,
	kind              TEXT NOT NULL,
	partner_reference TEXT NOT NULL,
	status_code       INTEGER NOT NULL,
	at                TEXT NOT NULL,
	PRIMARY KEY (referral_id, idempotency_key)
);

CREATE TABLE referrals (
	referral_id        TEXT PRIMARY KEY,
	seq                BIGSERIAL,
	service_request_id TEXT NOT NULL,
	requester_ods      TEXT NOT NULL,
	council            TEXT NOT NULL DEFAULT '',
	order_reference    TEXT NOT NULL DEFAULT '',
	order_sent_to      TEXT NOT NULL DEFAULT '',
	task_id            TEXT NOT NULL DEFAULT '',
	status             TEXT NOT NULL,
	record             BYTEA NOT NULL,
	created_at         TEXT NOT NULL,
	updated_at         TEXT NOT NULL
);
CREATE INDEX referrals_service_request ON referrals (service_request_id, seq);
CREATE INDEX referrals_order ON referrals (order_reference);

CREATE TABLE case_refs (
	council        TEXT NOT NULL,
	case_reference TEXT NOT NULL,
	referral_id    TEXT NOT NULL,
	purpose        TEXT NOT NULL,
	at             TEXT NOT NULL,
	PRIMARY KEY (council, case_reference)
);
CREATE INDEX case_refs_referral ON case_refs (referral_id);
CREATE INDEX case_refs_reference ON case_refs (case_reference);

CREATE TABLE rejected_events (
	id           BIGSERIAL PRIMARY KEY,
	at           TEXT NOT NULL,
	sender       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	sender_event TEXT NOT NULL,
	referral_id  TEXT NOT NULL,
	reason       TEXT NOT NULL
);

-- The disclosure record (store.ChainEntry). A transaction that discloses
-- writes its entries to disclosures_pending, where no writer waits for
-- another; the hubs seal them into the chain in the order they find them
-- (disclosures.go), taking the next ids from disclosure_head, one row
-- locked by each sealing, so that the chain stays one line.
CREATE TABLE disclosures (
	id             BIGINT PRIMARY KEY,
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
	subject        TEXT NOT NULL DEFAULT '',
	prev_hash      TEXT NOT NULL,
	hash           TEXT NOT NULL
);
CREATE INDEX disclosures_referral ON disclosures (referral_id);
CREATE TABLE disclosures_pending (
	seq            BIGSERIAL PRIMARY KEY,
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
	subject        TEXT NOT NULL
);
CREATE INDEX disclosures_pending_referral ON disclosures_pending (referral_id);
CREATE TABLE disclosure_head (
	one     BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	last_id BIGINT NOT NULL,
	hash    TEXT NOT NULL
);
INSERT INTO disclosure_head (one, last_id, hash) VALUES (true, 0, '');
CREATE TABLE disclosure_subjects (
	subject     TEXT NOT NULL,
	referral_id TEXT NOT NULL,
	PRIMARY KEY (subject, referral_id)
);
CREATE TABLE disclosure_checkpoints (
	upto_id BIGINT PRIMARY KEY,
	hash    TEXT NOT NULL,
	at      TEXT NOT NULL
);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE held (
	id          BIGSERIAL PRIMARY KEY,
	at          TEXT NOT NULL,
	referral_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	route       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	payload     BYTEA,
	UNIQUE (referral_id, kind, route)
);
CREATE TABLE held_resolutions (
	held_id       BIGINT PRIMARY KEY REFERENCES held (id),
	action        TEXT NOT NULL,
	decided_by    TEXT NOT NULL,
	at            TEXT NOT NULL,
	reason        TEXT NOT NULL,
	recipient     TEXT NOT NULL,
	permission_by TEXT NOT NULL,
	permission_at TEXT NOT NULL,
	evidence      TEXT NOT NULL
);

CREATE TABLE dead_letters (
	id              BIGSERIAL PRIMARY KEY,
	at              TEXT NOT NULL,
	recipient       TEXT NOT NULL,
	kind            TEXT NOT NULL,
	referral_id     TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	status_code     INTEGER NOT NULL,
	partner_answer  BYTEA NOT NULL,
	error           TEXT NOT NULL,
	payload         BYTEA
);
CREATE TABLE dead_letter_resolutions (
	dead_letter_id BIGINT PRIMARY KEY REFERENCES dead_letters (id),
	action         TEXT NOT NULL,
	decided_by     TEXT NOT NULL,
	at             TEXT NOT NULL,
	reason         TEXT NOT NULL
);

-- Parked deliveries (store.Parked): claimed_by and claimed_until keep a
-- due copy to the one hub attempting it; a hub that dies lets it go when
-- the claim passes.
CREATE TABLE parked (
	id              BIGSERIAL PRIMARY KEY,
	partner         TEXT NOT NULL,
	lane            TEXT NOT NULL,
	urgent          BOOLEAN NOT NULL,
	kind            TEXT NOT NULL,
	referral_id     TEXT NOT NULL,
	idempotency_key TEXT NOT NULL UNIQUE,
	payload         BYTEA NOT NULL,
	attempts        INTEGER NOT NULL,
	next_at         BIGINT NOT NULL,
	first_failed_at BIGINT NOT NULL,
	last_error      TEXT NOT NULL,
	claimed_by      TEXT,
	claimed_until   TIMESTAMPTZ
);
CREATE INDEX parked_lane ON parked (partner, lane, id);
CREATE INDEX parked_due ON parked (partner, urgent, next_at, id);

CREATE TABLE replays (
	key      BYTEA PRIMARY KEY,
	until_ms BIGINT NOT NULL
);
CREATE INDEX replays_until ON replays (until_ms);

CREATE TABLE statistics (
	month    TEXT NOT NULL,
	council  TEXT NOT NULL,
	priority TEXT NOT NULL,
	setting  TEXT NOT NULL,
	class    TEXT NOT NULL,
	measure  TEXT NOT NULL,
	days     INTEGER NOT NULL,
	n        BIGINT NOT NULL,
	PRIMARY KEY (month, council, priority, setting, class, measure, days)
);
-- Counts added by the steps they count, folded into statistics by the
-- hubs: many intake transactions counting the same cell never wait for
-- each other's commit on its row. Statistics reads both.
CREATE TABLE statistics_pending (
	month    TEXT NOT NULL,
	council  TEXT NOT NULL,
	priority TEXT NOT NULL,
	setting  TEXT NOT NULL,
	class    TEXT NOT NULL,
	measure  TEXT NOT NULL,
	days     INTEGER NOT NULL,
	n        BIGINT NOT NULL
);

-- +goose Down
DROP TABLE statistics_pending, disclosures_pending, statistics, replays, parked, dead_letter_resolutions, dead_letters, held_resolutions, held, meta,
	disclosure_checkpoints, disclosure_subjects, disclosure_head, disclosures, rejected_events, case_refs, referrals,
	receipts, idempotency, topics, messages;
