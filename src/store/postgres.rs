//! [`PostgresStore`]: users and refresh-token families in PostgreSQL, through
//! sqlx.
//!
//! Two tables, `authkit_users` and `authkit_refresh_families`, are created by
//! the embedded migrations in `migrations/postgres` ([`PostgresStore::migrate`]).
//! Every write is a single statement; [`RefreshStore::rotate`] is one
//! conditional `UPDATE`, so under READ COMMITTED concurrent rotations of a
//! family queue on its row lock and at most one of them matches the expected
//! hash.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{
    Family, NewUser, RefreshStore, Rotation, SecretHash, StoreError, UnixMillis, User, UserStore,
    VerificationCode, email_key,
};
use crate::time::now_millis;

/// How long a call waits for a pooled connection (default of [`PostgresStore::connect`]).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pool size (default of [`PostgresStore::connect`]).
const MAX_CONNECTIONS: u32 = 16;

const USER_COLUMNS: &str = "id, email, name, password_hash, email_verified, disabled, created_at";
const FAMILY_COLUMNS: &str =
    "id, user_id, current_hash, rotated_at, created_at, expires_at, revoked";

/// A [`UserStore`] and [`RefreshStore`] over a PostgreSQL database.
///
/// Cloning is cheap: clones share one connection pool. Call
/// [`PostgresStore::migrate`] once before use to create the tables.
///
/// ```no_run
/// # async fn demo() -> Result<(), axum_authkit::store::StoreError> {
/// use axum_authkit::store::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://app@localhost/app").await?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://user:pass@host/db`) with a pool of
    /// at most 16 connections and a 3 s acquire timeout.
    ///
    /// Fails with [`StoreError::Unavailable`] when the URL is invalid or the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::connect_with(options, Self::pool_options()).await
    }

    /// Connects with explicit connection and pool options.
    pub async fn connect_with(
        options: PgConnectOptions,
        pool: PgPoolOptions,
    ) -> Result<Self, StoreError> {
        let pool = pool
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(Self { pool })
    }

    /// Connects like [`PostgresStore::connect`], but keeps everything in
    /// `schema`: the schema is created if missing and every pooled connection
    /// gets `search_path = schema`, so the tables and sqlx's
    /// `_sqlx_migrations` live there. Meant for isolating tests (one schema
    /// each, dropped with [`PostgresStore::drop_schema`]) or apps.
    ///
    /// `schema` must be 1 to 63 characters of `[a-z0-9_]` and must not start
    /// with `pg_`; otherwise this fails with [`StoreError::Unavailable`].
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let schema = checked_schema(schema)?;
        let options = PgConnectOptions::from_str(url)
            .map_err(StoreError::unavailable)?
            .options([("search_path", schema)]);
        let store = Self::connect_with(options, Self::pool_options()).await?;
        match sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&store.pool)
            .await
        {
            Ok(_) => Ok(store),
            // Two concurrent `CREATE SCHEMA IF NOT EXISTS` can collide on the
            // catalog's unique index: the schema exists either way.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(store),
            Err(err) => Err(StoreError::unavailable(err)),
        }
    }

    /// Drops `schema` and everything in it (`DROP SCHEMA IF EXISTS ... CASCADE`);
    /// the clean-up for [`PostgresStore::connect_in_schema`].
    ///
    /// `schema` is validated as there.
    pub async fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        let schema = checked_schema(schema)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Wraps an existing pool as is.
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the tables (embedded `migrations/postgres`).
    ///
    /// Safe to call on every start, also from several processes at once (sqlx
    /// takes an advisory lock). Migrations the app applied to the same schema
    /// with its own sqlx migrator are ignored, not reported missing; the app's
    /// migrator needs `set_ignore_missing(true)` in turn.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = sqlx::migrate!("migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::unavailable)
    }

    fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
    }
}

/// Accepts a schema name that needs no quoting beyond `"..."`: 1 to 63
/// characters of `[a-z0-9_]`, not `pg_`-prefixed (reserved by PostgreSQL).
fn checked_schema(schema: &str) -> Result<&str, StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with("pg_")
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(schema)
    } else {
        Err(StoreError::unavailable(format!(
            "invalid schema name {schema:?}: expected 1-63 of [a-z0-9_], not pg_*"
        )))
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    email_verified: bool,
    disabled: bool,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            email_verified: row.email_verified,
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    code_hash: Option<Vec<u8>>,
    code_expires_at: Option<i64>,
    code_attempts: Option<i64>,
}

