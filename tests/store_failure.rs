//! A running example server whose stores go away and come back: PostgreSQL
//! and Redis are reached through TCP proxies that the test cuts (every
//! connection closed) or stalls (bytes accepted, then held: the server never
//! has them) and restores.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod common;
#[path = "common/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum_authkit::store::{SessionStore, UserStore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct horse battery staple";
const REDIS_DB: u32 = 8;
/// The Redis database of the Redis stall test.
const STALL_REDIS_DB: u32 = 10;
/// `STORE_DEADLINE_MS` of the stall tests.
const DEADLINE: Duration = Duration::from_millis(1000);
/// How long a route may take to answer `503` in a stall: the deadline, and
/// generous room for everything else.
const ANSWER_BOUND: Duration = Duration::from_millis(1000 + 2000);

/// What the proxy does with the bytes an app sends towards the server.
#[derive(Clone, Debug, PartialEq)]
enum Flow {
    Forward,
    /// Accept them, and hold them until [`Proxy::resume`].
    Hold,
    /// Forward until a read contains this pattern, then hold everything, on
    /// every connection, from that read on.
    HoldAt(Vec<u8>),
    /// Like `HoldAt`, from the read after it on the same connection (for a
    /// statement prepared in one round trip and run in the next).
    HoldAfter(Vec<u8>),
    /// Hold what the first `n` connections send (they went silent, as
    /// behind a dead NAT entry); newer connections flow.
    HoldOpen(usize),
    /// Hold, on the connection whose read contains this pattern, that read
    /// and all after it; other connections flow.
    SilenceAt(Vec<u8>),
}

/// A TCP proxy that can be cut (every connection dropped, new ones closed at
/// once) and restored, or stalled and resumed.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    flow: Arc<watch::Sender<Flow>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let flow = Arc::new(watch::Sender::new(Flow::Forward));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (open, list, shared_flow, count) =
            (up.clone(), conns.clone(), flow.clone(), accepted.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    continue; // dropped: the peer sees the connection close
                }
                let id = count.fetch_add(1, Ordering::SeqCst);
                let (upstream, flow) = (upstream.clone(), shared_flow.clone());
                list.lock().await.push(tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let (client_in, mut client_out) = client.into_split();
                        let (mut server_in, server_out) = server.into_split();
                        let down = async {
                            let _ = tokio::io::copy(&mut server_in, &mut client_out).await;
                            let _ = client_out.shutdown().await;
                        };
                        tokio::join!(pump_up(id, client_in, server_out, flow), down);
                    }
                }));
            }
        });
        Proxy {
            port,
            up,
            accepted,
            flow,
            conns,
            accept,
        }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().await.drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Stalls as `flow` says.
    fn stall(&self, flow: Flow) {
        self.flow.send_replace(flow);
    }

    /// Silences every connection open now; new ones flow.
    fn silence_open(&self) {
        let open = self.accepted.load(Ordering::SeqCst);
        self.flow.send_replace(Flow::HoldOpen(open));
    }

    /// Whether the proxy is holding bytes back now.
    fn holding(&self) -> bool {
        *self.flow.borrow() == Flow::Hold
    }

    /// Forwards everything held, in order, and all that follows.
    fn resume(&self) {
        self.flow.send_replace(Flow::Forward);
    }
}

