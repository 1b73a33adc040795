//! Tokens in the body (`with_tokens_in_body(true)`), for clients that cannot
//! read HttpOnly cookies; off by default.

use axum_authkit::mail::MailKind;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

fn on() -> Harness {
    harness_with(|b| b.with_tokens_in_body(true))
}

/// The body carries a working access token (and the refresh token when
/// `refresh`), the same as the cookies.
fn assert_tokens(h: &Harness, r: &Reply, refresh: bool) {
    let body = &r.json;
    let access = body["access_token"].as_str().expect("access_token");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(
        body["expires_in"].as_u64(),
        Some(h.auth.settings().access_ttl().as_secs()),
        "{body}"
    );
    assert!(h.auth.verify(access).is_ok());
    assert_eq!(access, r.access_token(), "the cookie holds the same token");
    if refresh {
        let token = body["refresh_token"].as_str().expect("refresh_token");
        assert_eq!(
            r.cookie("refresh_token").unwrap(),
            format!("refresh_token={token}")
        );
    } else {
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
}

fn refresh_token(r: &Reply) -> String {
    r.json["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sessions_hand_their_tokens_over_in_the_body() {
    let h = on();
    let signup = h.signup("tb@example.com").await;
    assert_eq!(signup.json["email"], "tb@example.com");
    assert_eq!(signup.json["email_verified"], false);
    assert!(signup.json["id"].is_string());
    assert_tokens(&h, &signup, true);

    let signin = h.signin("tb@example.com", PASSWORD).await;
    assert_eq!(signin.status, StatusCode::OK, "{}", signin.json);
    assert_tokens(&h, &signin, true);
    assert_eq!(signin.json.as_object().unwrap().len(), 4, "{}", signin.json);

    let code = h.outbox.last_code("tb@example.com");
    let verified = h
        .call(Method::POST, "/verify-email/")
        .bearer(signin.json["access_token"].as_str().unwrap())
        .json(json!({"verification_code": code}))
        .send()
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.json);
    assert_eq!(verified.json["email_verified"], true);
    assert_tokens(&h, &verified, false);

    let changed = h
        .post(
            "/change-password/",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            Some(&signin.session()),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert_tokens(&h, &changed, true);

    let r = h
        .post(
            "/password-reset/",
            json!({"email": "tb@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let code = h
        .outbox
        .wait_for("tb@example.com", MailKind::PasswordReset, 1)
        .await
        .code
        .unwrap();
    let reset = h
        .post(
            "/password-reset/confirm/",
            json!({"email": "tb@example.com", "code": code, "new_password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.json);
    assert_tokens(&h, &reset, true);

    let r = h
        .post(
            "/change-email/",
            json!({"new_email": "tb2@example.com", "password": PASSWORD}),
            Some(&reset.session()),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let code = h.outbox.last_code("tb2@example.com");
    let moved = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": code}),
            Some(&reset.session()),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.json);
    assert_eq!(moved.json["email"], "tb2@example.com");
    assert_tokens(&h, &moved, false);
}

async fn body_refresh(h: &Harness, token: &str, headers: &[(&str, &str)]) -> Reply {
    let mut call = h
        .call(Method::POST, "/custom-refresh/")
        .json(json!({"refresh_token": token}));
    for (name, value) in headers {
        call = call.header(name, value);
    }
    call.send().await
}

#[tokio::test]
async fn refresh_and_logout_take_the_token_from_the_body() {
    let h = on();
    let s = h.signup("body@example.com").await;
    let token = refresh_token(&s);
    let r = body_refresh(&h, &token, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_tokens(&h, &r, true);
    let next = refresh_token(&r);
    assert_ne!(next, token);
    // A request from another site that carries its token in the body rides
    // on no cookie: not refused.
    let r = body_refresh(
        &h,
        &next,
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let latest = refresh_token(&r);
    let access = r.json["access_token"].as_str().unwrap().to_owned();
    // A missing or garbage body token is an invalid refresh token.
    assert_error(
        &h.post("/custom-refresh/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_error(
        &body_refresh(&h, "garbage", &[]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );

    // Logout with the body token ends that session.
    let out = h
        .post("/custom-logout/", json!({"refresh_token": latest}), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_error(
        &body_refresh(&h, &latest, &[]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_eq!(h.account_bearer(&access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn off_by_default() {
    let h = harness();
    let s = h.signup("off@example.com").await;
    for key in ["access_token", "refresh_token", "token_type", "expires_in"] {
        assert!(s.json.get(key).is_none(), "{key} in {}", s.json);
    }
    let signin = h.signin("off@example.com", PASSWORD).await;
    assert_eq!(signin.status, StatusCode::NO_CONTENT);
    assert_eq!(signin.json, Value::Null);
    // A body refresh token is not accepted.
    let token = s
        .cookie("refresh_token")
        .unwrap()
        .trim_start_matches("refresh_token=")
        .to_owned();
    let r = body_refresh(&h, &token, &[]).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // Nor does a body token end a session.
    let out = h
        .post("/custom-logout/", json!({"refresh_token": token}), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(h.refresh_after(&s).await.status, StatusCode::NO_CONTENT);
}
