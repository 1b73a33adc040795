//! A rolling signing-key rotation with no downtime: three example servers
//! share one PostgreSQL schema and one refresh secret, and restart one at a
//! time, in three phases:
//!
//! 1. *publish*: the new key joins as verify-only;
//! 2. *activate*: the new key signs, the old one is verify-only;
//! 3. *retire*: once the old key's last token has expired, it goes.
//!
//! A client that keeps calling (with cookies, with a Bearer token, and by
//! refreshing) never gets a `401`; a token of the old key is refused once
//! the key is gone.
#![cfg(feature = "postgres")]

mod common;
#[path = "common/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use server::Server;
use tokio::sync::RwLock;

const PASSWORD: &str = "correct horse battery staple";
const ACCESS_TTL_SECS: u64 = 2;
const LEEWAY_SECS: u64 = 1;
/// Shared by every instance in every phase: refresh successors do not depend
/// on the signing key.
const REFRESH_SECRET: &str = "key-rotation-test-refresh-secret-0123456789";

const OLD_PRIVATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_private.pem"
);
const OLD_PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ed25519_public.pem");
const NEW_PRIVATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_next_private.pem"
);
const NEW_PUBLIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_next_public.pem"
);

/// An instance's key files: the signing key, and the verify-only keys.
#[derive(Clone, Copy, Debug)]
struct Keys {
    signing: &'static str,
    verify: &'static str,
}

const BEFORE: Keys = Keys {
    signing: OLD_PRIVATE,
    verify: "",
};
const PUBLISHED: Keys = Keys {
    signing: OLD_PRIVATE,
    verify: NEW_PUBLIC,
};
const ACTIVATED: Keys = Keys {
    signing: NEW_PRIVATE,
    verify: OLD_PUBLIC,
};
const RETIRED: Keys = Keys {
    signing: NEW_PRIVATE,
    verify: "",
};

