//! `POST /custom-logout/` and `POST /logout-all/`.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn logout_always_204_and_revokes_the_session() {
    let h = harness();
    let s = h.signup("l@example.com").await;
    let r = h
        .post("/custom-logout/", json!({}), Some(&s.session()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for name in ["access_token", "refresh_token"] {
        let c = r
            .cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap();
        assert!(c.contains("Max-Age=0") && c.contains("Path=/"), "{c}");
    }
    let refresh = h.refresh_after(&s).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // This process refuses the sign-in's access token at once.
    assert_eq!(
        h.account(&s.cookie("access_token").unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
    // No credentials, garbage, expired: still 204, never a 401 loop.
    assert_eq!(
        h.post("/custom-logout/", json!({}), None).await.status,
        StatusCode::NO_CONTENT
    );
    let garbage = h
        .post(
            "/custom-logout",
            json!({}),
            Some("access_token=garbage; refresh_token=junk"),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NO_CONTENT);
    let bare = h
        .send(
            Request::post("/api/v1/auth/custom-logout/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bare.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_all_revokes_every_sign_in() {
    let h = harness();
    let first = h.signup("all@example.com").await;
    let second = h.signin("all@example.com", PASSWORD).await;
    assert_error(
        &h.post("/logout-all/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
    let r = h
        .post("/logout-all/", json!({}), Some(&second.session()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.clears_cookies());
    for s in [&first, &second] {
        let refresh = h.refresh_after(s).await;
        assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
        assert_eq!(
            h.account_bearer(&s.access_token()).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
