-- Predictions: the model a predictor plugin install fitted (kept per shop and install,
-- like recommendation models), and each customer's latest predictions from it.

CREATE TABLE prediction_models (
    shop_id BIGINT NOT NULL,
    -- The plugin install's name.
    plugin TEXT NOT NULL,
    -- The model, hex-encoded (portable across both backends).
    model_hex TEXT NOT NULL,
    -- When the fit finished, and the time it was fitted as of (unix ms).
    fitted_at BIGINT NOT NULL,
    as_of BIGINT NOT NULL,
    -- Customers with a paid order handed to the fit.
    customers BIGINT NOT NULL,
    PRIMARY KEY (shop_id, plugin)
);

CREATE TABLE customer_predictions (
    shop_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    plugin TEXT NOT NULL,
    -- The time the predictions are as of (unix ms).
    predicted_at BIGINT NOT NULL,
    -- Probability the customer is still a customer, in [0, 1].
    p_alive DOUBLE PRECISION NOT NULL,
    -- Expected purchases in the next 30, 90 and 365 days.
    purchases_30 DOUBLE PRECISION NOT NULL,
    purchases_90 DOUBLE PRECISION NOT NULL,
    purchases_365 DOUBLE PRECISION NOT NULL,
    -- Expected value of a future order and the predicted lifetime value, in minor units.
    expected_order_value BIGINT NOT NULL,
    clv BIGINT NOT NULL,
    PRIMARY KEY (shop_id, customer_id, plugin)
);
