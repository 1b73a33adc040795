//! `POST /custom-refresh/`: rotation and reuse detection.

use std::time::Duration;

use axum::body::Body;
use axum_authkit::SessionSettings;
use http::{Request, StatusCode, header};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let h = harness_with(|b| {
        b.with_session_settings(SessionSettings {
            reuse_grace: Duration::from_millis(200),
            ..SessionSettings::default()
        })
    });
    let s = h.signup("f@example.com").await;
    let old = s.cookie("refresh_token").unwrap();
    let r = h.post("/custom-refresh/", json!({}), Some(&old)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let new = r.cookie("refresh_token").unwrap();
    assert_ne!(new, old);
    assert!(r.cookie("access_token").is_some());
    // Without a body or content type, as the API page's curl does.
    let bare = h
        .send(
            Request::post("/api/v1/auth/custom-refresh")
                .header(header::COOKIE, &new)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bare.status, StatusCode::NO_CONTENT);
    let newest = bare.cookie("refresh_token").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reuse = h.post("/custom-refresh/", json!({}), Some(&old)).await;
    assert_error(&reuse, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    assert!(
        reuse
            .cookies()
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    );
    // The session is gone: the newest token fails too.
    assert_error(
        &h.post("/custom-refresh/", json!({}), Some(&newest)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_error(
        &h.post("/custom-refresh/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_error(
        &h.post("/custom-refresh/", json!({}), Some("refresh_token=garbage"))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
}
