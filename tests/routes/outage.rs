//! A store that is down: `503 store_unavailable`, never a `500`, and no
//! token handed out.

use std::sync::Arc;

use async_trait::async_trait;
use axum_authkit::store::{
    Code, CodePurpose, MemoryStore, NewUser, Rotation, SecretHash, Session, SessionStore,
    StoreError, UnixMillis, User, UserStore,
};
use http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// A store whose backend is down.
struct DownStore;

fn down() -> StoreError {
    StoreError::unavailable("connection refused")
}

#[async_trait]
impl UserStore for DownStore {
    async fn create_user(&self, _: NewUser) -> Result<User, StoreError> {
        Err(down())
    }
    async fn user_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(down())
    }
    async fn user_by_id(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(down())
    }
    async fn set_password_hash(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn mark_email_verified(&self, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn set_disabled(&self, _: &str, _: bool) -> Result<(), StoreError> {
        Err(down())
    }
    async fn change_email(&self, _: &str, _: &str, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn delete_user(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn unverified_users(&self, _: UnixMillis, _: usize) -> Result<Vec<User>, StoreError> {
        Err(down())
    }
    async fn delete_unverified_user(&self, _: &str, _: UnixMillis) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn put_code(&self, _: &str, _: CodePurpose, _: &Code) -> Result<(), StoreError> {
        Err(down())
    }
    async fn code(&self, _: &str, _: CodePurpose) -> Result<Option<Code>, StoreError> {
        Err(down())
    }
    async fn count_code_attempt(
        &self,
        _: &str,
        _: CodePurpose,
    ) -> Result<Option<Code>, StoreError> {
        Err(down())
    }
    async fn take_code(
        &self,
        _: &str,
        _: CodePurpose,
        _: &SecretHash,
    ) -> Result<Option<Code>, StoreError> {
        Err(down())
    }
}

#[async_trait]
impl SessionStore for DownStore {
    async fn create_session(&self, _: &Session) -> Result<(), StoreError> {
        Err(down())
    }
    async fn session(&self, _: &str) -> Result<Option<Session>, StoreError> {
        Err(down())
    }
    async fn rotate(&self, _: Rotation<'_>) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_session(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_user_sessions(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn user_sessions(&self, _: &str, _: UnixMillis) -> Result<Vec<Session>, StoreError> {
        Err(down())
    }
    async fn purge_expired(&self, _: UnixMillis) -> Result<u64, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn store_outage_is_503_never_500() {
    let h = harness_with(|b| b.store(Arc::new(DownStore)));
    let signup = h
        .post(
            "/signup/",
            json!({"email": "o@example.com", "password": PASSWORD, "name": "Jo", "captcha": "ok"}),
            None,
        )
        .await;
    assert_error(
        &signup,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert_error(
        &h.signin("o@example.com", PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    let token = "A".repeat(64);
    let refresh = h
        .post(
            "/custom-refresh/",
            json!({}),
            Some(&format!("refresh_token={token}")),
        )
        .await;
    assert_error(
        &refresh,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert!(
        refresh.cookie("refresh_token").is_none(),
        "no token handed out"
    );
    // Logout still answers 204.
    assert_eq!(
        h.post(
            "/custom-logout/",
            json!({}),
            Some(&format!("refresh_token={token}"))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    // The reset request does not wait for the lookup: 202 as always.
    let reset = h
        .post(
            "/password-reset/",
            json!({"email": "o@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{}", reset.json);
    let confirm = h
        .post(
            "/password-reset/confirm/",
            json!({"email": "o@example.com", "code": "123456", "new_password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_error(
        &confirm,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
}

#[tokio::test]
async fn authenticated_routes_answer_503_when_the_store_is_down() {
    // A token from an instance whose store was up, sharing the secret.
    let up = harness();
    let s = up.signup("up@example.com").await;
    let outbox = Arc::new(Outbox::default());
    let down_auth = builder(&outbox, &Arc::new(MemoryStore::new()))
        .store(Arc::new(DownStore))
        .build()
        .unwrap();
    let h = Harness {
        app: axum::Router::new().nest("/api/v1/auth", down_auth.router()),
        auth: down_auth,
        outbox,
        store: Arc::new(MemoryStore::new()),
    };
    let bearer = s.access_token();
    let code = up.outbox.last_code("up@example.com");
    let calls = [
        (
            Method::POST,
            "/verify-email/",
            json!({"verification_code": code}),
        ),
        (Method::POST, "/resend-verification/", json!({})),
        (Method::POST, "/logout-all/", json!({})),
        (
            Method::POST,
            "/change-password/",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ),
        (
            Method::POST,
            "/change-email/",
            json!({"new_email": "new@example.com", "password": PASSWORD}),
        ),
        (
            Method::POST,
            "/change-email/confirm/",
            json!({"verification_code": "123456"}),
        ),
        (Method::GET, "/sessions/", json!({})),
        (Method::DELETE, "/sessions/some-id/", json!({})),
        (Method::DELETE, "/account/", json!({"password": PASSWORD})),
    ];
    for (method, path, body) in calls {
        let r = h
            .call(method.clone(), path)
            .bearer(&bearer)
            .json(body)
            .send()
            .await;
        assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert!(r.cookies().is_empty(), "{method} {path}: {:?}", r.cookies());
    }
}
