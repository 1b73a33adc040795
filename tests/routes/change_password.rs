//! `POST /change-password/`.

use axum::body::Body;
use axum_authkit::mail::MailKind;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::*;

fn body(current: &str, new: &str) -> Value {
    json!({"current_password": current, "new_password": new})
}

#[tokio::test]
async fn wrong_current_passwords_are_400_then_429() {
    let h = harness();
    let s = h.signup("cp@example.com").await;
    let cookie = s.session();
    assert_error(
        &h.post("/change-password/", body(PASSWORD, NEW_PASSWORD), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
    let bad_new = h
        .post("/change-password/", body(PASSWORD, "short"), Some(&cookie))
        .await;
    assert_error(&bad_new, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        bad_new.json["errors"]["new_password"].is_array(),
        "{}",
        bad_new.json
    );
    let max = h.auth.settings().limits().signin_failures_per_login.max;
    for _ in 0..max {
        let r = h
            .post(
                "/change-password/",
                body("not my password at all", NEW_PASSWORD),
                Some(&cookie),
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_password");
        assert!(
            r.json["errors"]["current_password"].is_array(),
            "{}",
            r.json
        );
        assert!(r.cookies().is_empty());
    }
    let limited = h
        .post(
            "/change-password/",
            body("not my password at all", NEW_PASSWORD),
            Some(&cookie),
        )
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers.get(header::RETRY_AFTER).is_some());
    // The right password waits too, and nothing changed.
    let right = h
        .post(
            "/change-password/",
            body(PASSWORD, NEW_PASSWORD),
            Some(&cookie),
        )
        .await;
    assert_error(&right, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(h.account(&cookie).await.status, StatusCode::OK);
    assert!(
        !h.outbox
            .all()
            .iter()
            .any(|m| m.kind == MailKind::PasswordChanged)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_cannot_walk_past_the_limit() {
    let h = harness();
    let s = h.signup("race@example.com").await;
    let token = s.access_token();
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = h.app.clone();
        let req = Request::post("/api/v1/auth/change-password/")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                body("not my password at all", NEW_PASSWORD).to_string(),
            ))
            .unwrap();
        tries.spawn(async move { app.oneshot(req).await.unwrap().status() });
    }
    let mut evaluated = 0;
    while let Some(status) = tries.join_next().await {
        match status.unwrap() {
            StatusCode::BAD_REQUEST => evaluated += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    let max = h.auth.settings().limits().signin_failures_per_login.max;
    assert!(
        (1..=max).contains(&evaluated),
        "{evaluated} of 20 concurrent tries were evaluated; the limit is {max}"
    );
}

#[tokio::test]
async fn a_change_keeps_this_session_and_ends_the_others() {
    let h = harness();
    let first = h.signup("keep@example.com").await;
    let this = h.signin("keep@example.com", PASSWORD).await;
    let third = h.signin("keep@example.com", PASSWORD).await;
    let ok = h
        .post(
            "/change-password/",
            body(PASSWORD, NEW_PASSWORD),
            Some(&this.session()),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.json);
    // New cookies for the same session, and they work.
    let (old_claims, new_claims) = (
        h.auth.verify(&this.access_token()).unwrap(),
        h.auth.verify(&ok.access_token()).unwrap(),
    );
    assert_eq!(old_claims.sid, new_claims.sid);
    assert_ne!(ok.cookie("refresh_token"), this.cookie("refresh_token"));
    assert_eq!(h.account(&ok.session()).await.status, StatusCode::OK);
    // The old refresh token of this session is refused; the new one works.
    assert_error(
        &h.refresh_after(&this).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_eq!(h.refresh_after(&ok).await.status, StatusCode::NO_CONTENT);
    // Every other session ended, its access tokens at once.
    for s in [&first, &third] {
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
    // The new password is the password now.
    assert_eq!(
        h.signin("keep@example.com", NEW_PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &h.signin("keep@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // A notice without a code.
    let notices: Vec<_> = h
        .outbox
        .to("keep@example.com")
        .into_iter()
        .filter(|m| m.kind == MailKind::PasswordChanged)
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].code, None);
}