impl CodeRow {
    fn into_code(self) -> Result<Option<VerificationCode>, StoreError> {
        match (self.code_hash, self.code_expires_at, self.code_attempts) {
            (None, None, None) => Ok(None),
            (Some(hash), Some(expires_at), Some(attempts)) => Ok(Some(VerificationCode {
                hash: to_hash(hash)?,
                expires_at,
                attempts: to_attempts(attempts)?,
            })),
            _ => Err(StoreError::unavailable(
                "corrupt verification code: columns partly NULL",
            )),
        }
    }
}

#[derive(sqlx::FromRow)]
struct FamilyRow {
    id: String,
    user_id: String,
    current_hash: Vec<u8>,
    rotated_at: i64,
    created_at: i64,
    expires_at: i64,
    revoked: bool,
}

impl TryFrom<FamilyRow> for Family {
    type Error = StoreError;

    fn try_from(row: FamilyRow) -> Result<Self, StoreError> {
        Ok(Family {
            id: row.id,
            user_id: row.user_id,
            current_hash: to_hash(row.current_hash)?,
            rotated_at: row.rotated_at,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked: row.revoked,
        })
    }
}

fn to_hash(bytes: Vec<u8>) -> Result<SecretHash, StoreError> {
    SecretHash::try_from(bytes).map_err(|bytes| {
        StoreError::unavailable(format!(
            "corrupt stored hash: {} bytes, expected 32",
            bytes.len()
        ))
    })
}

fn to_attempts(attempts: i64) -> Result<u32, StoreError> {
    u32::try_from(attempts)
        .map_err(|_| StoreError::unavailable(format!("corrupt attempt count: {attempts}")))
}

/// A unique violation becomes [`StoreError::Conflict`], anything else
/// [`StoreError::Unavailable`].
fn conflict_or_unavailable(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::unavailable(err),
    }
}

fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email_verified: false,
            disabled: false,
            created_at: now_millis(),
            email: new.email,
            name: new.name,
            password_hash: new.password_hash,
        };
        sqlx::query(
            "INSERT INTO authkit_users \
             (id, email, email_key, name, password_hash, email_verified, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, FALSE, FALSE, $6)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(email_key(&user.email))
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|err| conflict_or_unavailable(err, "email"))?;
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM authkit_users WHERE email_key = $1"
        ))
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(row.map(User::from))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM authkit_users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(row.map(User::from))
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE authkit_users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }

    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE authkit_users SET email_verified = TRUE, \
             code_hash = NULL, code_expires_at = NULL, code_attempts = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }

    async fn set_verification_code(
        &self,
        id: &str,
        code: &VerificationCode,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE authkit_users SET code_hash = $1, code_expires_at = $2, code_attempts = $3 \
             WHERE id = $4",
        )
        .bind(&code.hash[..])
        .bind(code.expires_at)
        .bind(i64::from(code.attempts))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }

    async fn verification_code(&self, id: &str) -> Result<Option<VerificationCode>, StoreError> {
        let row: Option<CodeRow> = sqlx::query_as(
            "SELECT code_hash, code_expires_at, code_attempts FROM authkit_users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        match row {
            Some(row) => row.into_code(),
            None => Ok(None),
        }
    }

    async fn count_verification_attempt(&self, id: &str) -> Result<u32, StoreError> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE authkit_users SET code_attempts = code_attempts + 1 \
             WHERE id = $1 AND code_hash IS NOT NULL RETURNING code_attempts",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        to_attempts(attempts.ok_or(StoreError::NotFound)?)
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE authkit_users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }
}

#[async_trait]
impl RefreshStore for PostgresStore {
    async fn create_family(&self, family: &Family) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO authkit_refresh_families ({FAMILY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&family.id)
        .bind(&family.user_id)
        .bind(&family.current_hash[..])
        .bind(family.rotated_at)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.revoked)
        .execute(&self.pool)
        .await
        .map_err(|err| conflict_or_unavailable(err, "family"))?;
        Ok(())
    }

    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError> {
        let row: Option<FamilyRow> = sqlx::query_as(&format!(
            "SELECT {FAMILY_COLUMNS} FROM authkit_refresh_families WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        row.map(Family::try_from).transpose()
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE authkit_refresh_families \
             SET current_hash = $1, rotated_at = $2, expires_at = $3 \
             WHERE id = $4 AND current_hash = $5 AND NOT revoked",
        )
        .bind(&rotation.next[..])
        .bind(rotation.rotated_at)
        .bind(rotation.expires_at)
        .bind(rotation.family_id)
        .bind(&rotation.expected[..])
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE authkit_refresh_families SET revoked = TRUE WHERE id = $1 AND NOT revoked",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_families(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "UPDATE authkit_refresh_families SET revoked = TRUE \
             WHERE user_id = $1 AND NOT revoked RETURNING id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::unavailable)
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM authkit_refresh_families WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(done.rows_affected())
    }
}
