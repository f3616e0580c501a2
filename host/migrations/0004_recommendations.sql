-- Recommendation models: the blob a recommender plugin install returned from its last
-- training run, kept per (shop, install) so that serving never rebuilds it.

CREATE TABLE recommendation_models (
    shop_id BIGINT NOT NULL,
    -- The plugin install's name.
    plugin TEXT NOT NULL,
    -- The model, hex-encoded (portable across both backends).
    model_hex TEXT NOT NULL,
    built_at BIGINT NOT NULL,
    -- Orders handed to the plugin in the run that built it.
    orders_seen BIGINT NOT NULL,
    PRIMARY KEY (shop_id, plugin)
);
