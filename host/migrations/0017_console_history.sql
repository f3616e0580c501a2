-- What the console's loyalty and segment pages read over time (host/src/analytics/).
--
-- Each move of a loyalty member between tiers, written in the transaction that sets the
-- tier (`store::members::set_tier`); `from_tier` is NULL for a member's first tier.
-- Members who held a tier before this table existed get one row for it, dated when
-- they reached it.
CREATE TABLE tier_changes (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    from_tier TEXT,
    to_tier TEXT NOT NULL
);
CREATE INDEX tier_changes_time ON tier_changes (shop_id, at);
CREATE INDEX tier_changes_customer ON tier_changes (shop_id, customer_id);
INSERT INTO tier_changes (shop_id, customer_id, at, from_tier, to_tier)
    SELECT shop_id, customer_id, tier_since, NULL, tier FROM members;

-- Reward redemptions of a period, and a segment's stints by when they began (when they
-- ended is segment_memberships_current).
CREATE INDEX reward_redemptions_time ON reward_redemptions (shop_id, created_at);
CREATE INDEX segment_memberships_joined ON segment_memberships (shop_id, segment, joined_at);
