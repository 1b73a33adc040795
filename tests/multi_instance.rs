//! Two example servers on two loopback ports, sharing one PostgreSQL schema
//! (users, and refresh families) and one Redis database (families and rate
//! limits): sign-ins, refreshes and limits must agree across them.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod common;
#[path = "common/server.rs"]
mod server;

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::Server;

const PASSWORD: &str = "correct horse battery staple";
/// A Redis database of this test's own, flushed before use.
const REDIS_DB: u32 = 7;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_sign_ins_refreshes_and_limits() {
    let Some((_store, schema)) = common::postgres_store().await else {
        return;
    };
    let Some(redis_url) = common::redis_url().await else {
        return;
    };
    let pg_url = common::postgres_url().await.unwrap();
    let database_url = url_in_schema(&pg_url, schema.schema());
    let redis_url = fresh_redis_db(&redis_url, REDIS_DB).await;
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("REDIS_URL", redis_url.as_str()),
    ];
    let a = Server::start(&env);
    let b = Server::start(&env);
    let c = Client {
        http: reqwest::Client::new(),
    };
    let email = format!("{}@example.com", common::unique_name("multi"));

    let res = c
        .http
        .post(a.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Multi", "captcha": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // Sign in on A; the access token works on B without any store.
    let res = c.signin(&a, &email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(&res, "access_token").unwrap();
    let t1 = set_cookie(&res, "refresh_token").unwrap();
    let me = c
        .http
        .get(b.url("/api/v1/account/"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], email.as_str());

    // Refresh on B, then again on A.
    let res = c.refresh(&b, &t1).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t2 = set_cookie(&res, "refresh_token").unwrap();
    let res = c.refresh(&a, &t2).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let t3 = set_cookie(&res, "refresh_token").unwrap();

    // An old token (two generations back) on B: theft; the family dies for both.
    let res = c.refresh(&b, &t1).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.refresh(&a, &t3).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.refresh(&b, &t3).await.status(), StatusCode::UNAUTHORIZED);

    // A burst of refreshes of one cookie, split across A and B: no fork, no
    // false revocation.
    let res = c.signin(&b, &email, PASSWORD).await;
    let token = set_cookie(&res, "refresh_token").unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, url, token) = (
            c.http.clone(),
            if i % 2 == 0 { a.url("") } else { b.url("") },
            token.clone(),
        );
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
        c.refresh(&a, &successor).await.status(),
        StatusCode::NO_CONTENT,
        "the family is live"
    );

    // Sign-in failures for one login, spread over both: 429 at the same total
    // as on one instance (5 failures, then limited).
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            c.signin(server, &email, "wrong password!!").await.status(),
            StatusCode::UNAUTHORIZED,
            "failure {i}"
        );
    }
    for server in [&a, &b] {
        let res = c.signin(server, &email, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(res.headers().get("retry-after").is_some());
    }
    a.stop();
    b.stop();
}
