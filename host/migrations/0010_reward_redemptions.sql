-- Rewards redeemed, by the idempotency key the client sent: a retried redemption finds
-- its first coupon here instead of spending the points again.
CREATE TABLE reward_redemptions (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    coupon_code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id, idempotency_key)
);
