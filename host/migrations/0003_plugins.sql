-- Installed plugins: every version a shop installed is kept (so upgrades roll back),
-- one install per (shop, plugin name) points at its active version.

CREATE TABLE plugin_versions (
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    world TEXT NOT NULL,
    manifest TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    -- The capabilities granted when this version was installed (a rollback restores them).
    grants TEXT NOT NULL,
    -- The component, hex-encoded (portable across both backends).
    wasm_hex TEXT NOT NULL,
    installed_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, name, version)
);

CREATE TABLE plugin_installs (
    shop_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    active_version TEXT NOT NULL,
    previous_version TEXT,
    -- enabled, disabled, or tripped (disabled by the circuit breaker)
    status TEXT NOT NULL,
    grants TEXT NOT NULL,
    config TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at BIGINT,
    installed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, name)
);

CREATE TABLE plugin_kv (
    shop_id BIGINT NOT NULL,
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value_hex TEXT NOT NULL,
    PRIMARY KEY (shop_id, plugin, key)
);

-- Messages plugins asked the host to send (journeys); a delivery worker drains it.
CREATE TABLE outbox (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    data TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
