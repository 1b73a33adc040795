//! Heap allocations per authenticated request (`GET /me`, Bearer header)
//! through the axum 0.8 router with `auth.layer().required()`, counted by a
//! `#[global_allocator]` that wraps `std::alloc::System`. Printed as a table,
//! each row also minus the plain router without auth (the baseline), so the
//! difference is what the layer and the `AuthUser` extractor add.
//!
//! - `authkit_cached`: the same token every time (verified-token cache hit);
//! - `authkit_first_seen`: built with `CacheSettings::disabled()`, so every
//!   request verifies the token in full.
//!
//! For reference, it also counts `Verifier::verify` and `Auth::verify` (cache
//! hit) on their own. "Allocations" counts `alloc`, `alloc_zeroed` and
//! `realloc` calls; "bytes" sums the sizes they asked for.
//!
//! Plain `main` (`harness = false`), no criterion: run with
//! `cargo bench --bench alloc`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use axum_authkit::{Auth, CacheSettings};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{BODY, authkit_me, hs256_auth, plain, token};

// ---- the counting allocator -------------------------------------------------

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// `System`, plus two counters.
struct Counting;

fn count(bytes: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; the counting itself never allocates.
// (The library forbids `unsafe`; this bench is a separate crate.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's `layout` obligations pass through to `System`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes per call of `f`, over `n` calls after a warm-up.
async fn measure<F: AsyncFnMut()>(n: u64, mut f: F) -> (f64, f64) {
    for _ in 0..100 {
        f().await;
    }
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..n {
        f().await;
    }
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

// ---- the routers ------------------------------------------------------------

async fn call(app: &Router, bearer: &HeaderValue) {
    let req = Request::get("/me")
        .header(AUTHORIZATION, bearer.clone())
        .body(Body::empty())
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(status, StatusCode::OK, "request refused: {body:?}");
    assert_eq!(body, BODY);
}

fn main() {
    const N: u64 = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cached = hs256_auth(CacheSettings::default());
    let uncached = hs256_auth(CacheSettings::disabled());
    let token = token(&cached);
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");

    let baseline = Router::new().route("/me", get(plain));
    let with_layer = |auth: &Auth| {
        Router::new()
            .route("/me", get(authkit_me))
            .layer(auth.layer().required())
    };
    let (cached_app, uncached_app) = (with_layer(&cached), with_layer(&uncached));
    // What axum's `Router::layer` itself costs (it boxes every route once
    // more), and a handler that only extracts `AuthUser` with no layer cost
    // at all is not possible, so the identity layer isolates the boxing.
    let identity = Router::new()
        .route("/me", get(plain))
        .layer(tower::layer::util::Identity::new());
    let rows: Vec<(&str, (f64, f64))> = rt.block_on(async {
        vec![
            (
                "request/baseline",
                measure(N, async || call(&baseline, &bearer).await).await,
            ),
            (
                "request/identity_layer",
                measure(N, async || call(&identity, &bearer).await).await,
            ),
            (
                "request/authkit_cached",
                measure(N, async || call(&cached_app, &bearer).await).await,
            ),
            (
                "request/authkit_first_seen",
                measure(N, async || call(&uncached_app, &bearer).await).await,
            ),
        ]
    });
    assert_eq!(cached.cached_tokens(), 1, "the cached auth did not cache");
    assert_eq!(uncached.cached_tokens(), 0, "the uncached auth cached");

    let verify_rows: Vec<(&str, (f64, f64))> = rt.block_on(async {
        vec![
            (
                "Auth::verify (first seen, no cache)",
                measure(N, async || {
                    black_box(uncached.verify(&token).expect("valid"));
                })
                .await,
            ),
            (
                "Auth::verify (cache hit)",
                measure(N, async || {
                    black_box(cached.verify(&token).expect("valid"));
                })
                .await,
            ),
        ]
    });

    let (base_allocs, base_bytes) = rows[0].1;
    println!();
    println!(
        "Allocations per request, HS256 token of {} bytes, mean of {N} requests",
        token.len()
    );
    println!(
        "{:<28} {:>8} {:>9} {:>14} {:>15}",
        "", "allocs", "bytes", "allocs - base", "bytes - base"
    );
    for (name, (allocs, bytes)) in &rows {
        println!(
            "{name:<28} {allocs:>8.1} {bytes:>9.1} {:>14.1} {:>15.1}",
            allocs - base_allocs,
            bytes - base_bytes
        );
    }
    println!();
    println!("Allocations per call, verification alone");
    for (name, (allocs, bytes)) in &verify_rows {
        println!("{name:<28} {allocs:>8.1} {bytes:>9.1}");
    }
}
