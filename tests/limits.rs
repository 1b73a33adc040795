//! Sign-in limits under concurrency, through the router: a burst gets no
//! more password evaluations than the limits allow, and does not hold up
//! other users.
//!
//! Evaluations are counted at the user store: every `user_by_email` call
//! comes after the limiter and is followed by one argon2 verification or by
//! a `429` from the hashing queue, so while the queue refuses nothing the
//! count bounds the evaluations from above. Independently, every answer other
//! than `429` is an evaluation.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum_authkit::limits::RateLimiter;
use axum_authkit::store::{
    Code, CodePurpose, MemoryStore, NewUser, SecretHash, StoreError, UnixMillis, User, UserStore,
};
use axum_authkit::{Auth, LimitSettings, PasswordSettings};
use http::{Request, StatusCode, header};
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "wrong password, twelve+ chars";

/// A [`MemoryStore`] that counts e-mail lookups (one per evaluated sign-in).
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    lookups: AtomicUsize,
}

impl Counting {
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserStore for Counting {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        self.inner.create_user(new).await
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.user_by_email(email).await
    }
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.inner.user_by_id(id).await
    }
    async fn set_password_hash(&self, id: &str, hash: &str) -> Result<(), StoreError> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError> {
        self.inner.mark_email_verified(id).await
    }
    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        self.inner.set_disabled(id, disabled).await
    }
    async fn change_email(&self, id: &str, email: &str, key: &str) -> Result<(), StoreError> {
        self.inner.change_email(id, email, key).await
    }
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_user(id).await
    }
    async fn unverified_users(
        &self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        self.inner.unverified_users(before, limit).await
    }
    async fn delete_unverified_user(
        &self,
        id: &str,
        before: UnixMillis,
    ) -> Result<bool, StoreError> {
        self.inner.delete_unverified_user(id, before).await
    }
    async fn put_code(&self, id: &str, p: CodePurpose, code: &Code) -> Result<(), StoreError> {
        self.inner.put_code(id, p, code).await
    }
    async fn code(&self, id: &str, p: CodePurpose) -> Result<Option<Code>, StoreError> {
        self.inner.code(id, p).await
    }
    async fn count_code_attempt(
        &self,
        id: &str,
        p: CodePurpose,
    ) -> Result<Option<Code>, StoreError> {
        self.inner.count_code_attempt(id, p).await
    }
    async fn take_code(
        &self,
        id: &str,
        p: CodePurpose,
        hash: &SecretHash,
    ) -> Result<Option<Code>, StoreError> {
        self.inner.take_code(id, p, hash).await
    }
}

struct Harness {
    app: Router,
    users: Arc<Counting>,
    limits: LimitSettings,
}

/// Cheap argon2 (the cost is not under test), one hashing thread.
fn policy() -> PasswordSettings {
    PasswordSettings {
        memory_kib: 1024,
        iterations: 1,
        max_concurrent_hashes: 1,
        ..PasswordSettings::default()
    }
}

fn harness(policy: PasswordSettings, limiter: Option<Arc<dyn RateLimiter>>) -> Harness {
    let users = Arc::new(Counting::default());
    let mut builder = Auth::builder()
        .secret(b"limits test secret, 32 bytes or more")
        .users(users.clone())
        .sessions(Arc::new(MemoryStore::new()))
        .with_password_settings(policy);
    if let Some(limiter) = limiter {
        builder = builder.with_rate_limiter(limiter);
    }
    let auth: Auth = builder.build().unwrap();
    let app = Router::new()
        .nest("/api/v1/auth", auth.router())
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 250], 4000))));
    Harness {
        app,
        users,
        limits: *auth.settings().limits(),
    }
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([198, 51, 100, i], 5000))
}

