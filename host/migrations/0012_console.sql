-- The merchant console (host/src/console/): its users per shop, their server-side
-- sessions, and the audit log of changes made through it.

-- A person who signs in to one shop's console. The password is an argon2id PHC string.
-- After 5 wrong passwords in a row, sign-ins are refused until throttled_until (unix ms).
CREATE TABLE console_users (
    shop_id BIGINT NOT NULL REFERENCES shops(id),
    id BIGINT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    throttled_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, id)
);
CREATE UNIQUE INDEX console_users_email ON console_users (shop_id, email);
-- Sign-in looks an email up before it knows the shop.
CREATE INDEX console_users_sign_in ON console_users (email);

-- A signed-in browser. The cookie carries the shop id and a random token; only the
-- token's SHA-256 is stored.
CREATE TABLE console_sessions (
    shop_id BIGINT NOT NULL,
    token_hash TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (shop_id, token_hash)
);
CREATE INDEX console_sessions_user ON console_sessions (shop_id, user_id);

-- Who changed what through the console, and when.
CREATE TABLE console_audit (
    shop_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    user_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (shop_id, id)
);
CREATE INDEX console_audit_time ON console_audit (shop_id, at);
