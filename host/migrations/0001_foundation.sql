-- One schema for SQLite and PostgreSQL: only portable types (BIGINT, TEXT) are used.
-- Foundation schema. Every table is keyed by shop_id first so data can be sharded by shop.
-- Times are unix milliseconds (BIGINT); money is integer minor units; JSON is stored as TEXT.

CREATE TABLE shops (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    publishable_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    currency TEXT NOT NULL,
    timezone TEXT NOT NULL,
    locale TEXT NOT NULL DEFAULT 'en',
    consent_required BIGINT NOT NULL DEFAULT 0,
    honor_dnt BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE customers (
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    id BIGINT NOT NULL,
    external_id TEXT,
    email TEXT,
    phone TEXT,
    first_name TEXT,
    last_name TEXT,
    birthday TEXT,
    marketing_consent BIGINT NOT NULL DEFAULT 0,
    traits TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    order_count BIGINT NOT NULL DEFAULT 0,
    total_spent BIGINT NOT NULL DEFAULT 0,
    first_order_at BIGINT,
    last_order_at BIGINT,
    merged_into BIGINT,
    PRIMARY KEY (shop_id, id)
);
CREATE UNIQUE INDEX customers_external_id ON customers (shop_id, external_id);
CREATE INDEX customers_email ON customers (shop_id, email);

CREATE TABLE identities (
    shop_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, kind, value)
);
CREATE INDEX identities_customer ON identities (shop_id, customer_id);

CREATE TABLE events (
    shop_id BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    anonymous_id TEXT,
    customer_id BIGINT,
    url TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (shop_id, event_id)
);
CREATE INDEX events_customer ON events (shop_id, customer_id, occurred_at);
CREATE INDEX events_anonymous ON events (shop_id, anonymous_id);

CREATE TABLE products (
    shop_id BIGINT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    price BIGINT NOT NULL,
    currency TEXT NOT NULL,
    category TEXT,
    url TEXT,
    image_url TEXT,
    available BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);

CREATE TABLE orders (
    shop_id BIGINT NOT NULL,
    id TEXT NOT NULL,
    customer_id BIGINT,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    discount BIGINT NOT NULL DEFAULT 0,
    shipping BIGINT NOT NULL DEFAULT 0,
    tax BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL,
    refunded BIGINT NOT NULL DEFAULT 0,
    coupon_codes TEXT NOT NULL DEFAULT '[]',
    placed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX orders_customer ON orders (shop_id, customer_id, placed_at);

CREATE TABLE order_lines (
    shop_id BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    product_id TEXT,
    sku TEXT,
    title TEXT NOT NULL,
    category TEXT,
    quantity BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    PRIMARY KEY (shop_id, order_id, line_no)
);
CREATE INDEX order_lines_product ON order_lines (shop_id, product_id);

CREATE TABLE refunds (
    shop_id BIGINT NOT NULL,
    id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount BIGINT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