/// Copies app-to-server bytes, read by read, obeying `flow`.
async fn pump_up(
    id: usize,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    flow: Arc<watch::Sender<Flow>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut state = flow.subscribe();
    // This connection sent the `HoldAfter` pattern: its next read stalls.
    let mut armed = false;
    // This connection sent the `SilenceAt` pattern.
    let mut silenced = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        loop {
            let hold = match &*state.borrow_and_update() {
                Flow::Forward => false,
                Flow::Hold => true,
                Flow::HoldAt(pattern) => contains(chunk, pattern),
                Flow::HoldAfter(pattern) => {
                    let fire = armed;
                    armed |= contains(chunk, pattern);
                    fire
                }
                Flow::HoldOpen(n) => id < *n,
                Flow::SilenceAt(pattern) => {
                    silenced |= contains(chunk, pattern);
                    silenced
                }
            };
            if !hold {
                break;
            }
            // The pattern fires the stall for every connection.
            flow.send_if_modified(|f| {
                let fire = matches!(f, Flow::HoldAt(_) | Flow::HoldAfter(_));
                if fire {
                    *f = Flow::Hold;
                }
                fire
            });
            if state.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn contains(chunk: &[u8], pattern: &[u8]) -> bool {
    chunk.windows(pattern.len()).any(|w| w == pattern)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
fn authority(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap().to_owned()
}

fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let pair = v.to_str().ok()?.split(';').next()?;
        pair.strip_prefix(&format!("{name}="))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_go_away_and_come_back() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();

    let pg_proxy = Proxy::start(authority(&pg_url)).await;
    let redis_proxy = Proxy::start(authority(&redis_url)).await;
    let proxied_pg = pg_url.replace(&authority(&pg_url), &format!("127.0.0.1:{}", pg_proxy.port));
    let sep = if proxied_pg.contains('?') { '&' } else { '?' };
    let database_url = format!(
        "{proxied_pg}{sep}options=-c%20search_path%3D{}",
        schema.schema()
    );
    // Flush this test's Redis database directly, then point the server at the proxy.
    {
        let direct = format!("{}/{REDIS_DB}", redis_url.trim_end_matches('/'));
        let mut conn = redis::Client::open(direct.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("FLUSHDB")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    let proxied_redis = format!("redis://127.0.0.1:{}/{REDIS_DB}", redis_proxy.port);
    let mut server = Server::start(&[
        ("DATABASE_URL", &database_url),
        ("REDIS_URL", &proxied_redis),
    ]);
    // A hang is a failure too: every request must answer well within this.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let email = format!("{}@example.com", common::unique_name("outage"));
    let signin = || {
        http.post(server.url("/api/v1/auth/signin/"))
            .json(&json!({"login": email, "password": PASSWORD, "captcha": "x"}))
            .send()
    };
    let refresh = |token: String| {
        http.post(server.url("/api/v1/auth/custom-refresh/"))
            .header("Cookie", format!("refresh_token={token}"))
            .send()
    };

    let res = http
        .post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Outage", "captcha": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = signin().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(&res, "access_token").unwrap();
    let refresh_token = set_cookie(&res, "refresh_token").unwrap();
    let account = || {
        http.get(server.url("/api/v1/account/"))
            .bearer_auth(&access)
            .send()
    };

    // PostgreSQL goes away.
    pg_proxy.cut().await;
    let res = signin().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "store_unavailable"
    );
    assert_eq!(
        account().await.unwrap().status(),
        StatusCode::OK,
        "valid access tokens need no store"
    );
    let res = refresh(refresh_token.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        set_cookie(&res, "refresh_token").is_none(),
        "no token handed out"
    );

    // Redis goes away too.
    redis_proxy.cut().await;
    let res = refresh(refresh_token.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        set_cookie(&res, "refresh_token").is_none(),
        "no token handed out"
    );
    assert_eq!(account().await.unwrap().status(), StatusCode::OK);

    // Both come back: everything works again, without a restart. The refresh
    // token of before the outage still works, so no failed attempt rotated it.
    pg_proxy.restore();
    redis_proxy.restore();
    let mut recovered = None;
    for _ in 0..50 {
        let res = refresh(refresh_token.clone()).await.unwrap();
        if res.status() == StatusCode::NO_CONTENT {
            recovered = set_cookie(&res, "refresh_token");
            break;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let next = recovered.expect("refresh works again after the stores return");
    assert_eq!(
        refresh(next).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(signin().await.unwrap().status(), StatusCode::NO_CONTENT);

    assert!(server.is_running(), "the server survived");
    assert!(
        !server.log().iter().any(|l| l.contains("panicked")),
        "nothing panicked"
    );
    server.stop();
}

/// The session id a refresh token names: its first 16 bytes.
fn session_id(token: &str) -> String {
    let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
    URL_SAFE_NO_PAD.encode(&raw[..16])
}

/// `url` (PostgreSQL) with `search_path` set to `schema`.
fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A client of one example server.
struct App<'a> {
    server: &'a Server,
    http: reqwest::Client,
}

impl App<'_> {
    async fn sign_in(&self, email: &str) -> reqwest::Response {
        self.http
            .post(self.server.url("/api/v1/auth/signin/"))
            .json(&json!({"login": email, "password": PASSWORD, "captcha": "x"}))
            .send()
            .await
            .unwrap()
    }

    async fn refresh(&self, token: &str) -> reqwest::Response {
        self.http
            .post(self.server.url("/api/v1/auth/custom-refresh/"))
            .header("Cookie", format!("refresh_token={token}"))
            .send()
            .await
            .unwrap()
    }

    async fn account(&self, access: &str) -> StatusCode {
        self.http
            .get(self.server.url("/api/v1/account/"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// Asserts `res` is the `503` of a store that missed its deadline, handing
/// out no token.
async fn assert_unavailable(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(
        set_cookie(&res, "refresh_token").is_none(),
        "{what}: no token"
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "store_unavailable",
        "{what}"
    );
}

/// The stall scenario, for whichever store `proxy` stands in front of: the
/// write of a rotation reaches the proxy and stops there (`stall` says where
/// it is in the byte stream). `rotated(sid)` reads the store directly.
async fn rotation_stalls(
    server: &Server,
    proxy: &Proxy,
    stall: Flow,
    rotated: impl AsyncFn(&str) -> bool,
) {
    let app = App {
        server,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
    };
    let email = format!("{}@example.com", common::unique_name("stall"));
    let res = app
        .http
        .post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Stall", "captcha": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.sign_in(&email).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(&res, "access_token").unwrap();
    let token = set_cookie(&res, "refresh_token").unwrap();
    let sid = session_id(&token);
    assert!(!rotated(&sid).await);

    // The rotation stalls: the route answers 503 within the deadline.
    proxy.stall(stall);
    let started = Instant::now();
    let res = app.refresh(&token).await;
    let took = started.elapsed();
    assert!(proxy.holding(), "the stall hit the rotation");
    assert_unavailable(res, "refresh while the rotation stalls").await;
    assert!(took < ANSWER_BOUND, "refresh answered after {took:?}");

    // Everything stalls now: a sign-in answers in time too, and a valid
    // access token needs no store.
    let started = Instant::now();
    let res = app.sign_in(&email).await;
    let took = started.elapsed();
    assert_unavailable(res, "sign-in while the store stalls").await;
    assert!(took < ANSWER_BOUND, "sign-in answered after {took:?}");
    assert_eq!(app.account(&access).await, StatusCode::OK);
    assert!(!rotated(&sid).await, "the store never had the rotation");

    // The stall ends. The held rotation reaches the store and commits, but
    // its answer goes to nobody: the client was told 503.
    proxy.resume();
    let landed = Instant::now() + Duration::from_secs(10);
    while !rotated(&sid).await {
        assert!(Instant::now() < landed, "the held rotation never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The client retries with the same token, within the grace window: it
    // gets the successor the lost answer carried, from the same pool, with
    // no restart. One lineage goes on.
    let res = app.refresh(&token).await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "retry after the stall"
    );
    let next = set_cookie(&res, "refresh_token").unwrap();
    assert_ne!(next, token);
    let res = app.refresh(&next).await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "the successor refreshes"
    );
    let last = set_cookie(&res, "refresh_token").unwrap();
    assert_eq!(app.refresh(&last).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.sign_in(&email).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_postgres_answers_503_in_time_and_no_session_is_half_rotated() {
    let Some((store, schema)) = common::postgres_store().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let proxy = Proxy::start(authority(&pg_url)).await;
    let proxied = pg_url.replace(&authority(&pg_url), &format!("127.0.0.1:{}", proxy.port));
    let database_url = in_schema(&proxied, schema.schema());
    let deadline_ms = DEADLINE.as_millis().to_string();
    let mut server = Server::start(&[
        ("DATABASE_URL", &database_url),
        ("STORE_DEADLINE_MS", &deadline_ms),
    ]);

    let rotated = async |sid: &str| {
        let session = store.session(sid).await.unwrap().unwrap();
        session.rotated_at != 0
    };
    // sqlx prepares the rotation's UPDATE in one round trip (its text goes
    // out) and runs it in the next: that second write is held.
    let stall = Flow::HoldAfter(b"UPDATE authkit_sessions SET current_hash".to_vec());
    rotation_stalls(&server, &proxy, stall, rotated).await;

    assert!(server.is_running(), "the server survived");
    assert!(!server.log().iter().any(|l| l.contains("panicked")));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_redis_answers_503_in_time_and_no_session_is_half_rotated() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let direct = format!("{}/{STALL_REDIS_DB}", redis_url.trim_end_matches('/'));
    let mut conn = redis::Client::open(direct.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let proxy = Proxy::start(authority(&redis_url)).await;
    let proxied_redis = format!("redis://127.0.0.1:{}/{STALL_REDIS_DB}", proxy.port);
    let database_url = in_schema(&pg_url, schema.schema());
    let deadline_ms = DEADLINE.as_millis().to_string();
    let mut server = Server::start(&[
        ("DATABASE_URL", &database_url),
        ("REDIS_URL", &proxied_redis),
        ("STORE_DEADLINE_MS", &deadline_ms),
    ]);

    // `authkit:` is the example's key prefix; a session's key carries its
    // user's hash tag, found through the session's owner key.
    let rotated = async |sid: &str| {
        let mut conn = conn.clone();
        let user: String = redis::cmd("GET")
            .arg(format!("authkit:sid:{{{sid}}}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let rot: Option<String> = redis::cmd("HGET")
            .arg(format!("authkit:{{u:{user}}}:fam:{sid}"))
            .arg("rot")
            .query_async(&mut conn)
            .await
            .unwrap();
        rot.expect("the session exists") != "0"
    };
    // After the sign-in, the rotation script is the first call that names
    // the user's session set.
    let stall = Flow::HoldAt(b"}:sessions\r\n".to_vec());
    rotation_stalls(&server, &proxy, stall, rotated).await;

    assert!(server.is_running(), "the server survived");
    assert!(!server.log().iter().any(|l| l.contains("panicked")));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_connection_that_went_silent_is_closed_not_reused() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let proxy = Proxy::start(authority(&pg_url)).await;
    let proxied = pg_url.replace(&authority(&pg_url), &format!("127.0.0.1:{}", proxy.port));
    let options: sqlx::postgres::PgConnectOptions =
        in_schema(&proxied, schema.schema()).parse().unwrap();
    // One pooled connection: a slot held by a silent connection would be
    // the whole pool.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5));
    let store = axum_authkit::store::PostgresStore::connect_with(options, pool)
        .await
        .unwrap()
        .with_deadline(DEADLINE);
    assert!(store.session("missing").await.unwrap().is_none());
    // sqlx checks a connection given back (a round trip) before it is idle.
    let idle = Instant::now() + Duration::from_secs(5);
    while store.pool().num_idle() == 0 {
        assert!(
            Instant::now() < idle,
            "the connection never went back to the pool"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The connection goes silent (its packets vanish; the server is fine).
    proxy.silence_open();
    let started = Instant::now();
    let err = store.session("missing").await.unwrap_err();
    assert!(
        matches!(err, axum_authkit::store::StoreError::Unavailable(_)),
        "{err}"
    );
    assert!(started.elapsed() < ANSWER_BOUND);

    // The next call gets a new connection at once: the silent one was
    // dropped, not parked in the pool waiting for an answer that never comes.
    assert!(store.session("missing").await.unwrap().is_none());

    // Now a connection goes silent in the middle of a call (its first
    // lookup by e-mail), after the pool handed it out.
    proxy.stall(Flow::SilenceAt(
        b"FROM authkit_users WHERE email_key".to_vec(),
    ));
    let started = Instant::now();
    let err = store.user_by_email("nobody@example.com").await.unwrap_err();
    assert!(
        matches!(err, axum_authkit::store::StoreError::Unavailable(_)),
        "{err}"
    );
    assert!(started.elapsed() < ANSWER_BOUND);
    assert!(store.session("missing").await.unwrap().is_none());
    proxy.resume();
}

#[tokio::test]
async fn postgres_deadline_reaches_the_server() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let store = axum_authkit::store::PostgresStore::connect_with_deadline(
        &url,
        Duration::from_millis(1500),
    )
    .await
    .unwrap();
    for setting in ["statement_timeout", "idle_in_transaction_session_timeout"] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(value, "1500ms", "{setting}");
    }
    // The server gives up on its own too, whoever waits for it.
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
}
