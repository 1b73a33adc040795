-- axum-authkit: users (with their pending e-mail verification code) and
-- refresh-token families. Times are Unix milliseconds.

CREATE TABLE authkit_users (
    id              TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL,
    -- email_key(email): trimmed, lower-cased; the uniqueness and lookup key.
    email_key       TEXT    NOT NULL CONSTRAINT authkit_users_email_key_unique UNIQUE,
    name            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    -- Pending verification code: all three set, or all three NULL.
    code_hash       BYTEA   CHECK (octet_length(code_hash) = 32),
    code_expires_at BIGINT,
    code_attempts   BIGINT  CHECK (code_attempts >= 0),
    CONSTRAINT authkit_users_code_complete
        CHECK ((code_hash IS NULL) = (code_expires_at IS NULL)
           AND (code_hash IS NULL) = (code_attempts IS NULL))
);

CREATE TABLE authkit_refresh_families (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    current_hash BYTEA   NOT NULL CHECK (octet_length(current_hash) = 32),
    rotated_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX authkit_refresh_families_user_id ON authkit_refresh_families (user_id);
CREATE INDEX authkit_refresh_families_expires_at ON authkit_refresh_families (expires_at);
