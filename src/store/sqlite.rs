//! [`SqliteStore`]: users and refresh-token families in SQLite, through sqlx.
//!
//! One database file (or a private in-memory database) holds two tables,
//! `authkit_users` and `authkit_refresh_families`, created by the embedded
//! migrations in `migrations/sqlite` ([`SqliteStore::migrate`]). Every write
//! is a single statement, so SQLite's one-writer-at-a-time locking makes
//! [`RefreshStore::rotate`] an atomic compare-and-swap; concurrent writers
//! queue on the busy timeout instead of failing.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    Family, NewUser, RefreshStore, Rotation, SecretHash, StoreError, UnixMillis, User, UserStore,
    VerificationCode, email_key,
};
use crate::time::now_millis;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pooled connections; SQLite runs one writer at a time anyway.
const MAX_CONNECTIONS: u32 = 8;

const USER_COLUMNS: &str = "id, email, name, password_hash, email_verified, disabled, created_at";
const FAMILY_COLUMNS: &str =
    "id, user_id, current_hash, rotated_at, created_at, expires_at, revoked";

/// A [`UserStore`] and [`RefreshStore`] over a SQLite database.
///
/// Cloning is cheap: clones share one connection pool. Call
/// [`SqliteStore::migrate`] once before use to create the tables.
///
/// ```no_run
/// # async fn demo() -> Result<(), axum_authkit::store::StoreError> {
/// use axum_authkit::store::SqliteStore;
///
/// let store = SqliteStore::connect("sqlite://authkit.db?mode=rwc").await?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `url` (e.g. `sqlite://authkit.db?mode=rwc`),
    /// creating the file if it is missing.
    ///
    /// Connections use WAL journaling, a 5 s busy timeout and foreign keys.
    /// Fails with [`StoreError::Unavailable`] when the URL is invalid or the
    /// database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        Self::connect_with(options, Self::pool_options()).await
    }

    /// A fresh, private in-memory database, unique to this call.
    ///
    /// All pooled connections (and all clones of the store) share it; it
    /// disappears when the last clone is dropped. Handy for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(format!("file:authkit-{}", uuid::Uuid::new_v4()))
            .in_memory(true)
            .shared_cache(true);
        Self::connect_with(options, Self::pool_options()).await
    }

    /// Opens a pool with the given options.
    ///
    /// The busy timeout (5 s) and foreign-key enforcement are applied on top
    /// of `options`. For an in-memory database keep at least one connection
    /// open for the pool's whole life (`min_connections(1)`, no idle timeout,
    /// no max lifetime), as [`SqliteStore::in_memory`] does, or the data goes
    /// when the last connection closes.
    pub async fn connect_with(
        options: SqliteConnectOptions,
        pool: SqlitePoolOptions,
    ) -> Result<Self, StoreError> {
        let options = options.busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let pool = pool
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(Self { pool })
    }

    /// Wraps an existing pool as is (its connection settings are the caller's).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The underlying connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or upgrades the tables (embedded `migrations/sqlite`).
    ///
    /// Safe to call on every start. Migrations the app applied to the same
    /// database with its own sqlx migrator are ignored, not reported missing;
    /// the app's migrator needs `set_ignore_missing(true)` in turn.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = sqlx::migrate!("migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .map_err(StoreError::unavailable)
    }

    /// The pool settings of [`SqliteStore::connect`] and
    /// [`SqliteStore::in_memory`]: connections are never closed for being
    /// idle or old, which keeps an in-memory database alive.
    fn pool_options() -> SqlitePoolOptions {
        SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
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
impl UserStore for SqliteStore {
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
             VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
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
            "SELECT {USER_COLUMNS} FROM authkit_users WHERE email_key = ?"
        ))
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(row.map(User::from))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM authkit_users WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(row.map(User::from))
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE authkit_users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }

    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE authkit_users SET email_verified = 1, \
             code_hash = NULL, code_expires_at = NULL, code_attempts = NULL \
             WHERE id = ?",
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
            "UPDATE authkit_users SET code_hash = ?, code_expires_at = ?, code_attempts = ? \
             WHERE id = ?",
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
            "SELECT code_hash, code_expires_at, code_attempts FROM authkit_users WHERE id = ?",
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
             WHERE id = ? AND code_hash IS NOT NULL RETURNING code_attempts",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        to_attempts(attempts.ok_or(StoreError::NotFound)?)
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE authkit_users SET disabled = ? WHERE id = ?")
            .bind(disabled)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        found(done.rows_affected())
    }
}

#[async_trait]
impl RefreshStore for SqliteStore {
    async fn create_family(&self, family: &Family) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO authkit_refresh_families ({FAMILY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
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
            "SELECT {FAMILY_COLUMNS} FROM authkit_refresh_families WHERE id = ?"
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
             SET current_hash = ?, rotated_at = ?, expires_at = ? \
             WHERE id = ? AND current_hash = ? AND revoked = 0",
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
            "UPDATE authkit_refresh_families SET revoked = 1 WHERE id = ? AND revoked = 0",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_families(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "UPDATE authkit_refresh_families SET revoked = 1 \
             WHERE user_id = ? AND revoked = 0 RETURNING id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::unavailable)
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM authkit_refresh_families WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(done.rows_affected())
    }
}
