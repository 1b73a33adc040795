//! The auth API as an axum router: one file per route; each handler parses
//! the request, calls one [`Auth`] method, and shapes the response.

mod account;
pub(crate) mod body;
mod change_email;
mod change_password;
mod jwks;
mod logout;
mod password_reset;
mod refresh;
mod sessions;
mod signin;
mod signup;
mod verify_email;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::{self, Next};
use axum::routing::{MethodRouter, delete, get, post};
use axum_core::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::auth::{AccessToken, Auth, Tokens};
use crate::client::Client;
use crate::error::AuthError;
use crate::token::claims::ExtraClaims;

impl<E: ExtraClaims> Auth<E> {
    /// The auth routes, ready to [`nest`](Router::nest) under a prefix (the
    /// example server uses `/api/v1/auth`). Each path answers with and
    /// without its trailing slash.
    ///
    /// | route | auth | success |
    /// |---|---|---|
    /// | `POST /signup/` | | `201` user JSON, both cookies, a code mailed |
    /// | `POST /signin/` | | `204`, both cookies |
    /// | `POST /verify-email/` | Bearer or cookie | `200`, a fresh access cookie |
    /// | `POST /resend-verification/` | Bearer or cookie | `204`, a new code mailed |
    /// | `POST /custom-refresh/` | refresh cookie | `204`, both cookies rotated |
    /// | `POST /custom-logout/` | | `204`, both cookies cleared, the session ended |
    /// | `POST /logout-all/` | Bearer or cookie | `204`, every session of the user ended |
    /// | `POST /password-reset/` | | `202`, a code mailed if the address has an account |
    /// | `POST /password-reset/confirm/` | | `204`, both cookies; every other session ended |
    /// | `POST /change-password/` | Bearer or cookie | `204`, cookies renewed; every other session ended |
    /// | `POST /change-email/` | Bearer or cookie | `202`, a code mailed to the new address |
    /// | `POST /change-email/confirm/` | Bearer or cookie | `200` user JSON, a fresh access cookie |
    /// | `GET /sessions/` | Bearer or cookie | `200`, the live sessions, newest first |
    /// | `DELETE /sessions/{id}/` | Bearer or cookie | `204`, that session ended |
    /// | `DELETE /account/` | Bearer or cookie | `204`, the account deleted |
    ///
    /// Every error is JSON, `{"detail", "code"}` (plus `errors` per field),
    /// with the status and `code` listed per route in the
    /// [API reference](crate::api); an unknown path under the prefix is `404
    /// not_found` and another method `405 method_not_allowed` with `Allow`.
    /// `Auth::openapi` (feature `openapi`) describes these routes as an
    /// OpenAPI 3.1 document; [`Auth::jwks_router`] serves the public keys
    /// for other services.
    ///
    /// Serve the app with `into_make_service_with_connect_info::<SocketAddr>()`
    /// so the per-address limits see the client's address. The cross-site
    /// rule applies to every request of sign-up, sign-in and password reset
    /// (against login CSRF), to refresh and logout when a cookie comes, and
    /// to the authenticated routes when a cookie authenticates them.
    ///
    /// ```
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use axum::{Router, body::Body};
    /// use axum_authkit::{Auth, store::MemoryStore};
    /// use http::{Request, StatusCode};
    /// use tower::ServiceExt;
    ///
    /// let auth: Auth = Auth::builder()
    ///     .secret(b"a long random secret, at least 32 bytes")
    ///     .store(Arc::new(MemoryStore::new()))
    ///     .build()?;
    /// let app: Router = Router::new().nest("/api/v1/auth", auth.router());
    ///
    /// let signup = Request::post("/api/v1/auth/signup/")
    ///     .header("content-type", "application/json")
    ///     .body(Body::from(
    ///         r#"{"email": "ada@example.com", "password": "correct horse battery staple", "name": "Ada"}"#,
    ///     ))?;
    /// let res = app.clone().oneshot(signup).await?;
    /// assert_eq!(res.status(), StatusCode::CREATED);
    /// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
    ///
    /// let nowhere = Request::get("/api/v1/auth/nowhere/").body(Body::empty())?;
    /// assert_eq!(app.oneshot(nowhere).await?.status(), StatusCode::NOT_FOUND);
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let same_site = Router::new()
            .merge(both("/signup", post(signup::signup::<E>)))
            .merge(both("/signin", post(signin::signin::<E>)))
            .merge(both("/password-reset", post(password_reset::request::<E>)))
            .merge(both(
                "/password-reset/confirm",
                post(password_reset::confirm::<E>),
            ))
            .route_layer(middleware::from_fn_with_state(
                self.clone(),
                same_site_only::<E>,
            ));
        let cookie_riding = Router::new()
            .merge(both("/custom-refresh", post(refresh::refresh::<E>)))
            .merge(both("/custom-logout", post(logout::logout::<E>)))
            .route_layer(middleware::from_fn_with_state(
                self.clone(),
                same_site_with_cookies::<E>,
            ));
        let authenticated = Router::new()
            .merge(both("/verify-email", post(verify_email::verify::<E>)))
            .merge(both(
                "/resend-verification",
                post(verify_email::resend::<E>),
            ))
            .merge(both("/logout-all", post(logout::logout_all::<E>)))
            .merge(both(
                "/change-password",
                post(change_password::change_password::<E>),
            ))
            .merge(both("/change-email", post(change_email::request::<E>)))
            .merge(both(
                "/change-email/confirm",
                post(change_email::confirm::<E>),
            ))
            .merge(both("/sessions", get(sessions::list::<E>)))
            .merge(both("/sessions/{id}", delete(sessions::revoke::<E>)))
            .merge(both("/account", delete(account::delete::<E>)))
            .route_layer(self.layer());
        same_site
            .merge(cookie_riding)
            .merge(authenticated)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(self.clone())
    }

    /// A router that serves the public verification keys as a JWKS document
    /// (RFC 7517) at `path`, which the app chooses (for example
    /// `/.well-known/jwks.json`): `GET` answers `200` with `{"keys": [...]}`,
    /// every EdDSA, ES256 and RS256 key of the key ring (the active one and
    /// the verify-only ones) with its `kid`, `alg` and `use: "sig"`. HMAC
    /// secrets are never published: an HS256-only `Auth` serves
    /// `{"keys": []}`. Verifiers may cache it for 5 minutes
    /// (`Cache-Control: public, max-age=300`); publish a new key as
    /// verify-only at least that long before it signs.
    ///
    /// # Panics
    ///
    /// Like [`Router::route`], when `path` does not start with `/`.
    ///
    /// ```
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use axum::{Router, body::Body};
    /// use axum_authkit::{Auth, keys::{KeySet, SigningKey}, store::MemoryStore};
    /// use http::{Request, StatusCode};
    /// use http_body_util::BodyExt;
    /// use tower::ServiceExt;
    ///
    /// // A throwaway key (`openssl genpkey -algorithm ed25519`); keep real ones in files.
    /// let pem = b"-----BEGIN PRIVATE KEY-----
    /// MC4CAQAwBQYDK2VwBCIEILz4rNRLgfEwOkBKLsm4KJH3yRqDCnRasD7DvPob3Sin
    /// -----END PRIVATE KEY-----";
    /// let auth: Auth = Auth::builder()
    ///     .keys(KeySet::new(SigningKey::ed25519_pem("ed-1", pem)?))
    ///     .refresh_secret(b"another long random secret, 32 bytes or more")
    ///     .store(Arc::new(MemoryStore::new()))
    ///     .build()?;
    /// let app: Router = auth.jwks_router("/.well-known/jwks.json");
    ///
    /// let req = Request::get("/.well-known/jwks.json").body(Body::empty())?;
    /// let res = app.oneshot(req).await?;
    /// assert_eq!(res.status(), StatusCode::OK);
    /// let bytes = res.into_body().collect().await?.to_bytes();
    /// let jwks: serde_json::Value = serde_json::from_slice(&bytes)?;
    /// assert_eq!(jwks["keys"][0]["kid"], "ed-1");
    /// assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    /// assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn jwks_router<S: Clone + Send + Sync + 'static>(&self, path: &str) -> Router<S> {
        // Serializing public key parameters cannot fail; an empty set is the safe answer if it did.
        let body = serde_json::to_vec(&self.jwks()).map_or_else(
            |_| bytes::Bytes::from_static(br#"{"keys":[]}"#),
            bytes::Bytes::from,
        );
        Router::new().route(path, get(jwks::jwks)).with_state(body)
    }
}