fn start(database_url: &str, keys: Keys) -> Server {
    Server::start(&[
        ("DATABASE_URL", database_url),
        ("JWT_PRIVATE_KEY_FILE", keys.signing),
        ("JWT_VERIFY_KEY_FILES", keys.verify),
        ("REFRESH_SECRET", REFRESH_SECRET),
        ("ACCESS_TTL_SECS", &ACCESS_TTL_SECS.to_string()),
        ("CLOCK_LEEWAY_SECS", &LEEWAY_SECS.to_string()),
    ])
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// `name`'s value among the cookies `jar` would send to `url`.
fn cookie(jar: &Jar, url: &str, name: &str) -> Option<String> {
    let header = jar.cookies(&url.parse().unwrap())?;
    header.to_str().ok()?.split("; ").find_map(|pair| {
        pair.strip_prefix(name)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// The instances a client may call: `None` while one restarts. A request
/// holds the read lock, so taking an instance out waits for its request,
/// as a load balancer drains a backend.
type Live = Arc<RwLock<Vec<Option<String>>>>;

/// What the client saw.
#[derive(Debug, Default)]
struct Seen {
    requests: usize,
    /// Every answer that was not the expected success.
    failures: Vec<String>,
    kids: Vec<String>,
}

/// Calls in rounds until `stop`. A round refreshes on one instance (each in
/// turn), then calls the account on every instance with the fresh access
/// token as Bearer (no automatic refresh can hide a refusal), then with the
/// cookies (the layer refreshes them when the access cookie runs out).
async fn client(live: Live, jar: Arc<Jar>, stop: Arc<AtomicBool>) -> Seen {
    let with_cookies = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let bare = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut seen = Seen::default();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        {
            let instances = live.read().await;
            let up: Vec<&String> = instances.iter().flatten().collect();
            let refresher = up[round % up.len()];
            let res = with_cookies
                .post(format!("{refresher}/api/v1/auth/custom-refresh/"))
                .send()
                .await;
            seen.record("refresh", res).await;
            if let Some(access) = cookie(&jar, refresher, "access_token") {
                let kid = kid(&access);
                if seen.kids.last() != Some(&kid) {
                    seen.kids.push(kid);
                }
                for base in &up {
                    let res = bare
                        .get(format!("{base}/api/v1/account/"))
                        .bearer_auth(&access)
                        .send()
                        .await;
                    seen.record("account (Bearer)", res).await;
                }
            }
            for base in &up {
                let res = with_cookies
                    .get(format!("{base}/api/v1/account/"))
                    .send()
                    .await;
                seen.record("account (cookies)", res).await;
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

impl Seen {
    async fn record(&mut self, what: &str, res: reqwest::Result<reqwest::Response>) {
        self.requests += 1;
        match res {
            Ok(res) if res.status().is_success() => {}
            Ok(res) => {
                let status = res.status();
                let url = res.url().to_string();
                let body = res.text().await.unwrap_or_default();
                self.failures.push(format!("{what} {url}: {status} {body}"));
            }
            Err(e) => self.failures.push(format!("{what}: {e}")),
        }
    }
}

/// Restarts every instance, one at a time, with `keys`.
async fn roll(servers: &mut [Option<Server>], live: &Live, database_url: &str, keys: Keys) {
    for (i, slot) in servers.iter_mut().enumerate() {
        live.write().await[i] = None;
        let old = slot.take().unwrap();
        let url = database_url.to_owned();
        let new = tokio::task::spawn_blocking(move || {
            old.stop();
            start(&url, keys)
        })
        .await
        .unwrap();
        live.write().await[i] = Some(new.base.clone());
        *slot = Some(new);
        // Let the client call the mixed fleet for a while.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_keys_roll_over_three_instances_without_a_401() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let sep = if pg_url.contains('?') { '&' } else { '?' };
    let database_url = format!(
        "{pg_url}{sep}options=-c%20search_path%3D{}",
        schema.schema()
    );

    let mut servers: Vec<Option<Server>> = {
        let url = database_url.clone();
        tokio::task::spawn_blocking(move || (0..3).map(|_| Some(start(&url, BEFORE))).collect())
            .await
            .unwrap()
    };
    let bases: Vec<String> = servers.iter().flatten().map(|s| s.base.clone()).collect();
    let http = reqwest::Client::new();
    let email = format!("{}@example.com", common::unique_name("keyroll"));
    let res = http
        .post(format!("{}/api/v1/auth/signup/", bases[0]))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Roll", "captcha": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // The client signs in once; its cookies carry it through the roll.
    let jar = Arc::new(Jar::default());
    let res = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
        .post(format!("{}/api/v1/auth/signin/", bases[1]))
        .json(&json!({"login": email, "password": PASSWORD, "captcha": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // An access token of the old key, held to the end.
    let held = cookie(&jar, &bases[1], "access_token").unwrap();
    let old_kid = kid(&held);

    let live: Live = Arc::new(RwLock::new(bases.into_iter().map(Some).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let calls = tokio::spawn(client(live.clone(), jar.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Phase 1, publish: every instance verifies the new key before any signs with it.
    roll(&mut servers, &live, &database_url, PUBLISHED).await;
    // Phase 2, activate: the new key signs; the old one still verifies.
    roll(&mut servers, &live, &database_url, ACTIVATED).await;
    // Phase 3, retire: once the old key's last token is past `exp` and the
    // leeway (no instance has signed with it since phase 2 ended).
    tokio::time::sleep(Duration::from_secs(ACCESS_TTL_SECS + LEEWAY_SECS + 1)).await;
    roll(&mut servers, &live, &database_url, RETIRED).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::SeqCst);
    let seen = calls.await.unwrap();
    assert!(
        seen.failures.is_empty(),
        "{} of {} calls failed: {:#?}",
        seen.failures.len(),
        seen.requests,
        seen.failures
    );
    // The client really went from the old key to the new one.
    assert_eq!(seen.kids.first(), Some(&old_kid), "kids: {:?}", seen.kids);
    let new_kid = seen.kids.last().unwrap();
    assert_ne!(new_kid, &old_kid, "kids: {:?}", seen.kids);
    assert!(seen.requests > 50, "only {} calls", seen.requests);

    // The old key's token is refused everywhere, for its key.
    for server in servers.iter().flatten() {
        let res = http
            .get(server.url("/api/v1/account/"))
            .bearer_auth(&held)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("unknown key"),
            "refused for its key: {challenge}"
        );
        let jwks: Value = http
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(
            kids,
            [new_kid.as_str()],
            "the JWKS publishes the new key only"
        );
    }
    tokio::task::spawn_blocking(move || {
        for server in servers.into_iter().flatten() {
            server.stop();
        }
    })
    .await
    .unwrap();
}
