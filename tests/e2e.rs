//! End to end: the example binary on a random loopback port, driven by a real
//! HTTP client with a cookie jar, through the whole seed flow, then a restart
//! on the same SQLite file.

#[path = "common/server.rs"]
mod server;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use server::Server;

const PASSWORD: &str = "correct horse battery staple";

fn client(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
}

fn cookie(jar: &Jar, server: &Server, name: &str) -> Option<String> {
    let header = jar.cookies(&server.url("/").parse().unwrap())?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// Signs in (the client's jar takes the cookies), then reads the account.
async fn signin_then_account(http: &reqwest::Client, server: &Server, email: &str) -> Value {
    let res = http
        .post(server.url("/api/v1/auth/signin/"))
        .json(&json!({"login": email, "password": PASSWORD, "captcha": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = http
        .get(server.url("/api/v1/account/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn seed_flow_then_restart_on_the_same_database() {
    let dir = std::env::temp_dir().join(format!("authkit-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("e2e.db").display());
    let server = Server::start(&[("DATABASE_URL", &db)]);
    let jar = Arc::new(Jar::default());
    let http = client(&jar);
    let email = "e2e.user@example.com";

    // signup
    let res = http
        .post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "E2E User", "captcha": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], email);
    assert_eq!(body["email_verified"], false);
    let id = body["id"].as_str().unwrap().to_owned();

    // signin, then account
    let account = signin_then_account(&http, &server, email).await;
    assert_eq!(
        account,
        json!({"id": id, "email": email, "name": "E2E User"})
    );
    let anonymous = reqwest::get(server.url("/api/v1/account/")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // verify-email, with the code from the log and the Bearer header of the API page
    let code = server.code_for(email);
    let access = cookie(&jar, &server, "access_token").unwrap();
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/auth/verify-email/"))
        .bearer_auth(&access)
        .json(&json!({"verification_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["email_verified"], true);

    // custom-refresh
    let old_refresh = cookie(&jar, &server, "refresh_token").unwrap();
    let res = http
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let new_refresh = cookie(&jar, &server, "refresh_token").unwrap();
    assert_ne!(old_refresh, new_refresh);

    // The old refresh token after the grace window (10 s): theft, the family is revoked.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let replay = reqwest::Client::new()
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .header("Cookie", format!("refresh_token={old_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["code"],
        "invalid_refresh_token"
    );
    let res = http
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );

    // custom-logout
    let res = http
        .post(server.url("/api/v1/auth/custom-logout/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(cookie(&jar, &server, "access_token").is_none());

    // Restart on the same database file: the account is still there.
    server.stop();
    let server = Server::start(&[("DATABASE_URL", &db)]);
    let jar = Arc::new(Jar::default());
    let http = client(&jar);
    let account = signin_then_account(&http, &server, email).await;
    assert_eq!(account["id"], id.as_str());
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
