-- Which enabled automation install listens to which trigger (an event kind such as
-- `add_to_cart`, or a host trigger such as `order.placed` or `segment.entered:vip`),
-- rebuilt from the installs' manifests whenever an install changes. A write that
-- causes a trigger reads it in its own transaction to queue one `automation.trigger`
-- job per listening install; the event ingest path reads a cached copy, so events no
-- install listens to cost nothing.
CREATE TABLE automation_listeners (
    shop_id BIGINT NOT NULL,
    trigger_name TEXT NOT NULL,
    plugin TEXT NOT NULL,
    PRIMARY KEY (shop_id, trigger_name, plugin)
);
