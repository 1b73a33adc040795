//! End to end: the example binary on a random loopback port, driven by a real
//! HTTP client with a cookie jar, through the whole seed flow, then a restart
//! on the same SQLite file.

mod common;
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

/// A request helper: method, path, optional JSON body, through `http`.
async fn call(
    http: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, server.url(&format!("/api/v1/auth{path}")));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The account lifecycle over real HTTP: sessions, e-mail change, password
/// change, password reset, session revoke, the 404/405 rule, deletion.
async fn lifecycle(server: &Server, tag: &str) {
    use reqwest::Method;
    let email = format!("life.{tag}.{}@example.com", std::process::id());
    let new_email = format!("moved.{tag}.{}@example.com", std::process::id());
    let (jar, other_jar) = (Arc::new(Jar::default()), Arc::new(Jar::default()));
    let (http, other) = (client(&jar), client(&other_jar));
    let signup = json!({"email": email, "password": PASSWORD, "name": "Life", "captcha": "t"});
    assert_eq!(
        call(&http, server, Method::POST, "/signup/", Some(signup))
            .await
            .0,
        StatusCode::CREATED
    );
    signin_then_account(&other, server, &email).await;

    // Two sessions, newest first, this one current.
    let (status, list) = call(&http, server, Method::GET, "/sessions/", None).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // E-mail change: code to the new address, confirm, the token carries it.
    let body = json!({"new_email": new_email, "password": PASSWORD});
    assert_eq!(
        call(&http, server, Method::POST, "/change-email/", Some(body))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let code = server.code_of("email_change_code", &new_email);
    let body = json!({"verification_code": code});
    let (status, user) = call(
        &http,
        server,
        Method::POST,
        "/change-email/confirm/",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], new_email.as_str());
    let me: Value = http
        .get(server.url("/api/v1/account/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], new_email.as_str());

    // Password change: this session continues, the other ends.
    let new_password = format!("{PASSWORD} and more");
    let body = json!({"current_password": PASSWORD, "new_password": new_password});
    assert_eq!(
        call(&http, server, Method::POST, "/change-password/", Some(body))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(server.url("/api/v1/account/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&other, server, Method::POST, "/custom-refresh/", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "the other session ended"
    );

    // Password reset: 202, the code, a new session; every earlier one ends.
    let body = json!({"email": new_email, "captcha": "t"});
    let (status, _) = call(&other, server, Method::POST, "/password-reset/", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = server.code_of("password_reset", &new_email);
    let body = json!({"email": new_email, "code": code, "new_password": PASSWORD});
    assert_eq!(
        call(
            &other,
            server,
            Method::POST,
            "/password-reset/confirm/",
            Some(body)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&http, server, Method::POST, "/custom-refresh/", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "the reset ended the earlier session"
    );

    // Revoking another session of the user, and a stranger's id.
    let (jar3, jar4) = (Arc::new(Jar::default()), Arc::new(Jar::default()));
    let (third, fourth) = (client(&jar3), client(&jar4));
    signin_then_account(&third, server, &new_email).await;
    signin_then_account(&fourth, server, &new_email).await;
    let (_, list) = call(&third, server, Method::GET, "/sessions/", None).await;
    let victim = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &third,
        server,
        Method::DELETE,
        &format!("/sessions/{victim}/"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(
        &third,
        server,
        Method::DELETE,
        "/sessions/not-a-session/",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Unknown paths and methods under the prefix.
    let (status, body) = call(&third, server, Method::GET, "/nowhere/", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let res = third
        .get(server.url("/api/v1/auth/signin/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.headers().contains_key("allow"));

    // Deletion: 204, gone, and the address can sign up again.
    let body = json!({"password": PASSWORD});
    assert_eq!(
        call(&third, server, Method::DELETE, "/account/", Some(body))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        third
            .get(server.url("/api/v1/account/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let again = json!({"email": new_email, "password": PASSWORD, "name": "Again", "captcha": "t"});
    assert_eq!(
        call(&fourth, server, Method::POST, "/signup/", Some(again))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn account_lifecycle_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("authkit-e2e-life-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("life.db").display());
    let server = Server::start(&[("DATABASE_URL", &db)]);
    lifecycle(&server, "sqlite").await;
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn account_lifecycle_on_postgres_and_redis() {
    let (Some(pg), Some(redis)) = (common::postgres_url().await, common::redis_url().await) else {
        return;
    };
    let schema = common::unique_name("e2e_life");
    let sep = if pg.contains('?') { '&' } else { '?' };
    let database_url = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    {
        let store = axum_authkit::store::PostgresStore::connect_in_schema(&pg, &schema)
            .await
            .unwrap();
        store.pool().close().await;
    }
    let server = Server::start(&[("DATABASE_URL", &database_url), ("REDIS_URL", &redis)]);
    lifecycle(&server, "pgredis").await;
    server.stop();
    let store = axum_authkit::store::PostgresStore::connect(&pg)
        .await
        .unwrap();
    let _ = store.drop_schema(&schema).await;
}
