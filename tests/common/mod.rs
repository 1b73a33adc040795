//! Shared helpers of the integration tests: service discovery (PostgreSQL,
//! Redis), per-test isolation (a schema, a key prefix, a temp file) and
//! unique names.
//!
//! A service that cannot be reached makes its tests print one `SKIP` line and
//! return, unless `AUTHKIT_REQUIRE_SERVICES=1` is set: then they fail.

#![allow(dead_code)]

#[cfg(feature = "redis")]
pub mod cluster;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(any(feature = "postgres", feature = "redis"))]
use std::time::Duration;

#[cfg(any(feature = "postgres", feature = "redis"))]
use tokio::sync::OnceCell;

/// Default PostgreSQL URL when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Default Redis URL when `REDIS_URL` is unset.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Whether `AUTHKIT_REQUIRE_SERVICES=1` turns a missing service into a failure.
pub fn require_services() -> bool {
    std::env::var("AUTHKIT_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
}

pub use axum_authkit::testing::unique_name;

/// What discovery found: the URL, or why the service is out of reach.
type Probe = Result<String, String>;

/// Turns a probe into the URL, a skip (one line per service and process,
/// straight to stderr so the test harness does not swallow it) or a panic
/// under `AUTHKIT_REQUIRE_SERVICES=1`.
fn url_or_skip(service: &str, probe: &Probe, printed: &AtomicBool) -> Option<String> {
    match probe {
        Ok(url) => Some(url.clone()),
        Err(why) if require_services() => {
            panic!("{service} is required (AUTHKIT_REQUIRE_SERVICES=1) but unreachable: {why}")
        }
        Err(why) => {
            if !printed.swap(true, Ordering::Relaxed) {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP {service} conformance: {why} \
                     (set AUTHKIT_REQUIRE_SERVICES=1 to fail instead)"
                );
            }
            None
        }
    }
}

/// The PostgreSQL URL (`DATABASE_URL`, default [`DEFAULT_DATABASE_URL`]) if
/// the server answers; `None` (after one `SKIP` line) if not.
///
/// # Panics
///
/// When the server is unreachable and `AUTHKIT_REQUIRE_SERVICES=1`.
#[cfg(feature = "postgres")]
pub async fn postgres_url() -> Option<String> {
    static PROBE: OnceCell<Probe> = OnceCell::const_new();
    static PRINTED: AtomicBool = AtomicBool::new(false);
    let probe = PROBE
        .get_or_init(|| async {
            use sqlx::Connection;
            let url =
                std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
            let attempt = async {
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("SELECT 1")
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(())) => Ok(url),
                Ok(Err(e)) => Err(format!("cannot reach {url}: {e}")),
                Err(_) => Err(format!("cannot reach {url}: timed out after 5 s")),
            }
        })
        .await;
    url_or_skip("postgres", probe, &PRINTED)
}

/// The Redis URL (`REDIS_URL`, default [`DEFAULT_REDIS_URL`]) if the server
/// answers `PING`; `None` (after one `SKIP` line) if not.
///
/// # Panics
///
/// When the server is unreachable and `AUTHKIT_REQUIRE_SERVICES=1`.
#[cfg(feature = "redis")]
pub async fn redis_url() -> Option<String> {
    static PROBE: OnceCell<Probe> = OnceCell::const_new();
    static PRINTED: AtomicBool = AtomicBool::new(false);
    let probe = PROBE
        .get_or_init(|| async {
            let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
            let attempt = async {
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(_)) => Ok(url),
                Ok(Err(e)) => Err(format!("cannot reach {url}: {e}")),
                Err(_) => Err(format!("cannot reach {url}: timed out after 5 s")),
            }
        })
        .await;
    url_or_skip("redis", probe, &PRINTED)
}

/// Runs `fut` to completion on a fresh runtime in its own thread: usable
/// from `Drop`, inside or outside a runtime, even while unwinding.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn block_on_side<F>(fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let done = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cleanup runtime")
            .block_on(fut);
    })
    .join();
    if done.is_err() {
        let _ = writeln!(std::io::stderr(), "warning: test cleanup panicked");
    }
}

/// Drops its PostgreSQL schema when dropped (also when the test panics).
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub struct SchemaGuard {
    url: String,
    schema: String,
}

