//! A running example server whose stores go away and come back: PostgreSQL
//! and Redis are reached through TCP proxies that the test cuts and restores.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod common;
#[path = "common/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::Server;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct horse battery staple";
const REDIS_DB: u32 = 8;

/// A TCP proxy that can be cut (every connection dropped, new ones closed at
/// once) and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (flag, list) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the peer sees the connection close
                }
                let upstream = upstream.clone();
                list.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy {
            port,
            up,
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
