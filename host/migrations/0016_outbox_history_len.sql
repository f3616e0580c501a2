-- How many history entries each message has: the delivery worker writes a batch's
-- status changes with one UPDATE … RETURNING history_len and one multi-row INSERT into
-- outbox_history, instead of a MAX(seq) lookup per message.
ALTER TABLE outbox ADD COLUMN history_len BIGINT NOT NULL DEFAULT 0;
UPDATE outbox SET history_len = COALESCE(
    (SELECT MAX(h.seq) FROM outbox_history h WHERE h.shop_id = outbox.shop_id AND h.message_id = outbox.id), 0);
