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

/// Wrong codes are capped per user and client network over a day, across
/// fresh codes; another network (the owner's) is not locked out.
#[tokio::test]
async fn wrong_codes_are_capped_per_user_and_network() {
    let h = harness_with(|b| {
        b.with_limits(axum_authkit::LimitSettings {
            wrong_codes_per_user: axum_authkit::limits::Limit::new(6, Duration::from_secs(86_400)),
            code_requests_per_user: axum_authkit::limits::Limit::new(100, Duration::from_secs(60)),
            mails_per_address: axum_authkit::limits::Limit::new(100, Duration::from_secs(60)),
            ..Default::default()
        })
    });
    let s = h.signup("capped@example.com").await;
    let token = s.access_token();
    let attacker = [203, 0, 113, 9];
    let mut wrong_tries = 0;
    // Three codes, two wrong tries each: the cap (6) is reached across codes,
    // where each code alone (5 tries) would still allow more.
    for _ in 0..3 {
        let resend = h
            .call(http::Method::POST, "/resend-verification/")
            .bearer(&token)
            .peer(attacker)
            .send()
            .await;
        assert_eq!(resend.status, StatusCode::NO_CONTENT, "{}", resend.json);
        let code = h.outbox.last_code("capped@example.com");
        for _ in 0..2 {
            let r = h
                .call(http::Method::POST, "/verify-email/")
                .bearer(&token)
                .peer(attacker)
                .json(json!({"verification_code": wrong(&code)}))
                .send()
                .await;
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");
            wrong_tries += 1;
        }
    }
    assert_eq!(wrong_tries, 6);
    let code = h.outbox.last_code("capped@example.com");
    let capped = h
        .call(http::Method::POST, "/verify-email/")
        .bearer(&token)
        .peer(attacker)
        .json(json!({"verification_code": code}))
        .send()
        .await;
    assert_error(&capped, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(capped.headers.contains_key(header::RETRY_AFTER));
    // The owner, from another network, still verifies with the same code.
    let owner = h
        .call(http::Method::POST, "/verify-email/")
        .bearer(&token)
        .peer([198, 51, 100, 1])
        .json(json!({"verification_code": code}))
        .send()
        .await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.json);
}
