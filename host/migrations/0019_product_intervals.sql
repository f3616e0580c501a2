-- How long a product lasts: the median gap between one customer's purchases of it,
-- learned nightly from the shop's orders (or its category's, `from_category` = 1). The
-- order.placed trigger carries the intervals of the order's products to journeys.
CREATE TABLE product_intervals (
    shop_id BIGINT NOT NULL,
    product_id TEXT NOT NULL,
    days BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    from_category BIGINT NOT NULL,
    learned_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, product_id)
);
