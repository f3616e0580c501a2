-- Whose turn it is: a shop's oldest due job is found by one index seek per shop, so the
-- scheduler can give other shops a turn while one shop has a long backlog.
CREATE INDEX jobs_shop_due ON jobs (shop_id, status, run_at);
