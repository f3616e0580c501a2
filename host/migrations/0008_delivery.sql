-- Delivery: the outbox drained through one contact policy to channels the shop configures.

-- Reserved keys of a message's data (journey, step, purpose) get their own columns so
-- reports group by them; the rest is the worker's lease and the message's outcome.
ALTER TABLE outbox ADD COLUMN journey TEXT;
ALTER TABLE outbox ADD COLUMN step TEXT;
ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'marketing';
ALTER TABLE outbox ADD COLUMN reason TEXT;
ALTER TABLE outbox ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until BIGINT;
ALTER TABLE outbox ADD COLUMN sent_at BIGINT;
ALTER TABLE outbox ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox (shop_id, customer_id, channel, sent_at);

-- Every status a message went through, oldest first.
CREATE TABLE outbox_history (
    shop_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (shop_id, message_id, seq)
);

-- A shop's channels by the name messages address (`email`, `sms`, …): kind `smtp` or
-- `webhook`, its settings as JSON. A webhook's signing secret, and the one it replaced
-- while that stays valid, are kept beside it.
CREATE TABLE delivery_channels (
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret TEXT,
    previous_secret TEXT,
    previous_secret_until BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, name)
);

-- A merchant's own version of a built-in template, per locale.
CREATE TABLE message_templates (
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    locale TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, name, locale)
);

-- The contact policy's per-shop settings as JSON (absent: the defaults).
CREATE TABLE delivery_settings (
    shop_id BIGINT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Customers who unsubscribed through a message's link.
CREATE TABLE unsubscribes (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    message_id BIGINT,
    at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id)
);

-- Clicks on tracked links in messages.
CREATE TABLE message_clicks (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    url TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX message_clicks_message ON message_clicks (shop_id, message_id);
