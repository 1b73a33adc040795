//! The auth flows, on the memory store:
//!
//! - `flows/signin` and `flows/signup`: one request through `auth.router()`,
//!   argon2id with the default cost included (slow on purpose, 10 samples);
//! - `flows/refresh_rotate`: the rotation of the live refresh token alone
//!   (`testing::Rotator`);
//! - `flows/auth_refresh`: `Auth::refresh` (rotation, user lookup, a fresh
//!   access token);
//! - `flows/reset_confirm` and `flows/change_password`: `Auth::reset_password`
//!   (one argon2 hash) and `Auth::change_password` (one argon2 check, one
//!   hash), next to `flows/argon2_hash`, the hash alone with the same
//!   parameters, so the share that is not argon2 can be read off.
//!
//! Requests carry no client address, so the per-address rate limits are not
//! consulted; sign-in succeeds every time, so its per-login counter is reset.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum_authkit::limits::Limit;
use axum_authkit::mail::{Mail, MailError, Mailer};
use axum_authkit::store::{MemoryStore, NewUser, UserStore, email_key};
use axum_authkit::testing::Rotator;
use axum_authkit::{Auth, Client, LimitSettings, async_trait};
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
            email_key: email_key("refresh@example.com"),
            name: "Refresh".into(),
            password_hash: "not used".into(),
        }))
        .expect("user");

    let mut g = c.benchmark_group("flows");

    // The rotation alone, over its own session.
    let rotator = Rotator::default();
    let first = rt
        .block_on(rotator.start(&*store, &user.id))
        .expect("session");
    let live = Mutex::new(first);
    g.bench_function("refresh_rotate", |b| {
        b.to_async(&rt).iter(|| async {
            let token = live.lock().expect("lock").clone();
            let next = rotator.rotate(&*store, &token).await.expect("rotation");
            *live.lock().expect("lock") = next;
        })
    });

    // Auth::refresh: rotation, user lookup and a new access token.
    let tokens = rt
        .block_on(auth.start_session(&user, &Client::trusted()))
        .expect("session");
    let live = Mutex::new(tokens.refresh_token);
    g.bench_function("auth_refresh", |b| {
        b.to_async(&rt).iter(|| async {
            let token = live.lock().expect("lock").clone();
            let next = auth.refresh(&token).await.expect("refresh");
            black_box(&next.access.token);
            *live.lock().expect("lock") = next.refresh_token;
        })
    });
    g.finish();
}

/// Keeps the last code mailed.
#[derive(Clone, Default)]
struct LastCode(Arc<Mutex<Option<String>>>);

#[async_trait]
impl Mailer for LastCode {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if let Some(code) = &mail.code {
            *self.0.lock().expect("lock") = Some(code.clone());
        }
        Ok(())
    }
}

fn lifecycle_flows(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mailbox = LastCode::default();
    let auth: Auth = Auth::builder()
        .secret(SECRET)
        .store(Arc::new(MemoryStore::new()))
        .with_mailer(Arc::new(mailbox.clone()))
        // Every iteration asks for and mails one reset code: lift those caps.
        .with_limits(LimitSettings {
            mails_per_address: Limit::new(u32::MAX, Duration::from_secs(3600)),
            resets_per_ip: Limit::new(u32::MAX, Duration::from_secs(3600)),
            code_requests_per_user: Limit::new(u32::MAX, Duration::from_secs(3600)),
            ..LimitSettings::default()
        })
        .build()
        .expect("auth");
    let client = Client::trusted();
    let email = "lifecycle@example.com";
    let signed_up = rt
        .block_on(auth.sign_up(&client, email, PASSWORD, "Bench"))
        .expect("sign-up");
    let mut g = c.benchmark_group("flows");
    g.sample_size(10);

    g.bench_function("reset_confirm", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    *mailbox.0.lock().expect("lock") = None;
                    auth.request_password_reset(&client, email)
                        .await
                        .expect("reset request");
                    // The mail goes out off the request path; a limit that
                    // stops it must fail the bench, not hang it.
                    let sent = std::time::Instant::now();
                    let code = loop {
                        if let Some(code) = mailbox.0.lock().expect("lock").take() {
                            break code;
                        }
                        assert!(sent.elapsed() < Duration::from_secs(10), "no reset mail");
                        tokio::task::yield_now().await;
                    };
                    let start = std::time::Instant::now();
                    let tokens = auth
                        .reset_password(&client, email, &code, PASSWORD)
                        .await
                        .expect("reset");
                    spent += start.elapsed();
                    black_box(tokens);
                }
                spent
            })
        })
    });

    let tokens = rt
        .block_on(auth.sign_in(&client, email, PASSWORD))
        .expect("sign-in");
    let caller = tokens.access.claims.clone();
    let other = format!("{PASSWORD} but longer");
    let passwords = [PASSWORD, other.as_str()];
    let mut turn = 0usize;
    g.bench_function("change_password", |b| {
        b.iter(|| {
            let (current, new) = (passwords[turn % 2], passwords[(turn + 1) % 2]);
            turn += 1;
            rt.block_on(auth.change_password(&caller, &client, current, new))
                .expect("change")
        })
    });

    // The hash alone, with the crate's default parameters (argon2id m=19 MiB,
    // t=2, p=1), on one thread: what neither flow can go under.
    let argon2 = argon2::Argon2::default();
    let salt =
        argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    g.bench_function("argon2_hash", |b| {
        b.iter(|| {
            use argon2::PasswordHasher;
            black_box(
                argon2
                    .hash_password(PASSWORD.as_bytes(), &salt)
                    .expect("hash"),
            )
        })
    });
    black_box(signed_up);
    g.finish();
}

criterion_group!(benches, router_flows, refresh_flows, lifecycle_flows);
criterion_main!(benches);
