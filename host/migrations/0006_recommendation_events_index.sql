-- The recommendation report reads a shop's impressions and clicks over a period; a
-- partial index keeps that off every other event's insert path.
CREATE INDEX events_recommendations ON events (shop_id, occurred_at, event_id)
    WHERE kind IN ('recommendation_impression', 'recommendation_click');
