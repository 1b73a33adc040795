//! Refresh-token rotation throughput on each store, with concurrent clients.
//!
//! Every client owns a session and rotates it over and over (one read and one
//! compare-and-swap per rotation, as `Auth::refresh` does; through
//! `axum_authkit::testing::Rotator`); criterion
//! reports rotations per second across all clients. PostgreSQL and Redis are
//! found through `DATABASE_URL` / `REDIS_URL` (defaults: the local services);
//! an unreachable one is skipped with a line on stderr. The Redis Cluster is
//! three local primaries the bench starts itself with the tests' harness
//! (`tests/common/cluster.rs`, needs `redis-server`), measured in the same
//! run as the single Redis.
//!
//! ```sh
//! cargo bench --all-features --bench stores
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_authkit::store::{MemoryStore, PostgresStore, RedisStore, SessionStore, SqliteStore};
use axum_authkit::testing::Rotator;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

#[path = "../tests/common/mod.rs"]
mod tests_common;

const CLIENTS: usize = 32;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Rotates `rounds` times on each of `CLIENTS` sessions concurrently; returns
/// the elapsed time.
async fn burst(
    store: Arc<dyn SessionStore>,
    tokens: &Rotator,
    live: &mut [String],
    rounds: u64,
) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = live
        .iter()
        .cloned()
        .map(|mut token| {
            let (store, tokens) = (store.clone(), tokens.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    token = tokens.rotate(&*store, &token).await.expect("rotation");
                }
                token
            })
        })
        .collect();
    for (slot, task) in live.iter_mut().zip(tasks) {
        *slot = task.await.expect("task");
    }
    start.elapsed()
}

fn bench_store(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<dyn SessionStore>) {
    let tokens = Rotator::default();
    let mut live: Vec<String> = rt.block_on(async {
        let mut live = Vec::new();
        for i in 0..CLIENTS {
            live.push(
                tokens
                    .start(&*store, &format!("bench-user-{i}"))
                    .await
                    .expect("start"),
            );
        }
        live
    });
    let mut group = c.benchmark_group("rotation");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.sample_size(20);
    group.bench_function(format!("{name}/{CLIENTS}_clients"), |b| {
        b.iter_custom(|iters| rt.block_on(burst(store.clone(), &tokens, &mut live, iters)));
    });
    group.finish();
}

fn rotations(c: &mut Criterion) {
    let rt = runtime();
    bench_store(c, &rt, "memory", Arc::new(MemoryStore::new()));

    let sqlite = rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("authkit-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let store = SqliteStore::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("bench.db").display()
        ))
        .await
        .ok()?;
        store.migrate().await.ok()?;
        Some(store)
    });
    match sqlite {
        Some(store) => bench_store(c, &rt, "sqlite_file", Arc::new(store)),
        None => eprintln!("SKIP sqlite rotation bench: could not open a temporary database"),
    }

    let pg_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("authkit_bench_{}", std::process::id());
    match rt.block_on(async {
        let store = PostgresStore::connect_in_schema(&pg_url, &schema).await?;
        store.migrate().await?;
        Ok::<_, axum_authkit::store::StoreError>(store)
    }) {
        Ok(store) => {
            bench_store(c, &rt, "postgres", Arc::new(store.clone()));
            let _ = rt.block_on(store.drop_schema(&schema));
        }
        Err(e) => eprintln!("SKIP postgres rotation bench: {pg_url}: {e}"),
    }

    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("authkit-bench-{}:", std::process::id());
    match rt.block_on(RedisStore::connect(&redis_url, prefix)) {
        Ok(store) => bench_store(c, &rt, "redis", Arc::new(store)),
        Err(e) => eprintln!("SKIP redis rotation bench: {redis_url}: {e}"),
    }

    // Kept until the end of the run: dropping it stops the cluster.
    let Some(cluster) = tests_common::cluster::start_or_skip() else {
        return;
    };
    let prefix = format!("authkit-bench-{}:", std::process::id());
    match rt.block_on(RedisStore::connect(&cluster.url(), prefix)) {
        Ok(store) => bench_store(c, &rt, "redis_cluster_3", Arc::new(store)),
        Err(e) => eprintln!("SKIP redis cluster rotation bench: {e}"),
    }
}

criterion_group!(benches, rotations);
criterion_main!(benches);
