-- Identity and privacy: merges recorded, consent kept on the server, data subject
-- requests audited, secret keys rotated with a grace period, raw events retained for a
-- limited time.

-- Every merge: `merged_id` now resolves to `survivor_id` (customers.merged_into is kept
-- flat, so one hop always reaches the survivor). One row per merged-away customer.
CREATE TABLE customer_merges (
    shop_id BIGINT NOT NULL,
    merged_id BIGINT NOT NULL,
    survivor_id BIGINT NOT NULL,
    merged_external_id TEXT,
    reason TEXT NOT NULL,
    moved TEXT NOT NULL DEFAULT '{}',
    merged_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, merged_id)
);
CREATE INDEX customer_merges_survivor ON customer_merges (shop_id, survivor_id, merged_at);

-- Consent as a log (who said what, where, under which text) and the current state per
-- subject: a customer (subject = its id) or an anonymous browser (subject = its id).
-- A NULL purpose in the log means "not stated by this record"; in the state, "never stated".
CREATE TABLE consent_log (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    tracking BIGINT,
    marketing BIGINT,
    source TEXT NOT NULL,
    text_version TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX consent_log_subject ON consent_log (shop_id, subject_kind, subject, at);

CREATE TABLE consent_state (
    shop_id BIGINT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    tracking BIGINT,
    marketing BIGINT,
    text_version TEXT,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, subject_kind, subject)
);

-- Each export or erasure of one person's data, kept after the person is gone.
CREATE TABLE privacy_requests (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}',
    at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX privacy_requests_customer ON privacy_requests (shop_id, customer_id, at);

-- Each nightly retention run and what it deleted.
CREATE TABLE retention_runs (
    shop_id BIGINT NOT NULL,
    ran_at BIGINT NOT NULL,
    cutoff BIGINT NOT NULL,
    events_deleted BIGINT NOT NULL,
    PRIMARY KEY (shop_id, ran_at)
);

-- Secret-key rotation: the previous key's hash keeps working until `previous_secret_until`.
ALTER TABLE shops ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE shops ADD COLUMN previous_secret_until BIGINT;
-- Whether customer tokens without an expiry (v1, keyed with the secret key) still verify.
ALTER TABLE shops ADD COLUMN v1_tokens BIGINT NOT NULL DEFAULT 1;
-- Raw behaviour events older than this many days are deleted nightly (13 months).
ALTER TABLE shops ADD COLUMN event_retention_days BIGINT NOT NULL DEFAULT 396;

-- Global Privacy Control and Do-Not-Track are honoured by default. Until now the flag was
-- off unless the merchant passed `--honor-dnt` at creation: off was never a choice made,
-- and GPC is a legally binding opt-out in several jurisdictions, so every shop turns it on.
-- A merchant who must ignore the signals says so explicitly (`--ignore-dnt`).
UPDATE shops SET honor_dnt = 1;
