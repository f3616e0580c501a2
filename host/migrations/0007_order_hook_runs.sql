-- Which loyalty plugin has acted on which change of an order. The job that runs an
-- order change's hooks may run more than once (the request that queued it died, or a
-- plugin call failed and is retried); a plugin whose actions are recorded here is not
-- called again for that change, so its points, coupons and messages apply once.
CREATE TABLE order_hook_runs (
    shop_id BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    change_key TEXT NOT NULL,
    plugin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, order_id, change_key, plugin)
);
