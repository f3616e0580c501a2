-- Rollups the console's figures read instead of every order (host/src/store/rollups.rs,
-- host/src/analytics/). All three are derived from `orders` and rewritten in the
-- transaction that changes what they are derived from; `rollups::rebuild` derives them
-- from scratch.
--
-- A purchase is an order whose status is paid or fulfilled; its net is total - refunded.

-- Per customer with at least one purchase: what `customers` keeps as order_count,
-- total_spent, first_order_at and last_order_at (any currency), and the count and net of
-- the purchases in the shop's currency. Written with the customer's stats.
CREATE TABLE customer_rollups (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    spent BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    purchases_cur BIGINT NOT NULL,
    net_cur BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id)
);
-- Lifetime value as of a time (customers whose last purchase is before it), RFM recency.
CREATE INDEX customer_rollups_last ON customer_rollups (shop_id, last_at, purchases_cur, net_cur);
-- Customers who had bought before a time (and maybe after it too).
CREATE INDEX customer_rollups_first ON customer_rollups (shop_id, first_at, last_at);
-- The median lifetime value, read in order.
CREATE INDEX customer_rollups_net ON customer_rollups (shop_id, net_cur) WHERE purchases_cur > 0;
-- The RFM grid in one pass, by frequency.
CREATE INDEX customer_rollups_frequency ON customer_rollups (shop_id, purchases, last_at, spent);

-- One row per purchase of a customer, linked to the times of that customer's previous
-- and next purchases (NULL: none) in (placed_at, order id) order, with running sums in
-- the shop's currency. Which customers were active, new, repeat buyers or churned in a
-- period, and what they had spent by a time, are then counts over the period's rows.
-- `month` is the UTC month index (year * 12 + month - 1) of placed_at, `cohort` that of
-- the customer's first purchase, `month_first` 1 on their first purchase of a month.
CREATE TABLE customer_purchases (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    placed_at BIGINT NOT NULL,
    order_id TEXT NOT NULL,
    prev_at BIGINT,
    next_at BIGINT,
    cur BIGINT NOT NULL,
    net_cur BIGINT NOT NULL,
    cum_cur BIGINT NOT NULL,
    cum_net_cur BIGINT NOT NULL,
    month BIGINT NOT NULL,
    cohort BIGINT NOT NULL,
    month_first BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id, placed_at, order_id)
);
-- A period's rows, and the running sums just before each customer's first purchase
-- since a time (lifetime values as of that time), read from the index alone.
CREATE INDEX customer_purchases_time
    ON customer_purchases (shop_id, placed_at, prev_at, next_at, cum_cur, cur, cum_net_cur, net_cur);
CREATE INDEX customer_purchases_months ON customer_purchases (shop_id, cohort, month, placed_at)
    WHERE month_first = 1;

-- Purchases and their net revenue per shop, UTC day (days since 1970-01-01) and currency,
-- guests' orders included. Kept by adding each order change's difference.
CREATE TABLE shop_days (
    shop_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    currency TEXT NOT NULL,
    purchases BIGINT NOT NULL,
    revenue BIGINT NOT NULL,
    PRIMARY KEY (shop_id, day, currency)
);

-- Shops whose rollups are still to be derived from their orders: every shop with orders
-- when this migration ran. `Db::connect` derives them (the month of a time is written
-- differently on each backend, so it is not done here) and deletes the row in the same
-- transaction.
CREATE TABLE rollup_backfills (
    shop_id BIGINT NOT NULL PRIMARY KEY
);
INSERT INTO rollup_backfills (shop_id) SELECT DISTINCT shop_id FROM orders;
