//! What the benches share: one issuer, one user, one way to build an `Auth`.
#![allow(dead_code)]

use std::sync::Arc;

use axum_authkit::keys::{KeySet, SigningKey};
use axum_authkit::store::{MemoryStore, User};
use axum_authkit::{Auth, AuthUser, CacheSettings};

pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "https://api.example.com";
/// ASCII, because jwt-authorizer takes its HS256 secret as `&str`.
pub const HS256_SECRET: &str = "benchmark secret: thirty-two bytes or more, ASCII";
pub const REFRESH_SECRET: &[u8] = b"benchmark refresh secret, also 32 bytes or more";
/// The session id the benchmark tokens carry.
pub const SID: &str = "Zm9vYmFyYmF6cXV4cXV1eA";
/// What every benchmark handler answers.
pub const BODY: &str = "hello";

pub fn user() -> User {
    User {
        id: "0b5c7a1e-3f2d-4c8b-9a6e-1d2f3a4b5c6d".into(),
        email: "alice.benchmark@example.com".into(),
        name: "Alice".into(),
        password_hash: String::new(),
        email_verified: true,
        disabled: false,
        created_at: 0,
    }
}

/// An `Auth` that signs with `key`, in memory, with the given cache.
pub fn auth_with(key: SigningKey, cache: CacheSettings) -> Auth {
    Auth::builder()
        .keys(KeySet::new(key))
        .refresh_secret(REFRESH_SECRET)
        .store(Arc::new(MemoryStore::new()))
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_token_cache(cache)
        .build()
        .expect("auth")
}

/// The HS256 `Auth` of the request benches.
pub fn hs256_auth(cache: CacheSettings) -> Auth {
    auth_with(
        SigningKey::hs256("hs-bench", HS256_SECRET.as_bytes()).expect("key"),
        cache,
    )
}

/// A token minted by `auth` for [`user`].
pub fn token(auth: &Auth) -> String {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(auth.access_token(&user(), SID))
        .expect("token")
        .token
}

/// The handler without auth.
pub async fn plain() -> &'static str {
    BODY
}

/// The same handler behind `AuthUser`.
pub async fn authkit_me(user: AuthUser) -> &'static str {
    std::hint::black_box(&user);
    BODY
}
