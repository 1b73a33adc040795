//! `POST /verify-email/` and `POST /resend-verification/`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum_authkit::CodeSettings;
use http::{Request, StatusCode, header};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn verify_email_flow() {
    let h = harness();
    let s = h.signup("v@example.com").await;
    let code = h.outbox.last_code("v@example.com");
    let access = s.cookie("access_token").unwrap();
    let token = s.access_token();

    let anon = h
        .post("/verify-email/", json!({"verification_code": code}), None)
        .await;
    assert_error(&anon, StatusCode::UNAUTHORIZED, "not_authenticated");
    let malformed = h
        .post(
            "/verify-email/",
            json!({"verification_code": "12ab"}),
            Some(&access),
        )
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "invalid_request");
    let r = h
        .post(
            "/verify-email/",
            json!({"verification_code": wrong(&code)}),
            Some(&access),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");

    // Bearer works as the API page shows.
    let req = Request::post("/api/v1/auth/verify-email/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"verification_code": code}).to_string()))
        .unwrap();
    let ok = h.send(req).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["email_verified"], true);
    let fresh = ok.cookie("access_token").unwrap();
    let claims = h.auth.verify(&ok.access_token()).unwrap();
    assert!(claims.email_verified);
    // Verified users posting again get 200; the code was used once.
    let again = h
        .post(
            "/verify-email/",
            json!({"verification_code": "123456"}),
            Some(&fresh),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code() {
    let h = harness();
    let s = h.signup("b@example.com").await;
    let code = h.outbox.last_code("b@example.com");
    let access = s.cookie("access_token").unwrap();
    for i in 1..=5 {
        let r = h
            .post(
                "/verify-email/",
                json!({"verification_code": wrong(&code)}),
                Some(&access),
            )
            .await;
        let expected = if i < 5 {
            "invalid_code"
        } else {
            "too_many_attempts"
        };
        assert_eq!(r.code(), expected, "attempt {i}: {}", r.json);
    }
    let right = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&access),
        )
        .await;
    assert_error(&right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // A new code works.
    let resend = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    let code = h.outbox.last_code("b@example.com");
    let ok = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&access),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let h = harness_with(|b| {
        b.with_code_settings(CodeSettings {
            ttl: Duration::from_millis(300),
            ..CodeSettings::default()
        })
    });
    let s = h.signup("e@example.com").await;
    let code = h.outbox.last_code("e@example.com");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&s.cookie("access_token").unwrap()),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "code_expired");
}

#[tokio::test]
async fn a_mail_failure_keeps_the_signup_but_fails_the_resend() {
    let h = harness_with(|b| b.with_mailer(Arc::new(DownMailer)));
    // The account exists and is signed in; only the mail is missing.
    let s = h.signup("m@example.com").await;
    let access = s.cookie("access_token").unwrap();
    assert_eq!(h.account(&access).await.status, StatusCode::OK);
    // Asking for the code again says it did not go out.
    let r = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable");
}

#[tokio::test]
async fn resend_replaces_the_code_and_is_rate_limited() {
    let h = harness();
    let s = h.signup("re@example.com").await;
    let first = h.outbox.last_code("re@example.com");
    let access = s.cookie("access_token").unwrap();
    assert_eq!(
        h.post("/resend-verification", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let second = h.outbox.last_code("re@example.com");
    if first != second {
        let old = h
            .post(
                "/verify-email/",
                json!({"verification_code": first}),
                Some(&access),
            )
            .await;
        assert_error(&old, StatusCode::BAD_REQUEST, "invalid_code");
    }
    assert_eq!(
        h.post("/resend-verification/", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.post("/resend-verification/", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let limited = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_error(
        &h.post("/resend-verification/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
}
