-- Indexes for the analytics read paths (host/src/analytics/): a period's purchases are
-- read from the index alone (placement time first, then what the figures need), and
-- the points ledger and coupon redemptions by time.
CREATE INDEX orders_analytics ON orders (shop_id, placed_at, status, currency, customer_id, total, refunded);
CREATE INDEX points_ledger_time ON points_ledger (shop_id, created_at, kind, delta);
CREATE INDEX coupons_created ON coupons (shop_id, created_at);
CREATE INDEX coupon_redemptions_time ON coupon_redemptions (shop_id, redeemed_at);
CREATE INDEX customers_first_order ON customers (shop_id, first_order_at);
