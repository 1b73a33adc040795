//! `POST /password-reset/` and `POST /password-reset/confirm/`.

use axum_authkit::mail::MailKind;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn confirm_body(email: &str, code: &str, new_password: &str) -> Value {
    json!({"email": email, "code": code, "new_password": new_password})
}

#[tokio::test]
async fn reset_answers_the_same_for_known_and_unknown_addresses() {
    let h = harness();
    h.signup("known@example.com").await;
    let known = h
        .post(
            "/password-reset/",
            json!({"email": "known@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    let unknown = h
        .post(
            "/password-reset/",
            json!({"email": "unknown@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED, "{}", known.json);
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.json, unknown.json);
    assert!(known.json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(known.cookies().is_empty());
    // The code arrives off the request path, for the known address only.
    let mail = h
        .outbox
        .wait_for("known@example.com", MailKind::PasswordReset, 1)
        .await;
    let code = mail.code.expect("a reset mail carries a code");
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    assert!(h.outbox.to("unknown@example.com").is_empty());

    // Validation and captcha.
    let bad = h
        .post(
            "/password-reset/",
            json!({"email": "not an address", "captcha": "ok"}),
            None,
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(bad.json["errors"]["email"].is_array(), "{}", bad.json);
    let captcha = h
        .post(
            "/password-reset/",
            json!({"email": "known@example.com", "captcha": "bad"}),
            None,
        )
        .await;
    assert_error(&captcha, StatusCode::BAD_REQUEST, "captcha_failed");
}

#[tokio::test]
async fn reset_requests_are_limited_per_address() {
    let h = harness();
    for _ in 0..20 {
        let r = h
            .post(
                "/password-reset/",
                json!({"email": "nobody@example.com", "captcha": "ok"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let limited = h
        .post(
            "/password-reset/",
            json!({"email": "nobody@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

/// Asks for a reset of `email`'s password and returns the mailed code.
async fn reset_code(h: &Harness, email: &str) -> String {
    let n = h
        .outbox
        .to(email)
        .iter()
        .filter(|m| m.kind == MailKind::PasswordReset)
        .count();
    let r = h
        .post(
            "/password-reset/",
            json!({"email": email, "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    h.outbox
        .wait_for(email, MailKind::PasswordReset, n + 1)
        .await
        .code
        .expect("a code")
}

#[tokio::test]
async fn reset_confirm_starts_a_new_session_and_ends_the_others() {
    let h = harness();
    let first = h.signup("rc@example.com").await;
    let second = h.signin("rc@example.com", PASSWORD).await;
    let id = first.json["id"].as_str().unwrap().to_owned();
    assert!(
        !h.auth
            .users()
            .user_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    let code = reset_code(&h, "rc@example.com").await;

    let ok = h
        .post(
            "/password-reset/confirm/",
            confirm_body("RC@example.com", &code, NEW_PASSWORD),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.json);
    assert!(ok.cookie("access_token").is_some() && ok.cookie("refresh_token").is_some());
    assert_eq!(h.account(&ok.session()).await.status, StatusCode::OK);
    assert_eq!(h.refresh_after(&ok).await.status, StatusCode::NO_CONTENT);

    // Earlier sessions: refresh refused, access tokens refused at once.
    for s in [&first, &second] {
        assert_error(
            &h.refresh_after(s).await,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
        );
        assert_eq!(
            h.account_bearer(&s.access_token()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The code proved the mailbox.
    assert!(
        h.auth
            .users()
            .user_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    // The new password signs in, the old one does not.
    assert_eq!(
        h.signin("rc@example.com", NEW_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &h.signin("rc@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // A notice without a code.
    let notice = h
        .outbox
        .wait_for("rc@example.com", MailKind::PasswordChanged, 1)
        .await;
    assert_eq!(notice.code, None);
    // The code was used up.
    let again = h
        .post(
            "/password-reset/confirm/",
            confirm_body("rc@example.com", &code, "yet another long passphrase"),
            None,
        )
        .await;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_code");
}

#[tokio::test]
async fn unknown_address_and_wrong_code_look_alike() {
    let h = harness();
    h.signup("wc@example.com").await;
    let code = reset_code(&h, "wc@example.com").await;
    let wrong_code = h
        .post(
            "/password-reset/confirm/",
            confirm_body("wc@example.com", wrong(&code), NEW_PASSWORD),
            None,
        )
        .await;
    let unknown = h
        .post(
            "/password-reset/confirm/",
            confirm_body("nobody@example.com", &code, NEW_PASSWORD),
            None,
        )
        .await;
    assert_error(&wrong_code, StatusCode::BAD_REQUEST, "invalid_code");
    assert_eq!(unknown.status, wrong_code.status);
    assert_eq!(unknown.json, wrong_code.json);
    // No pending code at all: the same again.
    h.signup("nocode@example.com").await;
    let none = h
        .post(
            "/password-reset/confirm/",
            confirm_body("nocode@example.com", "123456", NEW_PASSWORD),
            None,
        )
        .await;
    assert_eq!(none.json, wrong_code.json);
    let malformed = h
        .post(
            "/password-reset/confirm/",
            confirm_body("wc@example.com", "12345", NEW_PASSWORD),
            None,
        )
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(malformed.json["errors"]["code"].is_array());
}

#[tokio::test]
async fn the_fifth_wrong_code_burns_the_reset_code() {
    let h = harness();
    h.signup("burn@example.com").await;
    let code = reset_code(&h, "burn@example.com").await;
    for i in 1..=5 {
        let r = h
            .post(
                "/password-reset/confirm/",
                confirm_body("burn@example.com", wrong(&code), NEW_PASSWORD),
                None,
            )
            .await;
        if i < 5 {
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");
        } else {
            assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
        }
    }
    let right = h
        .post(
            "/password-reset/confirm/",
            confirm_body("burn@example.com", &code, NEW_PASSWORD),
            None,
        )
        .await;
    assert_error(&right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(right.cookies().is_empty());
    assert_error(
        &h.signin("burn@example.com", NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
}

#[tokio::test]
async fn a_bad_new_password_neither_uses_the_code_nor_counts_a_try() {
    let h = harness();
    h.signup("np@example.com").await;
    let code = reset_code(&h, "np@example.com").await;
    for bad in ["short", "password1234", "x".repeat(129).as_str()] {
        for attempt in [code.as_str(), wrong(&code)] {
            let r = h
                .post(
                    "/password-reset/confirm/",
                    confirm_body("np@example.com", attempt, bad),
                    None,
                )
                .await;
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
            assert!(r.json["errors"]["new_password"].is_array(), "{}", r.json);
            assert!(r.cookies().is_empty());
        }
    }
    // Six requests went by; four wrong tries now still leave the fifth.
    for _ in 0..4 {
        let r = h
            .post(
                "/password-reset/confirm/",
                confirm_body("np@example.com", wrong(&code), NEW_PASSWORD),
                None,
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");
    }
    let ok = h
        .post(
            "/password-reset/confirm/",
            confirm_body("np@example.com", &code, NEW_PASSWORD),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.json);
}

#[tokio::test]
async fn a_new_reset_code_replaces_the_pending_one() {
    let h = harness();
    h.signup("twice@example.com").await;
    let first = reset_code(&h, "twice@example.com").await;
    let second = reset_code(&h, "twice@example.com").await;
    if first != second {
        let old = h
            .post(
                "/password-reset/confirm/",
                confirm_body("twice@example.com", &first, NEW_PASSWORD),
                None,
            )
            .await;
        assert_error(&old, StatusCode::BAD_REQUEST, "invalid_code");
    }
    let ok = h
        .post(
            "/password-reset/confirm/",
            confirm_body("twice@example.com", &second, NEW_PASSWORD),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.json);
}
