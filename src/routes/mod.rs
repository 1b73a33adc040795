//! The auth API of `shared/API.md`, as an axum [`Router`]:
//!
//! | route | auth | success |
//! |---|---|---|
//! | `POST /signup/` | | `201` user JSON, both cookies, a code mailed |
//! | `POST /signin/` | | `204`, both cookies |
//! | `POST /verify-email/` | Bearer or cookie | `200`, a fresh access cookie |
//! | `POST /resend-verification/` | Bearer or cookie | `204`, a new code mailed |
//! | `POST /custom-refresh/` | refresh cookie | `204`, both cookies rotated |
//! | `POST /custom-logout/` | | `204`, both cookies cleared, the sign-in revoked |
//! | `POST /logout-all/` | Bearer or cookie | `204`, every sign-in of the user revoked |
//!
//! A mailer that fails does not fail a sign-up (the account exists, the
//! code is stored, the failure is logged, and the user can ask again); on
//! `resend-verification` it answers `503 mail_unavailable`.
//!
//! Each path answers with and without its trailing slash. Mount it under any
//! prefix with [`Router::nest`]:
//!
//! ```
//! use std::sync::Arc;
//! use axum::Router;
//! use axum_authkit::{Auth, store::MemoryStore};
//!
//! # fn demo() -> Result<(), axum_authkit::ConfigError> {
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//! let app: Router = Router::new().nest("/api/v1/auth", auth.router());
//! # Ok(()) }
//! ```
//!
//! Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the
//! per-address rate limits see the client's address. Sign-up and sign-in
//! apply the cross-site rule of [`csrf`](crate::csrf) to every request
//! (against login CSRF); the authenticated routes apply it to
//! cookie-authenticated requests through their [`AuthLayer`].

mod body;
mod logout;
mod refresh;
mod signin;
mod signup;
mod verify_email;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::routing::{MethodRouter, post};
use axum_core::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderValue, StatusCode};

use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::layer::AuthLayer;

impl<E: ExtraClaims> Auth<E> {
    /// The auth routes, ready to [`nest`](Router::nest) under a prefix.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let public = Router::new()
            .merge(both("/signup", post(signup::signup::<E>)))
            .merge(both("/signin", post(signin::signin::<E>)))
            .route_layer(middleware::from_fn_with_state(
                self.clone(),
                same_site_only::<E>,
            ))
            .merge(both("/custom-refresh", post(refresh::refresh::<E>)))
            .merge(both("/custom-logout", post(logout::logout::<E>)));
        let authenticated = Router::new()
            .merge(both("/verify-email", post(verify_email::verify_email::<E>)))
            .merge(both(
                "/resend-verification",
                post(verify_email::resend::<E>),
            ))
            .merge(both("/logout-all", post(logout::logout_all::<E>)))
            .route_layer(AuthLayer::new(self.clone()));
        public.merge(authenticated).with_state(self.clone())
    }
}

/// `path` and `path/`, same handler.
fn both<E: ExtraClaims>(path: &str, handler: MethodRouter<Auth<E>>) -> Router<Auth<E>> {
    Router::new()
        .route(path, handler.clone())
        .route(&format!("{path}/"), handler)
}

/// The cross-site rule for every request (sign-in and sign-up carry no
/// cookie credentials, but login CSRF is still an attack).
async fn same_site_only<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    req: Request,
    next: Next,
) -> Response {
    match auth.inner.csrf.check(req) {
        Some(req) => next.run(req).await,
        None => AuthError::CsrfFailed.into_response(),
    }
}

/// A response with `Set-Cookie` headers, never cached.
fn with_cookies(
    status: StatusCode,
    cookies: &[HeaderValue],
    body: Option<serde_json::Value>,
) -> Response {
    let mut res = match body {
        Some(json) => (status, axum::Json(json)).into_response(),
        None => status.into_response(),
    };
    let headers = res.headers_mut();
    for cookie in cookies {
        headers.append(SET_COOKIE, cookie.clone());
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The client address as a rate-limit key part ("unknown" never shares a
/// bucket: limits keyed by it are skipped).
fn ip_key(parts: &http::request::Parts, auth: &Auth<impl ExtraClaims>) -> Option<String> {
    crate::client_ip::client_ip(parts, auth.config().trusted_proxies()).map(|ip| ip.to_string())
}
