-- axum-authkit: users (with their pending e-mail verification code) and
-- refresh-token families. Times are Unix milliseconds.

CREATE TABLE authkit_users (
    id              TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL,
    -- email_key(email): trimmed, lower-cased; the uniqueness and lookup key.
    email_key       TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    email_verified  INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      INTEGER NOT NULL,
    -- Pending verification code: all three set, or all three NULL.
    code_hash       BLOB    CHECK (code_hash IS NULL OR length(code_hash) = 32),
    code_expires_at INTEGER,
    code_attempts   INTEGER CHECK (code_attempts IS NULL OR code_attempts >= 0),
    CHECK ((code_hash IS NULL) = (code_expires_at IS NULL)
       AND (code_hash IS NULL) = (code_attempts IS NULL))
);

CREATE TABLE authkit_refresh_families (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    current_hash BLOB    NOT NULL CHECK (length(current_hash) = 32),
    rotated_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);

CREATE INDEX authkit_refresh_families_user_id ON authkit_refresh_families (user_id);
CREATE INDEX authkit_refresh_families_expires_at ON authkit_refresh_families (expires_at);
