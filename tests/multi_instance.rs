//! Three example servers on three loopback ports, sharing one PostgreSQL
//! schema (users) and one Redis database (sessions and rate limits):
//! sign-ins, refreshes and limits must agree across them, and one of them
//! killed with `kill -9` in the middle of a refresh burst forks no session
//! and loses no user.
//!
//! Revocation: an ended session's access token is refused by the other two
//! within 1 s (with Redis, on a Redis Cluster, and with PostgreSQL alone),
//! after a restart, and
//! with the Redis channel down (polling).
#![cfg(all(feature = "postgres", feature = "redis"))]

mod common;
#[path = "common/server.rs"]
mod server;

use std::collections::HashSet;
use std::time::Duration;

use axum_authkit::store::{RedisStore, SessionStore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::Server;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "correct horse battery staple";
/// A Redis database of this test's own, flushed before use.
const REDIS_DB: u32 = 7;
/// The Redis database of the `kill -9` test.
const KILL_REDIS_DB: u32 = 9;
/// The Redis databases of the revocation tests.
const REVOKE_REDIS_DB: u32 = 10;
const CHANNEL_DOWN_REDIS_DB: u32 = 11;
/// The promised bound: a revocation on one instance reaches the others
/// within it.
const PROPAGATION: Duration = Duration::from_secs(1);

/// `DATABASE_URL` pointing at `schema`.
pub fn url_in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

pub async fn fresh_redis_db(url: &str, db: u32) -> String {
    let url = format!("{}/{db}", url.trim_end_matches('/'));
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("FLUSHDB")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    url
}

/// `name=value` of a `Set-Cookie` header in `res`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        pair.strip_prefix(&format!("{name}="))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    })
}

struct Client {
    http: reqwest::Client,
}

impl Client {
    async fn signin(&self, server: &Server, email: &str, password: &str) -> reqwest::Response {
        self.http
            .post(server.url("/api/v1/auth/signin/"))
            .json(&json!({"login": email, "password": password, "captcha": "x"}))
            .send()
            .await
            .unwrap()
    }

    async fn refresh(&self, server: &Server, token: &str) -> reqwest::Response {
        self.http
            .post(server.url("/api/v1/auth/custom-refresh/"))
            .header("Cookie", format!("refresh_token={token}"))
            .send()
            .await
            .unwrap()
    }
}

/// Three servers on one PostgreSQL schema and one (flushed) Redis database.
fn start_three(database_url: &str, redis_url: &str) -> [Server; 3] {
    let env = [("DATABASE_URL", database_url), ("REDIS_URL", redis_url)];
    [
        Server::start(&env),
        Server::start(&env),
        Server::start(&env),
    ]
}

async fn sign_up(http: &reqwest::Client, server: &Server, email: &str) -> reqwest::Response {
    http.post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Multi", "captcha": "x"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_sign_ins_refreshes_and_limits() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    let redis_url = fresh_redis_db(&redis_url, REDIS_DB).await;
    share_sign_ins_refreshes_and_limits(&database_url, &redis_url).await;
}

/// The same three instances with sessions and rate limits on a Redis Cluster
/// of three primaries started for this test: rotation, reuse detection and
/// limits hold across instances when every call may land on another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_a_redis_cluster_share_refreshes_reuse_and_limits() {
    let Some((_schema, cluster, database_url)) = postgres_and_cluster().await else {
        return;
    };
    share_sign_ins_refreshes_and_limits(&database_url, &cluster.url()).await;
    // The sessions and counters really live on the cluster.
    let keys: usize = cluster.keys_per_node("authkit:*").iter().sum();
    assert!(keys > 0, "no key on the cluster");
}

