//! The store conformance suite (`axum_authkit::testing`, feature `testing`)
//! on every store of the crate, exactly as a third-party store would run it:
//!
//! - users: memory, SQLite (in-memory and file), PostgreSQL;
//! - sessions: memory, SQLite (in-memory and file), PostgreSQL, Redis, and
//!   Redis Cluster;
//! - rate limits: memory, SQLite, PostgreSQL, Redis, and Redis Cluster.
//!
//! PostgreSQL and Redis come from `DATABASE_URL` / `REDIS_URL` (see
//! `tests/common`); each test gets its own schema or key prefix. The Redis
//! Cluster is three local `redis-server`s the tests start themselves
//! (`tests/common/cluster.rs`).

mod common;

use std::sync::Arc;

use axum_authkit::testing::Expiry;
use axum_authkit::{rate_limiter_tests, session_store_tests, user_store_tests};

/// Keeps a backend's isolation (schema, key prefix, temp file) alive.
type Guard = Box<dyn std::any::Any + Send>;

mod memory {
    use super::*;
    use axum_authkit::limits::MemoryRateLimiter;
    use axum_authkit::store::MemoryStore;

    async fn store() -> Option<(Arc<MemoryStore>, Guard)> {
        Some((Arc::new(MemoryStore::new()), Box::new(())))
    }

    async fn limiter() -> Option<(Arc<MemoryRateLimiter>, Guard)> {
        Some((Arc::default(), Box::new(())))
    }

    user_store_tests!(store);
    session_store_tests!(store, Expiry::Purge);
    rate_limiter_tests!(limiter);
}

#[cfg(feature = "sqlite")]
mod sqlite_memory {
    use super::*;
    use axum_authkit::store::SqliteStore;

    async fn store() -> Option<(Arc<SqliteStore>, Guard)> {
        Some((Arc::new(common::sqlite_memory_store().await), Box::new(())))
    }

    user_store_tests!(store);
    session_store_tests!(store, Expiry::Purge);
    rate_limiter_tests!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite_file {
    use super::*;
    use axum_authkit::store::SqliteStore;

    async fn store() -> Option<(Arc<SqliteStore>, Guard)> {
        let (store, file) = common::sqlite_file_store().await;
        Some((Arc::new(store), Box::new(file)))
    }

    user_store_tests!(store);
    session_store_tests!(store, Expiry::Purge);
    rate_limiter_tests!(store);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use axum_authkit::store::PostgresStore;

    async fn store() -> Option<(Arc<PostgresStore>, Guard)> {
        let (store, schema) = common::postgres_store().await?;
        Some((Arc::new(store), Box::new(schema)))
    }

    user_store_tests!(store);
    session_store_tests!(store, Expiry::Purge);
    rate_limiter_tests!(store);
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use axum_authkit::store::RedisStore;

    async fn store() -> Option<(Arc<RedisStore>, Guard)> {
        let (store, prefix) = common::redis_store().await?;
        Some((Arc::new(store), Box::new(prefix)))
    }

    session_store_tests!(store, Expiry::Native);
    rate_limiter_tests!(store);
}

#[cfg(feature = "redis")]
mod redis_cluster {
    use super::*;
    use axum_authkit::store::RedisStore;

    async fn store() -> Option<(Arc<RedisStore>, Guard)> {
        let (store, cluster) = common::cluster::store().await?;
        assert!(
            store.is_cluster(),
            "a redis+cluster:// URL makes a cluster store"
        );
        Some((Arc::new(store), Box::new(cluster)))
    }

    session_store_tests!(store, Expiry::Native);
    rate_limiter_tests!(store);
}