#[cfg(feature = "postgres")]
impl SchemaGuard {
    /// The schema this guard drops.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

#[cfg(feature = "postgres")]
impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        block_on_side(async move {
            let dropped = async {
                let store = axum_authkit::store::PostgresStore::connect(&url).await?;
                store.drop_schema(&schema).await?;
                store.pool().close().await;
                Ok::<_, axum_authkit::store::StoreError>(())
            };
            if let Err(e) = dropped.await {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: could not drop schema {schema}: {e}"
                );
            }
        });
    }
}

/// A migrated [`PostgresStore`](axum_authkit::store::PostgresStore) in a
/// fresh schema of its own, and the guard that drops the schema; `None` when
/// PostgreSQL is unreachable (see [`postgres_url`]).
///
/// # Panics
///
/// When the server answers but the schema cannot be set up.
#[cfg(feature = "postgres")]
pub async fn postgres_store() -> Option<(axum_authkit::store::PostgresStore, SchemaGuard)> {
    let (store, guard) = postgres_store_unmigrated().await?;
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate schema {}: {e}", guard.schema()));
    Some((store, guard))
}

/// [`postgres_store`] before its migrations ran.
#[cfg(feature = "postgres")]
pub async fn postgres_store_unmigrated() -> Option<(axum_authkit::store::PostgresStore, SchemaGuard)>
{
    let url = postgres_url().await?;
    let schema = unique_name("authkit_test");
    let guard = SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = axum_authkit::store::PostgresStore::connect_in_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("connect_in_schema({schema}) on {url}: {e}"));
    Some((store, guard))
}

/// Deletes every key under its Redis prefix when dropped.
#[cfg(feature = "redis")]
#[derive(Debug)]
pub struct PrefixGuard {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl PrefixGuard {
    /// The key prefix this guard cleans up.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(feature = "redis")]
impl Drop for PrefixGuard {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        block_on_side(async move {
            let cleaned = async {
                let client = redis::Client::open(url.as_str())?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{prefix}*"))
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    if !keys.is_empty() {
                        redis::cmd("DEL").arg(&keys).exec_async(&mut conn).await?;
                    }
                    if next == 0 {
                        return Ok::<_, redis::RedisError>(());
                    }
                    cursor = next;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), cleaned).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = writeln!(std::io::stderr(), "warning: redis cleanup of {prefix}: {e}");
                }
                Err(_) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: redis cleanup of {prefix} timed out"
                    );
                }
            }
        });
    }
}

/// A [`RedisStore`](axum_authkit::store::RedisStore) under a fresh key
/// prefix, and the guard that deletes its keys; `None` when Redis is
/// unreachable (see [`redis_url`]).
///
/// # Panics
///
/// When the server answered the probe but the store cannot connect.
#[cfg(feature = "redis")]
pub async fn redis_store() -> Option<(axum_authkit::store::RedisStore, PrefixGuard)> {
    let url = redis_url().await?;
    let prefix = format!("{}:", unique_name("authkit_test"));
    let guard = PrefixGuard {
        url: url.clone(),
        prefix: prefix.clone(),
    };
    let store = axum_authkit::store::RedisStore::connect(&url, prefix.clone())
        .await
        .unwrap_or_else(|e| panic!("RedisStore::connect({url}): {e}"));
    Some((store, guard))
}

/// Removes a SQLite database file and its `-wal` / `-shm` companions when
/// dropped.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub struct TempDb {
    path: std::path::PathBuf,
}

#[cfg(feature = "sqlite")]
impl TempDb {
    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(feature = "sqlite")]
impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A migrated [`SqliteStore`](axum_authkit::store::SqliteStore) over a fresh
/// file in the temp directory, and the guard that deletes the file.
///
/// # Panics
///
/// When the database cannot be created or migrated.
#[cfg(feature = "sqlite")]
pub async fn sqlite_file_store() -> (axum_authkit::store::SqliteStore, TempDb) {
    let db = TempDb {
        path: std::env::temp_dir().join(format!("{}.db", unique_name("authkit_test"))),
    };
    let url = format!("sqlite://{}?mode=rwc", db.path.display());
    let store = axum_authkit::store::SqliteStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::connect({url}): {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate {url}: {e}"));
    (store, db)
}

/// A migrated private in-memory [`SqliteStore`](axum_authkit::store::SqliteStore).
///
/// # Panics
///
/// When the database cannot be created or migrated.
#[cfg(feature = "sqlite")]
pub async fn sqlite_memory_store() -> axum_authkit::store::SqliteStore {
    let store = axum_authkit::store::SqliteStore::in_memory()
        .await
        .unwrap_or_else(|e| panic!("SqliteStore::in_memory: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate in-memory SQLite: {e}"));
    store
}
