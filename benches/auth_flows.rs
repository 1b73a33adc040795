//! The auth flows, on the memory store:
//!
//! - `flows/signin` and `flows/signup`: one request through `auth.router()`,
//!   argon2id with the default cost included (slow on purpose, 10 samples);
//! - `flows/refresh_rotate`: `RefreshTokens::rotate` of the live token;
//! - `flows/auth_refresh`: `Auth::refresh` (rotation, user lookup, a fresh
//!   access token).
//!
//! Requests carry no client address, so the per-address rate limits are not
//! consulted; sign-in succeeds every time, so its per-login counter is reset.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum_authkit::Auth;
use axum_authkit::refresh::{RefreshPolicy, RefreshTokens};
use axum_authkit::store::{MemoryStore, NewUser, UserStore};
use axum_authkit::time::now_millis;
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SECRET: &[u8] = b"benchmark secret: thirty-two bytes or more, ASCII";
const PASSWORD: &str = "correct horse battery staple 42";

fn json_post(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request")
}

async fn send(app: &Router, req: Request<Body>, expected: StatusCode) {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(status, expected, "{body:?}");
    black_box(body);
}

fn signup_body(email: &str) -> String {
    serde_json::json!({ "email": email, "password": PASSWORD, "name": "Bench User" }).to_string()
}

fn router_flows(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let auth: Auth = Auth::builder()
        .secret(SECRET)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .expect("auth");
    let app: Router = auth.router();

    rt.block_on(send(
        &app,
        json_post("/signup", signup_body("signin@example.com")),
        StatusCode::CREATED,
    ));
    let signin =
        serde_json::json!({ "login": "signin@example.com", "password": PASSWORD }).to_string();

    let mut g = c.benchmark_group("flows");
    g.sample_size(10);
    g.bench_function("signin", |b| {
        b.to_async(&rt).iter(|| {
            send(
                &app,
                json_post("/signin", signin.clone()),
                StatusCode::NO_CONTENT,
            )
        })
    });
    let mut n = 0u64;
    g.bench_function("signup", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let req = json_post("/signup", signup_body(&format!("user{n}@example.com")));
            send(&app, req, StatusCode::CREATED)
        })
    });
    g.finish();
}

fn refresh_flows(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let auth: Auth = Auth::builder()
        .secret(SECRET)
        .store(store.clone())
        .build()
        .expect("auth");
    let user = rt
        .block_on(store.create_user(NewUser {
            email: "refresh@example.com".into(),
            name: "Refresh".into(),
            password_hash: "not used".into(),
        }))
        .expect("user");

    let mut g = c.benchmark_group("flows");

    // RefreshTokens alone, over its own family.
    let tokens = RefreshTokens::new(&[9; 32], RefreshPolicy::default()).expect("tokens");
    let issued = rt
        .block_on(tokens.start(&*store, &user.id, now_millis()))
        .expect("family");
    let live = Mutex::new(issued.token);
    g.bench_function("refresh_rotate", |b| {
        b.to_async(&rt).iter(|| async {
            let token = live.lock().expect("lock").clone();
            let next = tokens
                .rotate(&*store, &token, now_millis())
                .await
                .expect("rotation");
            *live.lock().expect("lock") = next.token;
        })
    });

    // Auth::refresh: rotation, user lookup and a new access token.
    let session = rt.block_on(auth.sign_in(&user)).expect("sign-in");
    let live = Mutex::new(session.refresh_token);
    g.bench_function("auth_refresh", |b| {
        b.to_async(&rt).iter(|| async {
            let token = live.lock().expect("lock").clone();
            let next = auth.refresh(&token).await.expect("refresh");
            black_box(&next.access_token);
            *live.lock().expect("lock") = next.refresh_token;
        })
    });
    g.finish();
}

criterion_group!(benches, router_flows, refresh_flows);
criterion_main!(benches);
