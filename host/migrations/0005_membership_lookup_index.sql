-- Batch segmentation reads and updates a customer's current memberships from one source;
-- without this index PostgreSQL may plan those lookups on (shop, segment, left_at) and
-- scan whole segments per customer.
CREATE INDEX segment_memberships_customer_source ON segment_memberships (shop_id, customer_id, source, left_at);