/// Sign-up, sign-in, refreshes across instances, reuse detection, a refresh
/// burst and shared sign-in limits on three servers over `redis_url`.
async fn share_sign_ins_refreshes_and_limits(database_url: &str, redis_url: &str) {
    let [a, b, c] = start_three(database_url, redis_url);
    let client = Client {
        http: reqwest::Client::new(),
    };
    let email = format!("{}@example.com", common::unique_name("multi"));
    let res = sign_up(&client.http, &a, &email).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Sign in on A; the access token works on B and C without any store.
    let res = client.signin(&a, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(&res, "access_token").unwrap();
    let t1 = set_cookie(&res, "refresh_token").unwrap();
    for server in [&b, &c] {
        let me = client
            .http
            .get(server.url("/api/v1/account/"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(me.json::<Value>().await.unwrap()["email"], email.as_str());
    }

    // Refresh on B, then on A, then on C.
    let res = client.refresh(&b, &t1).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t2 = set_cookie(&res, "refresh_token").unwrap();
    let res = client.refresh(&a, &t2).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t3 = set_cookie(&res, "refresh_token").unwrap();
    let res = client.refresh(&c, &t3).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t4 = set_cookie(&res, "refresh_token").unwrap();

    // An old token (generations back) on B: theft; the session dies for all.
    let res = client.refresh(&b, &t1).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for server in [&a, &b, &c] {
        assert_eq!(
            client.refresh(server, &t4).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    // A burst of refreshes of one cookie, spread over the three: no fork, no
    // false revocation.
    let res = client.signin(&b, &email, PASSWORD).await;
    let token = set_cookie(&res, "refresh_token").unwrap();
    let bases = [a.url(""), b.url(""), c.url("")];
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (http, url, token) = (client.http.clone(), bases[i % 3].clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(format!("{url}/api/v1/auth/custom-refresh/"))
                .header("Cookie", format!("refresh_token={token}"))
                .send()
                .await
                .unwrap();
            (res.status(), set_cookie(&res, "refresh_token"))
        }));
    }
    let mut successors = HashSet::new();
    for task in tasks {
        let (status, next) = task.await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT);
        successors.insert(next.unwrap());
    }
    assert_eq!(successors.len(), 1, "every racer got the same successor");
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(
        client.refresh(&c, &successor).await.status(),
        StatusCode::NO_CONTENT,
        "the session is live"
    );

    // Sign-in failures for one login, spread over the three: 429 at the same
    // total as on one instance (5 failures, then limited).
    let servers = [&a, &b, &c];
    for i in 0..5 {
        assert_eq!(
            client
                .signin(servers[i % 3], &email, "wrong password!!")
                .await
                .status(),
            StatusCode::UNAUTHORIZED,
            "failure {i}"
        );
    }
    for server in servers {
        let res = client.signin(server, &email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(res.headers().get("retry-after").is_some());
    }
    a.stop();
    b.stop();
    c.stop();
}

/// SHA-256 of a refresh token's raw bytes: what a store keeps of it.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(URL_SAFE_NO_PAD.decode(token).unwrap()).into()
}

/// The outcome of one refresh: its status and new token, or the transport
/// error of a request the dead instance cut.
type Outcome = Result<(StatusCode, Option<String>), String>;

async fn refresh_at(http: reqwest::Client, base: String, token: String) -> (String, Outcome) {
    let res = http
        .post(format!("{base}/api/v1/auth/custom-refresh/"))
        .header("Cookie", format!("refresh_token={token}"))
        .send()
        .await;
    let outcome = match res {
        Ok(res) => Ok((res.status(), set_cookie(&res, "refresh_token"))),
        Err(e) => Err(e.to_string()),
    };
    (base, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_mid_refresh_burst_forks_no_session_and_loses_no_user() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    let redis_url = fresh_redis_db(&redis_url, KILL_REDIS_DB).await;
    let [a, b, c] = start_three(&database_url, &redis_url);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let client = Client { http: http.clone() };
    let email = format!("{}@example.com", common::unique_name("kill"));
    assert_eq!(
        sign_up(&http, &a, &email).await.status(),
        StatusCode::CREATED
    );
    let res = client.signin(&b, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mut token = set_cookie(&res, "refresh_token").unwrap();
    let sid = URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(&token).unwrap()[..16]);

    // Sign-ups race the burst, two on each instance.
    let bases = [a.url(""), b.url(""), c.url("")];
    let signups: Vec<_> = (0..6)
        .map(|i| {
            let (http, base) = (http.clone(), bases[i % 3].clone());
            let email = format!("{}@example.com", common::unique_name("burst"));
            tokio::spawn(async move {
                let res = http
                    .post(format!("{base}/api/v1/auth/signup/"))
                    .json(&json!({"email": email, "password": PASSWORD, "name": "Burst", "captcha": "x"}))
                    .send()
                    .await;
                (email, res.map(|r| r.status()).map_err(|e| e.to_string()))
            })
        })
        .collect();

    // The burst, in waves: every wave presents one token 12 times at once,
    // spread over the live instances; C dies with `kill -9` while wave 3 is
    // in flight. Every answer of a wave is the same successor (or, from C, a
    // cut connection), and the next wave presents it.
    const RACERS: usize = 12;
    const KILL_WAVE: usize = 3;
    let mut live: Vec<String> = bases.to_vec();
    let mut killed = None;
    let mut cut = 0;
    let mut c = Some(c);
    for wave in 0..6 {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                tokio::spawn(refresh_at(
                    http.clone(),
                    live[i % live.len()].clone(),
                    token.clone(),
                ))
            })
            .collect();
        if wave == KILL_WAVE {
            // At once: a fixed pause let a fast machine finish C's share of
            // the wave before the kill, and then nothing was cut.
            let victim = c.take().unwrap();
            tokio::task::spawn_blocking(move || victim.kill())
                .await
                .unwrap();
            killed = Some(live.pop().unwrap());
        }
        let mut successors = HashSet::new();
        for racer in racers {
            let (base, outcome) = racer.await.unwrap();
            match outcome {
                Ok((status, next)) => {
                    assert_eq!(status, StatusCode::NO_CONTENT, "wave {wave} on {base}");
                    successors.insert(next.expect("a 204 carries the successor"));
                }
                Err(e) => {
                    assert_eq!(Some(&base), killed.as_ref(), "wave {wave}: {e}");
                    cut += 1;
                }
            }
        }
        assert_eq!(successors.len(), 1, "wave {wave}: one successor");
        token = successors.into_iter().next().unwrap();
    }
    assert!(cut > 0, "the kill cut refreshes in flight");

    // One lineage: the session's single live token is the one every client
    // holds, and it refreshes.
    let sessions = RedisStore::connect(&redis_url, "authkit:").await.unwrap();
    let session = sessions.session(&sid).await.unwrap().unwrap();
    assert!(!session.revoked);
    assert_eq!(session.current_hash, token_hash(&token));
    let res = client.refresh(&a, &token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    token = set_cookie(&res, "refresh_token").unwrap();

    // No lost user: the user signs in on the survivors, and every sign-up that
    // got 201 exists; one C cut is there whole or not at all.
    for server in [&a, &b] {
        assert_eq!(
            client.signin(server, &email, PASSWORD).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    for signup in signups {
        let (email, status) = signup.await.unwrap();
        let signin = client.signin(&a, &email, PASSWORD).await.status();
        match status {
            Ok(StatusCode::CREATED) => assert_eq!(signin, StatusCode::NO_CONTENT, "{email}"),
            Ok(other) => panic!("sign-up of {email}: {other}"),
            Err(_) => assert!(
                matches!(signin, StatusCode::NO_CONTENT | StatusCode::UNAUTHORIZED),
                "{email}: {signin}"
            ),
        }
    }

    // C comes back and serves: the session, the account, sign-ins.
    let (db, redis) = (database_url.clone(), redis_url.clone());
    let c = tokio::task::spawn_blocking(move || {
        Server::start(&[("DATABASE_URL", &db), ("REDIS_URL", &redis)])
    })
    .await
    .unwrap();
    let res = client.refresh(&c, &token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(&res, "access_token").unwrap();
    let me = http
        .get(c.url("/api/v1/account/"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        client.signin(&c, &email, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    a.stop();
    b.stop();
    c.stop();
}

/// `GET /api/v1/account/` with `access` as a Bearer token.
async fn account_status(http: &reqwest::Client, server: &Server, access: &str) -> StatusCode {
    http.get(server.url("/api/v1/account/"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

/// Asserts that `access` works on every server in `servers` (which also
/// puts it in their caches: the revocation must evict it).
async fn assert_accepted(http: &reqwest::Client, servers: &[&Server], access: &str) {
    for server in servers {
        assert_eq!(
            account_status(http, server, access).await,
            StatusCode::OK,
            "{}",
            server.base
        );
    }
}

/// Polls every server in `servers` until each refuses `access` (401), and
/// fails if one still accepts it [`PROPAGATION`] after `since`.
async fn assert_refused_within(
    http: &reqwest::Client,
    servers: &[&Server],
    access: &str,
    since: std::time::Instant,
    what: &str,
) {
    for server in servers {
        loop {
            let status = account_status(http, server, access).await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(status, StatusCode::OK, "{what} on {}", server.base);
            assert!(
                since.elapsed() < PROPAGATION,
                "{what}: {} still accepts the token {:?} after the revocation",
                server.base,
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Signs in on `server`; returns (access token, refresh token).
async fn sign_in_tokens(client: &Client, server: &Server, email: &str) -> (String, String) {
    let res = client.signin(server, email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    (
        set_cookie(&res, "access_token").unwrap(),
        set_cookie(&res, "refresh_token").unwrap(),
    )
}

async fn post_bearer(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    access: &str,
) -> StatusCode {
    http.post(server.url(path))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

/// Logout, logout-all and refresh-token reuse on one instance: the access
/// tokens are refused by the other two within a second, and by a restarted
/// instance from its first request.
async fn revocation_reaches_every_instance(env: &[(&str, &str)]) {
    let [a, b, c] = [Server::start(env), Server::start(env), Server::start(env)];
    let http = reqwest::Client::new();
    let client = Client { http: http.clone() };
    let email = format!("{}@example.com", common::unique_name("revoke"));
    assert_eq!(
        sign_up(&http, &a, &email).await.status(),
        StatusCode::CREATED
    );

    // Logout on A.
    let (access, _) = sign_in_tokens(&client, &a, &email).await;
    assert_accepted(&http, &[&a, &b, &c], &access).await;
    assert_eq!(
        post_bearer(&http, &a, "/api/v1/auth/custom-logout/", &access).await,
        StatusCode::NO_CONTENT
    );
    let since = std::time::Instant::now();
    assert_eq!(
        account_status(&http, &a, &access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_refused_within(&http, &[&b, &c], &access, since, "logout").await;

    // Logout-all on B ends the sessions started on A and C.
    let (one, _) = sign_in_tokens(&client, &a, &email).await;
    let (two, _) = sign_in_tokens(&client, &c, &email).await;
    assert_accepted(&http, &[&a, &b, &c], &one).await;
    assert_accepted(&http, &[&a, &b, &c], &two).await;
    assert_eq!(
        post_bearer(&http, &b, "/api/v1/auth/logout-all/", &one).await,
        StatusCode::NO_CONTENT
    );
    let since = std::time::Instant::now();
    assert_refused_within(&http, &[&a, &c], &one, since, "logout-all").await;
    assert_refused_within(&http, &[&a, &c], &two, since, "logout-all").await;

    // Reuse of a rotated-away refresh token on A ends the session.
    let (_, t1) = sign_in_tokens(&client, &b, &email).await;
    let res = client.refresh(&a, &t1).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t2 = set_cookie(&res, "refresh_token").unwrap();
    let res = client.refresh(&a, &t2).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let reused = set_cookie(&res, "access_token").unwrap();
    assert_accepted(&http, &[&a, &b, &c], &reused).await;
    assert_eq!(
        client.refresh(&a, &t1).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let since = std::time::Instant::now();
    assert_refused_within(&http, &[&b, &c], &reused, since, "reuse").await;

    // A restart: the new B refuses all of them from its first request (the
    // example loads the deny list before it listens).
    b.stop();
    let b = Server::start(env);
    for token in [&access, &one, &two, &reused] {
        assert_eq!(
            account_status(&http, &b, token).await,
            StatusCode::UNAUTHORIZED,
            "a restarted instance accepts a revoked token"
        );
    }
    // And a session still live works there.
    let (live, _) = sign_in_tokens(&client, &c, &email).await;
    assert_accepted(&http, &[&a, &b, &c], &live).await;
    a.stop();
    b.stop();
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_reaches_every_instance_with_postgres_and_redis() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    let redis_url = fresh_redis_db(&redis_url, REVOKE_REDIS_DB).await;
    revocation_reaches_every_instance(&[
        ("DATABASE_URL", &database_url),
        ("REDIS_URL", &redis_url),
    ])
    .await;
}

/// The same on a Redis Cluster: the deny list lives on the node owning its
/// slot, and each instance subscribes on the first seed; classic `PUBLISH`
/// reaches every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_reaches_every_instance_on_a_redis_cluster() {
    let Some((_schema, cluster, database_url)) = postgres_and_cluster().await else {
        return;
    };
    // Subscribe on a node that does not own the deny list, so the
    // announcement has to cross the cluster bus.
    let writer = cluster.owner_of("authkit:{denied}");
    let other = cluster.ports().into_iter().find(|&p| p != writer).unwrap();
    revocation_reaches_every_instance(&[
        ("DATABASE_URL", &database_url),
        ("REDIS_URL", &cluster.url_starting_at(other)),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_reaches_every_instance_with_postgres_alone() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    revocation_reaches_every_instance(&[("DATABASE_URL", &database_url)]).await;
}

/// Waits (a hang guard, not a timing assertion) until `server` logged a
/// line containing `text`.
async fn wait_for_log(server: &Server, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log().iter().any(|line| line.contains(text)) {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never logged {text:?}",
            server.base
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every pub/sub connection killed (`CLIENT KILL TYPE pubsub`): the
/// instances say so at WARN, poll the shared list meanwhile, and still
/// refuse a revoked token within a second; then they subscribe again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_converges_by_polling_while_the_channel_is_down() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    let redis_url = fresh_redis_db(&redis_url, CHANNEL_DOWN_REDIS_DB).await;
    let [a, b, c] = start_three(&database_url, &redis_url);
    let http = reqwest::Client::new();
    let client = Client { http: http.clone() };
    let email = format!("{}@example.com", common::unique_name("chandown"));
    assert_eq!(
        sign_up(&http, &a, &email).await.status(),
        StatusCode::CREATED
    );
    let (access, _) = sign_in_tokens(&client, &a, &email).await;
    assert_accepted(&http, &[&a, &b, &c], &access).await;

    let redis = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        killed >= 3,
        "each instance had a pub/sub connection: {killed}"
    );
    const DOWN: &str = "revocation channel down";
    for server in [&a, &b, &c] {
        wait_for_log(server, DOWN).await;
    }
    // The publish of this revocation reaches no one: only polling can
    // carry it within the second (resubscribing waits longer).
    assert_eq!(
        post_bearer(&http, &a, "/api/v1/auth/custom-logout/", &access).await,
        StatusCode::NO_CONTENT
    );
    let since = std::time::Instant::now();
    assert_refused_within(&http, &[&b, &c], &access, since, "logout, channel down").await;
    for server in [&a, &b, &c] {
        let warnings = server.log().iter().filter(|l| l.contains(DOWN)).count();
        assert_eq!(warnings, 1, "{}: one warning per outage", server.base);
        assert!(
            server
                .log()
                .iter()
                .any(|l| l.contains(DOWN) && l.contains("WARN")),
            "{}: the outage is logged at WARN",
            server.base
        );
    }

    // The channel comes back, and carries the next revocation.
    for server in [&a, &b, &c] {
        wait_for_log(server, "revocation channel up again").await;
    }
    let (again, _) = sign_in_tokens(&client, &b, &email).await;
    assert_accepted(&http, &[&a, &b, &c], &again).await;
    assert_eq!(
        post_bearer(&http, &b, "/api/v1/auth/custom-logout/", &again).await,
        StatusCode::NO_CONTENT
    );
    let since = std::time::Instant::now();
    assert_refused_within(&http, &[&a, &c], &again, since, "logout, channel back").await;
    a.stop();
    b.stop();
    c.stop();
}

/// PostgreSQL in a schema of its own and a Redis Cluster started for the
/// test, or `None` when either is missing (the helpers said why).
async fn postgres_and_cluster()
-> Option<(common::SchemaGuard, common::cluster::RedisCluster, String)> {
    let (_store, schema) = common::postgres_store().await?;
    let cluster = tokio::task::spawn_blocking(common::cluster::start_or_skip)
        .await
        .unwrap()?;
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    Some((schema, cluster, database_url))
}
