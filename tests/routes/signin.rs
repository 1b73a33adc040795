//! `POST /signin/`: cookies, equal failures, limits, disabled users, login CSRF.

use std::time::Duration;

use axum::body::Body;
use axum_authkit::LimitSettings;
use axum_authkit::limits::Limit;
use http::{Request, StatusCode, header};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn signin_sets_cookies_and_hides_which_part_was_wrong() {
    let h = harness();
    h.signup("s@example.com").await;
    let ok = h.signin("S@Example.com", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert!(ok.cookie("access_token").is_some() && ok.cookie("refresh_token").is_some());
    let wrong = h.signin("s@example.com", "wrong password here").await;
    let unknown = h.signin("nobody@example.com", "wrong password here").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.status, unknown.status);
    let missing = h
        .post("/signin/", json!({"login": "s@example.com"}), None)
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(missing.json["errors"]["password"].is_array());
}

#[tokio::test]
async fn signin_failures_are_rate_limited_per_login() {
    let h = harness();
    h.signup("r@example.com").await;
    for _ in 0..5 {
        assert_error(
            &h.signin("r@example.com", "wrong password here").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let limited = h.signin("R@example.com", PASSWORD).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry));
    // Another login is not affected.
    h.signup("other@example.com").await;
    assert_eq!(
        h.signin("other@example.com", PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn success_resets_the_login_counter_and_ip_limit_applies() {
    let h = harness_with(|b| {
        b.with_limits(LimitSettings {
            signin_failures_per_ip: Limit::new(3, Duration::from_secs(60)),
            signups_per_ip: Limit::new(2, Duration::from_secs(60)),
            ..LimitSettings::default()
        })
    });
    h.signup("ip1@example.com").await;
    h.signup("ip2@example.com").await;
    let third = h
        .post("/signup/", json!({"email": "ip3@example.com", "password": PASSWORD, "name": "Jo", "captcha": "ok"}), None)
        .await;
    assert_error(&third, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(third.headers.get(header::RETRY_AFTER).is_some());
    for login in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(
            h.signin(login, "wrong password here").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Same address, fresh login: the per-address limit answers.
    assert_error(
        &h.signin("ip1@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}

#[tokio::test]
async fn disabled_users_cannot_sign_in_or_refresh() {
    let h = harness();
    let s = h.signup("d@example.com").await;
    let id = s.json["id"].as_str().unwrap().to_owned();
    h.auth.users().set_disabled(&id, true).await.unwrap();
    assert_error(
        &h.signin("d@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let r = h.refresh_after(&s).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn signin_works_with_a_garbage_access_cookie() {
    let h = harness();
    h.signup("g@example.com").await;
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::COOKIE,
            "access_token=garbage.token.here; refresh_token=junk",
        )
        .body(Body::from(
            json!({"login": "g@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn login_csrf_is_refused() {
    let h = harness();
    h.signup("x@example.com").await;
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(
            json!({"login": "x@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_error(&h.send(req).await, StatusCode::FORBIDDEN, "csrf_failed");
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(
            json!({"login": "x@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::NO_CONTENT);
}