impl Harness {
    async fn post(&self, path: &str, body: serde_json::Value, from: SocketAddr) -> StatusCode {
        let mut req = Request::post(format!("/api/v1/auth{path}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(from));
        self.app.clone().oneshot(req).await.unwrap().status()
    }

    async fn signin(&self, login: &str, password: &str, from: SocketAddr) -> StatusCode {
        self.post(
            "/signin/",
            json!({"login": login, "password": password}),
            from,
        )
        .await
    }

    async fn signup(&self, email: &str, from: SocketAddr) {
        let status = self
            .post(
                "/signup/",
                json!({"email": email, "password": PASSWORD, "name": "Jo"}),
                from,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {email}");
    }
}

/// How a burst was answered.
#[derive(Debug, Default)]
struct Tally {
    unauthorized: usize,
    limited: usize,
}

/// Starts a wrong-password sign-in per `(login, address)`, each waiting for
/// `barrier` (so they go at once).
fn spawn_burst(
    h: &Arc<Harness>,
    attempts: Vec<(String, SocketAddr)>,
    barrier: &Arc<Barrier>,
) -> Vec<JoinHandle<StatusCode>> {
    attempts
        .into_iter()
        .map(|(login, from)| {
            let (h, barrier) = (h.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                h.signin(&login, WRONG, from).await
            })
        })
        .collect()
}

/// What a burst got back; only `401` and `429` are acceptable answers.
async fn tally(tasks: Vec<JoinHandle<StatusCode>>) -> Tally {
    let mut tally = Tally::default();
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::UNAUTHORIZED => tally.unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => tally.limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    tally
}

async fn burst(h: &Arc<Harness>, attempts: Vec<(String, SocketAddr)>) -> Tally {
    let barrier = Arc::new(Barrier::new(attempts.len()));
    tally(spawn_burst(h, attempts, &barrier)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_on_one_login_gets_at_most_its_limit_of_evaluations() {
    let h = Arc::new(harness(policy(), None));
    h.signup("victim@example.com", addr(1)).await;
    let max = h.limits.signin_failures_per_login.max as usize;
    let before = h.users.lookups();
    let tally = burst(&h, vec![("victim@example.com".into(), addr(2)); 100]).await;
    let evaluations = h.users.lookups() - before;
    assert!(evaluations <= max, "{evaluations} evaluations, {tally:?}");
    assert_eq!(tally.unauthorized, max, "{tally:?}");
    assert_eq!(tally.limited, 100 - max);
    // The right password, after the wrong ones took every slot: refused.
    assert_eq!(
        h.signin("Victim@example.com", PASSWORD, addr(3)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(h.users.lookups() - before, evaluations, "not evaluated");
}

/// The same burst from 20 addresses, on the in-memory and the Redis limiter.
async fn one_login_from_twenty_addresses(limiter: Option<Arc<dyn RateLimiter>>) {
    let h = Arc::new(harness(policy(), limiter));
    h.signup("spread@example.com", addr(1)).await;
    let max = h.limits.signin_failures_per_login.max as usize;
    let before = h.users.lookups();
    let attempts = (0..100u8)
        .map(|i| ("spread@example.com".to_owned(), addr(10 + i % 20)))
        .collect();
    let tally = burst(&h, attempts).await;
    let evaluations = h.users.lookups() - before;
    assert!(evaluations <= max, "{evaluations} evaluations, {tally:?}");
    assert_eq!(tally.unauthorized, max, "{tally:?}");
    assert_eq!(
        h.signin("spread@example.com", PASSWORD, addr(99)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_on_one_login_from_twenty_addresses_gets_at_most_its_limit() {
    one_login_from_twenty_addresses(None).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_on_one_login_from_twenty_addresses_gets_at_most_its_limit_on_redis() {
    let Some((store, _prefix)) = common::redis_store().await else {
        return;
    };
    one_login_from_twenty_addresses(Some(Arc::new(store))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_logins_from_one_address_get_at_most_the_address_limit() {
    // A share of the hashing queue as large as the queue: only the limiter
    // decides here (the share is tested below and in password.rs).
    let h = Arc::new(harness(
        PasswordSettings {
            max_hashes_per_client: Some(256),
            ..policy()
        },
        None,
    ));
    h.signup("known@example.com", addr(1)).await;
    let max = h.limits.signin_failures_per_ip.max as usize;
    let before = h.users.lookups();
    let attempts = (0..60)
        .map(|i| (format!("guess{i}@example.com"), addr(2)))
        .collect();
    let tally = burst(&h, attempts).await;
    let evaluations = h.users.lookups() - before;
    assert!(evaluations <= max, "{evaluations} evaluations, {tally:?}");
    assert_eq!(tally.unauthorized, max, "{tally:?}");
    assert_eq!(tally.limited, 60 - max);
    // That address is done for the window, even with a right password...
    assert_eq!(
        h.signin("known@example.com", PASSWORD, addr(2)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the login is not, from elsewhere.
    assert_eq!(
        h.signin("known@example.com", PASSWORD, addr(3)).await,
        StatusCode::NO_CONTENT
    );
}

/// Both bursts at once, each address held to a share of 2 hashing jobs; a
/// user signing in from elsewhere at the same moment gets in promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legitimate_sign_in_completes_during_a_burst() {
    let h = Arc::new(harness(
        PasswordSettings {
            max_queued_hashes: 16,
            ..policy()
        },
        None,
    ));
    h.signup("victim@example.com", addr(1)).await;
    h.signup("legit@example.com", addr(1)).await;
    let mut attempts: Vec<_> = (0..60)
        .map(|i| (format!("guess{i}@example.com"), addr(2)))
        .collect();
    attempts.extend((0..100u8).map(|i| ("victim@example.com".to_owned(), addr(10 + i % 20))));
    let barrier = Arc::new(Barrier::new(attempts.len() + 1));
    let attack = spawn_burst(&h, attempts, &barrier);
    barrier.wait().await;
    let start = Instant::now();
    let status = h.signin("legit@example.com", PASSWORD, addr(200)).await;
    let took = start.elapsed();
    let tally = tally(attack).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let limits = &h.limits;
    let bound =
        limits.signin_failures_per_ip.max as usize + limits.signin_failures_per_login.max as usize;
    // Every 401 is an evaluation. (The lookups count more here: requests
    // turned away by the hashing queue's per-address share give their
    // reservations back, and others take them.)
    assert!(tally.unauthorized <= bound, "{tally:?}");
    assert!(tally.limited > 0, "{tally:?}");
}
