-- Loyalty (points ledger, balances, members), coupons, tags, segment membership history,
-- and the durable job table the scheduler leases from.

CREATE TABLE points_ledger (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    delta BIGINT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    order_id TEXT,
    source TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE UNIQUE INDEX points_ledger_idempotency ON points_ledger (shop_id, idempotency_key);
CREATE INDEX points_ledger_customer ON points_ledger (shop_id, customer_id, created_at);
CREATE INDEX points_ledger_order ON points_ledger (shop_id, order_id);

-- The running sum of each customer's ledger, kept in the same transaction as every
-- ledger row so that a conditional UPDATE can refuse an overspend atomically.
CREATE TABLE points_balances (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    balance BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id)
);

CREATE TABLE members (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    tier TEXT NOT NULL,
    tier_since BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id)
);

CREATE TABLE coupons (
    shop_id BIGINT NOT NULL,
    code TEXT NOT NULL,
    customer_id BIGINT,
    discount_kind TEXT NOT NULL,
    discount_value BIGINT NOT NULL,
    currency TEXT NOT NULL,
    minimum_spend BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    description TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, code)
);
CREATE INDEX coupons_customer ON coupons (shop_id, customer_id);

CREATE TABLE coupon_redemptions (
    shop_id BIGINT NOT NULL,
    code TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    redeemed_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, code, customer_id)
);

CREATE TABLE customer_tags (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id, tag)
);
CREATE INDEX customer_tags_tag ON customer_tags (shop_id, tag);

CREATE TABLE segment_memberships (
    shop_id BIGINT NOT NULL,
    segment TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    left_at BIGINT,
    PRIMARY KEY (shop_id, segment, customer_id, joined_at)
);
CREATE INDEX segment_memberships_customer ON segment_memberships (shop_id, customer_id, left_at);
CREATE INDEX segment_memberships_current ON segment_memberships (shop_id, segment, left_at);

CREATE TABLE jobs (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    dedup_key TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE UNIQUE INDEX jobs_dedup ON jobs (shop_id, dedup_key);
CREATE INDEX jobs_due ON jobs (status, run_at);
