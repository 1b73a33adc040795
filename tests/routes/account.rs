//! `DELETE /account/`, and the purge of accounts that never verified their
//! address.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_authkit::store::SessionStore;
use axum_authkit::{Removal, UserRemoved};
use http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// What the removal hook heard: (address, why).
type Heard = Arc<Mutex<Vec<(String, Removal)>>>;

fn listening(
    f: impl FnOnce(axum_authkit::AuthBuilder) -> axum_authkit::AuthBuilder,
) -> (Harness, Heard) {
    let heard: Heard = Arc::default();
    let ears = heard.clone();
    let h = harness_with(|b| {
        f(b.with_on_user_removed(move |removed: UserRemoved| {
            let ears = ears.clone();
            async move {
                ears.lock()
                    .unwrap()
                    .push((removed.user.email, removed.removal));
            }
        }))
    });
    (h, heard)
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

async fn delete_account(h: &Harness, cookie: &str, password: &str) -> Reply {
    h.call(Method::DELETE, "/account/")
        .cookie(cookie)
        .json(json!({"password": password}))
        .send()
        .await
}

#[tokio::test]
async fn deleting_the_account_needs_the_password() {
    let (h, heard) = listening(|b| b);
    let s = h.signup("keepme@example.com").await;
    assert_error(
        &h.call(Method::DELETE, "/account/")
            .json(json!({"password": PASSWORD}))
            .send()
            .await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
    let max = h.auth.settings().limits().signin_failures_per_login.max;
    for _ in 0..max {
        let r = delete_account(&h, &s.session(), "not my password at all").await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_password");
        assert!(r.json["errors"]["password"].is_array(), "{}", r.json);
        assert!(r.cookies().is_empty());
    }
    let limited = delete_account(&h, &s.session(), PASSWORD).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Still there, still signed in, nobody told.
    assert!(
        h.auth
            .users()
            .user_by_email("keepme@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(h.account(&s.session()).await.status, StatusCode::OK);
    assert!(heard.lock().unwrap().is_empty());
}

#[tokio::test]
async fn deleting_the_account_removes_everything() {
    let (h, heard) = listening(|b| b);
    let s = h.signup("gone@example.com").await;
    let other = h.signin("gone@example.com", PASSWORD).await;
    let id = s.json["id"].as_str().unwrap().to_owned();
    let r = delete_account(&h, &s.session(), PASSWORD).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    assert!(r.clears_cookies(), "{:?}", r.cookies());

    assert!(h.auth.users().user_by_id(&id).await.unwrap().is_none());
    assert!(
        h.auth
            .users()
            .user_by_email("gone@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .user_sessions(&id, now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    for session in [&s, &other] {
        assert_error(
            &h.refresh_after(session).await,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
        );
        assert_eq!(
            h.account_bearer(&session.access_token()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_error(
        &h.signin("gone@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [("gone@example.com".to_owned(), Removal::Deleted)]
    );
    // The address is free again.
    let again = h.signup("gone@example.com").await;
    assert_ne!(again.json["id"], id.as_str());
}

#[tokio::test]
async fn unverified_accounts_without_a_session_are_purged() {
    let (h, heard) = listening(|b| b.with_unverified_ttl(Duration::from_millis(1)));
    // Unverified, signed out: purged.
    let idle = h.signup("idle@example.com").await;
    let out = h
        .post("/custom-logout/", json!({}), Some(&idle.session()))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // Unverified, signed in: kept.
    h.signup("active@example.com").await;
    // Verified, signed out: kept.
    let verified = h.signup("verified@example.com").await;
    let code = h.outbox.last_code("verified@example.com");
    let v = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&verified.session()),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK);
    let out = h
        .post("/custom-logout/", json!({}), Some(&verified.session()))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // Let the accounts grow older than the 1 ms they may stay unverified.
    tokio::time::sleep(Duration::from_millis(10)).await;

    assert_eq!(h.auth.purge_unverified().await.unwrap(), 1);
    let users = h.auth.users();
    assert!(
        users
            .user_by_email("idle@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        users
            .user_by_email("active@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        users
            .user_by_email("verified@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [("idle@example.com".to_owned(), Removal::Purged)]
    );
    // Nothing more to purge; the address is free again.
    assert_eq!(h.auth.purge_unverified().await.unwrap(), 0);
    h.signup("idle@example.com").await;
}
