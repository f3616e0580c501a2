-- Indexes for the analytics read paths (host/src/analytics/): a period's orders, points
-- ledger rows, coupons and redemptions by time, and customers by first purchase.
--
-- Deliberately not covering: an orders index holding status and customer_id makes
-- SQLite's planner (without ANALYZE statistics) prefer it, as covering, to
-- orders_customer for per-customer lookups such as the stats recompute's
-- `o.customer_id = customers.id AND o.status IN (...)`, scanning every order of the
-- shop per customer.
CREATE INDEX orders_placed ON orders (shop_id, placed_at);
CREATE INDEX points_ledger_time ON points_ledger (shop_id, created_at);
CREATE INDEX coupons_created ON coupons (shop_id, created_at);
CREATE INDEX coupon_redemptions_time ON coupon_redemptions (shop_id, redeemed_at);
CREATE INDEX customers_first_order ON customers (shop_id, first_order_at);
