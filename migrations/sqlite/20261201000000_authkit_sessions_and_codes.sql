-- axum-authkit 0.2: sessions with their metadata, one-time codes by purpose,
-- shared rate-limit counters, the deny list of ended sessions, and a marker
-- for the e-mail key format. Upgrades a database made by the first migration.

ALTER TABLE authkit_refresh_families RENAME TO authkit_sessions;
ALTER TABLE authkit_sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE authkit_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE authkit_sessions ADD COLUMN ip TEXT;
UPDATE authkit_sessions SET last_used_at = MAX(created_at, rotated_at);
DROP INDEX authkit_refresh_families_user_id;
DROP INDEX authkit_refresh_families_expires_at;
CREATE INDEX authkit_sessions_user_id ON authkit_sessions (user_id);
CREATE INDEX authkit_sessions_expires_at ON authkit_sessions (expires_at);

CREATE TABLE authkit_codes (
    user_id    TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL CHECK (attempts >= 0),
    new_email  TEXT,
    PRIMARY KEY (user_id, purpose)
);

-- Codes pending in the old columns are dropped: they live 15 minutes, and
-- the hash now binds the purpose. Users ask for a new one.

-- SQLite cannot drop columns that a CHECK names: rebuild the users table.
CREATE TABLE authkit_users_new (
    id             TEXT    NOT NULL PRIMARY KEY,
    email          TEXT    NOT NULL,
    email_key      TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     INTEGER NOT NULL
);
INSERT INTO authkit_users_new
    SELECT id, email, email_key, name, password_hash, email_verified, disabled, created_at
    FROM authkit_users;
DROP TABLE authkit_users;
ALTER TABLE authkit_users_new RENAME TO authkit_users;
CREATE INDEX authkit_users_unverified ON authkit_users (created_at) WHERE email_verified = 0;

CREATE TABLE authkit_rate_limits (
    key         TEXT    NOT NULL PRIMARY KEY,
    count       INTEGER NOT NULL,
    window_ends INTEGER NOT NULL
);
CREATE INDEX authkit_rate_limits_window_ends ON authkit_rate_limits (window_ends);

CREATE TABLE authkit_revoked_sessions (
    id    TEXT    NOT NULL PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE INDEX authkit_revoked_sessions_until ON authkit_revoked_sessions (until);

-- Version 1 keys were trim + lower-case; version 2 adds IDNA domains. The
-- store re-keys older rows at start-up and raises this number.
CREATE TABLE authkit_meta (
    name  TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO authkit_meta (name, value) VALUES ('email_key_version', 1);