/// `path` and `path/`, same handler.
fn both<E: ExtraClaims>(path: &str, handler: MethodRouter<Auth<E>>) -> Router<Auth<E>> {
    Router::new()
        .route(path, handler.clone())
        .route(&format!("{path}/"), handler)
}

async fn not_found() -> AuthError {
    AuthError::NotFound
}

async fn method_not_allowed() -> AuthError {
    AuthError::MethodNotAllowed
}

/// The cross-site rule for every request (sign-in and sign-up carry no
/// cookie credentials, but login CSRF is still an attack).
async fn same_site_only<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    req: Request,
    next: Next,
) -> Response {
    match auth.cross_site().check(req) {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The cross-site rule for requests that carry an auth cookie (refresh,
/// logout): a sibling site must not rotate or end a session.
async fn same_site_with_cookies<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    req: Request,
    next: Next,
) -> Response {
    let settings = auth.settings();
    let carries_cookie = settings.refresh_cookie().find(req.headers()).is_some()
        || settings.access_cookie().find(req.headers()).is_some();
    if !carries_cookie {
        return next.run(req).await;
    }
    match auth.cross_site().check(req) {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The [`Client`] of a request, read once.
pub(crate) struct ClientOf(pub(crate) Client);

impl<E: ExtraClaims> FromRequestParts<Auth<E>> for ClientOf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        auth: &Auth<E>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientOf(Client::from_parts(
            parts,
            auth.settings().trusted_proxies(),
        )))
    }
}

/// A response with `Set-Cookie` headers, never cached.
fn with_cookies(status: StatusCode, cookies: &[HeaderValue], body: Option<Value>) -> Response {
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

/// A new or renewed session: `success` with both cookies, or `200` with the
/// tokens in the body too when the app turned that on.
fn session_response<E: ExtraClaims>(
    auth: &Auth<E>,
    tokens: &Tokens<E>,
    success: StatusCode,
    mut body: Option<Value>,
) -> Response {
    let mut status = success;
    if auth.settings().tokens_in_body() {
        let fields = token_fields(auth, &tokens.access, Some(&tokens.refresh_token));
        match &mut body {
            Some(Value::Object(map)) => map.extend(fields),
            _ => {
                body = Some(Value::Object(fields));
                status = StatusCode::OK;
            }
        }
    }
    with_cookies(status, &auth.session_cookies(tokens), body)
}

/// A fresh access token for the same session: `200` with `body`, the access
/// cookie, and the token in the body too when the app turned that on.
fn access_response<E: ExtraClaims>(
    auth: &Auth<E>,
    access: &AccessToken<E>,
    mut body: serde_json::Map<String, Value>,
) -> Response {
    if auth.settings().tokens_in_body() {
        body.extend(token_fields(auth, access, None));
    }
    with_cookies(
        StatusCode::OK,
        &[auth.access_cookie(access)],
        Some(Value::Object(body)),
    )
}

fn token_fields<E: ExtraClaims>(
    auth: &Auth<E>,
    access: &AccessToken<E>,
    refresh_token: Option<&str>,
) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("access_token".into(), json!(access.token));
    fields.insert("token_type".into(), json!("Bearer"));
    fields.insert(
        "expires_in".into(),
        json!(auth.settings().access_ttl().as_secs()),
    );
    if let Some(refresh) = refresh_token {
        fields.insert("refresh_token".into(), json!(refresh));
    }
    fields
}

/// `204` that clears both cookies.
fn cleared<E: ExtraClaims>(auth: &Auth<E>) -> Response {
    with_cookies(StatusCode::NO_CONTENT, &auth.clear_cookies(), None)
}

/// The user JSON of sign-up and e-mail change.
fn user_json(user: &crate::store::User) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("id".into(), json!(user.id));
    map.insert("email".into(), json!(user.email));
    map.insert("name".into(), json!(user.name));
    map.insert("email_verified".into(), json!(user.email_verified));
    map
}

/// The refresh cookie of a request, if any.
fn refresh_cookie<'a, E: ExtraClaims>(auth: &Auth<E>, headers: &'a HeaderMap) -> Option<&'a str> {
    auth.settings().refresh_cookie().find(headers)
}
