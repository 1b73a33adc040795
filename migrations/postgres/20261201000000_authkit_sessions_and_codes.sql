-- axum-authkit 0.2: sessions with their metadata, one-time codes by purpose,
-- shared rate-limit counters, the deny list of ended sessions, and a marker
-- for the e-mail key format. Upgrades a database made by the first migration.

ALTER TABLE authkit_refresh_families RENAME TO authkit_sessions;
ALTER TABLE authkit_sessions ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authkit_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE authkit_sessions ADD COLUMN ip TEXT;
UPDATE authkit_sessions SET last_used_at = GREATEST(created_at, rotated_at);
ALTER INDEX authkit_refresh_families_user_id RENAME TO authkit_sessions_user_id;
ALTER INDEX authkit_refresh_families_expires_at RENAME TO authkit_sessions_expires_at;

CREATE TABLE authkit_codes (
    user_id    TEXT   NOT NULL,
    purpose    TEXT   NOT NULL,
    hash       BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL CHECK (attempts >= 0),
    new_email  TEXT,
    PRIMARY KEY (user_id, purpose)
);

-- Codes pending in the old columns are dropped: they live 15 minutes, and
-- the hash now binds the purpose. Users ask for a new one.

ALTER TABLE authkit_users DROP CONSTRAINT authkit_users_code_complete;
ALTER TABLE authkit_users DROP COLUMN code_hash;
ALTER TABLE authkit_users DROP COLUMN code_expires_at;
ALTER TABLE authkit_users DROP COLUMN code_attempts;
CREATE INDEX authkit_users_unverified ON authkit_users (created_at) WHERE NOT email_verified;

CREATE TABLE authkit_rate_limits (
    key         TEXT   NOT NULL PRIMARY KEY,
    count       BIGINT NOT NULL,
    window_ends BIGINT NOT NULL
);
CREATE INDEX authkit_rate_limits_window_ends ON authkit_rate_limits (window_ends);

CREATE TABLE authkit_revoked_sessions (
    id    TEXT   NOT NULL PRIMARY KEY,
    until BIGINT NOT NULL
);
CREATE INDEX authkit_revoked_sessions_until ON authkit_revoked_sessions (until);

-- Version 1 keys were trim + lower-case; version 2 adds IDNA domains. The
-- store re-keys older rows at start-up and raises this number.
CREATE TABLE authkit_meta (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO authkit_meta (name, value) VALUES ('email_key_version', 1);
