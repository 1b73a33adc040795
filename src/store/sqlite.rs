//! [`SqliteStore`]: users, codes and sessions in SQLite, through sqlx.
//!
//! One database file (or a private in-memory database) holds the tables of
//! the embedded migrations ([`SqliteStore::migrate`]). SQLite runs one
//! writer at a time, so each statement of the shared SQL (see `sql.rs`) is
//! atomic; concurrent writers queue on the busy timeout instead of failing,
//! and every call gives up at the store's deadline.
//!
//! The deny list of ended sessions is a table without a channel: instances
//! sharing the file poll it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::StoreError;

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pooled connections; SQLite runs one writer at a time anyway.
const MAX_CONNECTIONS: u32 = 8;
/// The longest any call may take, waits for a connection and the write lock
/// included.
const DEADLINE: Duration = Duration::from_secs(10);

/// A [`UserStore`](super::UserStore), [`SessionStore`](super::SessionStore)
/// and [`RateLimiter`](crate::limits::RateLimiter) over a SQLite database.
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
    deadline: Duration,
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
        // Turning a new file to WAL takes an exclusive lock that SQLite may
        // refuse at once ("database is locked") while a second pooled
        // connection opens: do it once, alone, before the pool opens.
        let first = options
            .clone()
            .busy_timeout(BUSY_TIMEOUT)
            .connect()
            .await
            .map_err(StoreError::unavailable)?;
        first.close().await.map_err(StoreError::unavailable)?;
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
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool as is (its connection settings are the caller's).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            deadline: DEADLINE,
        }
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

impl SqliteStore {
    /// SQLite has no channel: other instances poll the deny list.
    async fn announce(
        _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        _id: &str,
        _until: super::UnixMillis,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn listen(&self) -> Result<Option<super::Denials>, StoreError> {
        Ok(None)
    }
}

super::sql::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    "migrations/sqlite",
    close_late = false
);
