-- The last offline evaluation of each recommender install (`patron recs evaluate`,
-- host/src/plugins/recommendation_evaluation.rs): its report as JSON, shown on the
-- console's recommendations page. A new run replaces it.
CREATE TABLE recommendation_evaluations (
    shop_id BIGINT NOT NULL,
    plugin TEXT NOT NULL,
    evaluated_at BIGINT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (shop_id, plugin)
);
