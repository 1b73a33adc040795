//! Revocation across instances, measured (plain `main`, no criterion):
//!
//! - **propagation**: three `Auth`s in this process stand for three
//!   instances, each with its own store connections (and its own channel
//!   subscription and sync task), sharing one store: memory, Redis
//!   (sessions and the deny list in Redis), PostgreSQL alone, and a SQLite
//!   file, which has no channel (polling, as with a channel that is down;
//!   a tenth of the rounds). Each round
//!   signs in on A, has B and C verify (and cache) the access token, signs
//!   out on A, and then spins until B and C both refuse the token. The delay
//!   is from `sign_out` returning on A to the later of B and C refusing;
//!   also printed: how long `sign_out` itself took (it writes the shared
//!   list before it returns);
//! - **memory**: the heap that this instance's deny list holds for 100,000
//!   revoked sessions (22-character ids, as the crate makes them), counted
//!   by a `#[global_allocator]` that tracks live bytes.
//!
//! The cost per request (cache hit, cache miss with 100,000 entries on the
//! list) is in `benches/verify.rs`.
//!
//! `cargo bench --bench revocation --features testing,sqlite,postgres,redis`
//! (`ROUNDS`, default 1000; `DATABASE_URL` and `REDIS_URL` as in the tests;
//! a backend that is unreachable is skipped with a message).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum_authkit::keys::{KeySet, SigningKey};
use axum_authkit::store::{MemoryStore, PostgresStore, RedisStore, SessionStore, SqliteStore};
use axum_authkit::{Auth, Client};

use common::{AUDIENCE, HS256_SECRET, ISSUER, REFRESH_SECRET, user};

// ---- a live-bytes allocator ----------------------------------------------------

static LIVE: AtomicI64 = AtomicI64::new(0);

/// `System`, plus a count of the bytes allocated and not yet freed.
struct Counting;

fn size(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counting itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(size(layout.size()), Relaxed);
        // SAFETY: the caller's `layout` obligations pass through to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(size(layout.size()), Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size(layout.size()), Relaxed);
        // SAFETY: `ptr` and `layout` come from a matching `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(size(new_size) - size(layout.size()), Relaxed);
        // SAFETY: as for `dealloc`; `new_size` passes through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- instances -------------------------------------------------------------------

/// One instance: its own `Auth` over `sessions`.
fn instance(sessions: Arc<dyn SessionStore>) -> Auth {
    Auth::builder()
        .keys(KeySet::new(
            SigningKey::hs256("hs-bench", HS256_SECRET.as_bytes()).expect("key"),
        ))
        .refresh_secret(REFRESH_SECRET)
        .users(Arc::new(MemoryStore::new()))
        .sessions(sessions)
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        // Nothing outlives the run by much.
        .with_access_ttl(Duration::from_secs(60))
        .with_refresh_ttl(Duration::from_secs(120))
        .build()
        .expect("auth")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `rounds` revocations on A, each awaited on B and C.
async fn propagation(name: &str, [a, b, c]: [Auth; 3], rounds: usize) {
    // The sync tasks subscribe and load at start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let user = user();
    let client = Client::trusted();
    let mut delays = Vec::with_capacity(rounds);
    let mut calls = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let tokens = a.start_session(&user, &client).await.expect("session");
        let token = tokens.access.token;
        b.verify(&token).expect("B accepts");
        c.verify(&token).expect("C accepts");
        let called = Instant::now();
        assert!(
            a.sign_out(None, Some(token.as_bytes()))
                .await
                .expect("sign out")
        );
        let returned = Instant::now();
        let (mut on_b, mut on_c) = (None, None);
        while on_b.is_none() || on_c.is_none() {
            if on_b.is_none() && b.verify(&token).is_err() {
                on_b = Some(returned.elapsed());
            }
            if on_c.is_none() && c.verify(&token).is_err() {
                on_c = Some(returned.elapsed());
            }
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "{name}: round {round} never propagated"
            );
            tokio::task::yield_now().await;
        }
        delays.push(on_b.max(on_c).unwrap_or_default());
        calls.push(returned - called);
    }
    delays.sort();
    calls.sort();
    println!(
        "{name:<10} {rounds} revocations: propagation p50 {} p90 {} p99 {} max {}; sign_out p50 {} p99 {}",
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.9)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1]),
        ms(percentile(&calls, 0.5)),
        ms(percentile(&calls, 0.99)),
    );
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn redis_instances(prefix: &str) -> Option<[Auth; 3]> {
    let url = env_or("REDIS_URL", "redis://127.0.0.1:6379");
    let mut auths = Vec::new();
    for _ in 0..3 {
        match RedisStore::connect(&url, prefix).await {
            Ok(store) => auths.push(instance(Arc::new(store))),
            Err(e) => {
                println!("redis      skipped: {e}");
                return None;
            }
        }
    }
    auths.try_into().ok()
}

async fn postgres_instances(schema: &str) -> Option<([Auth; 3], PostgresStore)> {
    let url = env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test");
    let admin = match PostgresStore::connect_in_schema(&url, schema).await {
        Ok(store) => store,
        Err(e) => {
            println!("postgres   skipped: {e}");
            return None;
        }
    };
    admin.migrate().await.expect("migrate");
    let mut auths = Vec::new();
    for _ in 0..3 {
        let store = PostgresStore::connect_in_schema(&url, schema)
            .await
            .expect("connect");
        auths.push(instance(Arc::new(store)));
    }
    Some((auths.try_into().ok()?, admin))
}

/// The heap of this instance's deny list with `n` entries.
fn deny_list_memory(n: usize) {
    let store = Arc::new(MemoryStore::new());
    // Built outside the runtime: no sync task, so only `load_revocations`
    // fills the list, here.
    let auth = instance(store.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ids: Vec<String> = (0..n).map(|i| format!("{i:0>22}")).collect();
    let until = now_ms() + 600_000;
    rt.block_on(store.deny(&ids, until)).expect("deny");
    drop(ids);
    let before = LIVE.load(Relaxed);
    let loaded = rt.block_on(auth.load_revocations()).expect("load");
    let after = LIVE.load(Relaxed);
    assert_eq!(loaded, n);
    let bytes = after - before;
    println!(
        "memory     {n} revoked sessions: {bytes} bytes live ({:.1} MiB, {:.0} bytes per entry)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / n as f64
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    deny_list_memory(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let memory = [(); 3].map(|()| instance(store.clone()));
        propagation("memory", memory, rounds).await;

        let name = axum_authkit::testing::unique_name("bench_revoke");
        if let Some(auths) = redis_instances(&format!("{name}:")).await {
            propagation("redis", auths, rounds).await;
        }
        if let Some((auths, admin)) = postgres_instances(&name).await {
            propagation("postgres", auths, rounds).await;
            admin.drop_schema(&name).await.expect("drop schema");
        }

        // No channel: polling (as with a channel that is down). A tenth of
        // the rounds: each takes up to a poll period.
        let file = std::env::temp_dir().join(format!("{name}.db"));
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let first = SqliteStore::connect(&url).await.expect("sqlite");
        first.migrate().await.expect("migrate");
        let mut auths = vec![instance(Arc::new(first))];
        for _ in 0..2 {
            let store = SqliteStore::connect(&url).await.expect("sqlite");
            auths.push(instance(Arc::new(store)));
        }
        if let Ok(auths) = auths.try_into() {
            propagation("sqlite/poll", auths, (rounds / 10).max(1)).await;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    });
}
