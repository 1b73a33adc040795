//! [`PostgresStore`]: users, codes and sessions in PostgreSQL, through sqlx.
//!
//! The tables come from the embedded migrations ([`PostgresStore::migrate`]).
//! The SQL is shared with SQLite (see `sql.rs`): every write is one statement
//! or one transaction; a rotation is one conditional `UPDATE`, so under READ
//! COMMITTED concurrent rotations of a session queue on its row lock and at
//! most one of them matches the expected hash.
//!
//! A stalled server or network cannot hang a request. Every call, the wait
//! for a pooled connection included, has one client-side deadline; a
//! connection whose call missed it is closed, not reused (its statement may
//! still be on the way). The connections of [`PostgresStore::connect`] also
//! ask the server for a `statement_timeout` and an
//! `idle_in_transaction_session_timeout` of the same length, so the server
//! too gives up on a statement, or a transaction whose client went silent,
//! and drops its locks.
//!
//! The deny list of ended sessions is the table `authkit_revoked_sessions`;
//! each write also sends a `NOTIFY` (with the commit) on a channel named
//! after the schema, which [`SessionStore::subscribe`](super::SessionStore::subscribe)
//! listens to on a dedicated connection (sqlx `PgListener`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;

use super::{DENIALS_BUFFER, Denials, StoreError, UnixMillis};

/// How long a call waits for a pooled connection (default of [`PostgresStore::connect`]).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Pool size (default of [`PostgresStore::connect`]).
const MAX_CONNECTIONS: u32 = 16;
/// The longest any call may take, the wait for a connection included; also
/// the server-side timeouts.
const DEADLINE: Duration = Duration::from_secs(5);

/// A [`UserStore`](super::UserStore), [`SessionStore`](super::SessionStore)
/// and [`RateLimiter`](crate::limits::RateLimiter) over a PostgreSQL database.
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
    deadline: Duration,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://user:pass@host/db`) with a pool of
    /// at most 16 connections, a 3 s acquire timeout, and a 5 s deadline on
    /// every call (sent to the server as `statement_timeout` and
    /// `idle_in_transaction_session_timeout` too).
    ///
    /// Fails with [`StoreError::Unavailable`] when the URL is invalid or the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_deadline(url, DEADLINE).await
    }

    /// Like [`PostgresStore::connect`] with `deadline` instead of 5 s, on the
    /// client and on the server.
    pub async fn connect_with_deadline(url: &str, deadline: Duration) -> Result<Self, StoreError> {
        let options = Self::options(url, deadline)?;
        let pool = within(deadline, Self::pool_options().connect_with(options)).await?;
        Ok(Self::from_pool(pool).with_deadline(deadline))
    }

    /// Connects with explicit connection and pool options (no server-side
    /// timeout is added to `options`).
    pub async fn connect_with(
        options: PgConnectOptions,
        pool: PgPoolOptions,
    ) -> Result<Self, StoreError> {
        let pool = within(DEADLINE, pool.connect_with(options)).await?;
        Ok(Self::from_pool(pool))
    }

    fn options(url: &str, deadline: Duration) -> Result<PgConnectOptions, StoreError> {
        let timeout = format!("{}ms", deadline.as_millis().max(1));
        Ok(PgConnectOptions::from_str(url)
            .map_err(StoreError::unavailable)?
            .options([
                ("statement_timeout", timeout.as_str()),
                ("idle_in_transaction_session_timeout", timeout.as_str()),
            ]))
    }

    /// Connects like [`PostgresStore::connect`], but keeps everything in
    /// `schema`: the schema is created if missing and every pooled connection
    /// gets `search_path = schema`, so the tables and sqlx's
    /// `_sqlx_migrations` live there. Meant for isolating tests (one schema
    /// each, dropped with [`PostgresStore::drop_schema`]) or apps.
    ///
    /// `schema` must be 1 to 63 characters of `[a-z0-9_]` and must not start
    /// with `pg_`; otherwise this fails with [`StoreError::Unavailable`].
    #[cfg(feature = "testing")]
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let schema = checked_schema(schema)?;
        let options = Self::options(url, DEADLINE)?.options([("search_path", schema)]);
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
    #[cfg(feature = "testing")]
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
        Self {
            pool,
            deadline: DEADLINE,
        }
    }

    fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
    }
}

async fn within<T>(
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    super::sql::within(deadline, fut, StoreError::unavailable).await
}

/// Accepts a schema name that needs no quoting beyond `"..."`: 1 to 63
/// characters of `[a-z0-9_]`, not `pg_`-prefixed (reserved by PostgreSQL).
#[cfg(feature = "testing")]
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

/// The revocation channel of the connection's schema: NOTIFY is
/// database-wide, and two apps (or tests) in two schemas must not hear each
/// other. Hashed, so it stays under the 63-byte channel limit.
const CHANNEL: &str = "'authkit_revoked_' || md5(coalesce(current_schema(), ''))";

/// How often a subscription checks its listening connection: a silently
/// dead connection ends the subscription within this (plus the deadline).
const LISTENER_PING: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Announces a denial; delivered when `tx` commits.
    async fn announce(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        id: &str,
        until: UnixMillis,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("SELECT pg_notify({CHANNEL}, $1)"))
            .bind(super::denial_message(id, until))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// `LISTEN` on a connection of its own, forwarded by a task that ends
    /// (closing the receiver) when the connection fails.
    async fn listen(&self) -> Result<Option<Denials>, StoreError> {
        let deadline = self.deadline;
        // A pool of one of its own: the listening connection must not take
        // a slot of the store's pool for good.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(deadline)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with((*self.pool.connect_options()).clone());
        let mut listener = within(deadline, PgListener::connect_with(&pool)).await?;
        // Not the automatic reconnection of `recv`: what was sent while it
        // was down would be lost silently. `try_recv` reports the loss, and
        // the reader reloads.
        listener.ignore_pool_close_event(true);
        listener.eager_reconnect(false);
        let channel: String = within(
            deadline,
            sqlx::query_scalar(&format!("SELECT {CHANNEL}")).fetch_one(&mut listener),
        )
        .await?;
        within(deadline, listener.listen(&channel)).await?;
        let (to, rx) = mpsc::channel(DENIALS_BUFFER);
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + LISTENER_PING;
            let mut ping = tokio::time::interval_at(start, LISTENER_PING);
            loop {
                tokio::select! {
                    // The reader went away.
                    () = to.closed() => return,
                    note = listener.try_recv() => {
                        // `Ok(None)`: the connection was lost.
                        let Ok(Some(note)) = note else { return };
                        // A full reader: end, so that it reloads.
                        if let Some(denial) = super::parse_denial(note.payload())
                            && to.try_send(denial).is_err()
                        {
                            return;
                        }
                    }
                    _ = ping.tick() => {
                        let alive = within(
                            deadline,
                            sqlx::query("SELECT 1").execute(&mut listener),
                        )
                        .await;
                        if alive.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Some(rx))
    }
}

super::sql::sql_store!(
    PostgresStore,
    sqlx::Postgres,
    "migrations/postgres",
    close_late = true
);
