//! [`AuthLayer`]: validates the access token of every request and rotates the
//! refresh cookie when the access token has run out.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, body::Body, routing::get};
//! use axum_authkit::{Auth, AuthUser, Client, store::MemoryStore};
//! use http::{Request, StatusCode, header};
//! use tower::ServiceExt;
//!
//! async fn me(user: AuthUser) -> String {
//!     user.email.clone()
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(auth.layer().required());
//!
//! // Required mode: no token, no handler.
//! let res = app.clone().oneshot(Request::get("/me").body(Body::empty())?).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//!
//! // A Bearer token of a signed-in user gets through.
//! let client = Client::trusted();
//! auth.sign_up(&client, "ada@example.com", "correct horse battery staple", "Ada").await?;
//! let tokens = auth.sign_in(&client, "ada@example.com", "correct horse battery staple").await?;
//! let req = Request::get("/me")
//!     .header(header::AUTHORIZATION, format!("Bearer {}", tokens.access.token))
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(req).await?.status(), StatusCode::OK);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! For each request, in order:
//!
//! 1. The credentials: the Bearer header, else the access cookie. Two
//!    `Authorization` headers: `400`.
//! 2. The token is verified (from the verified-token cache when it was seen
//!    before), then checked against the deny list of ended sessions.
//! 3. **Automatic refresh**, whenever a refresh is possible: the request has
//!    no `Authorization` header and a refresh cookie, and its access cookie
//!    is missing, past its `exp` (the leeway is not used then) or invalid
//!    (bad signature, unknown `kid` after a key change). The layer rotates
//!    the refresh token, mints a new access token, authenticates the
//!    request with it and appends `Set-Cookie` for both cookies to the
//!    response (unless the handler set a cookie of that name itself). A dead
//!    refresh cookie makes the request anonymous and clears both cookies.
//! 4. A cookie-authenticated unsafe request from another site gets `403
//!    csrf_failed`, logged at `WARN`.
//! 5. The outcome goes into the request extensions, where the
//!    [extractors](crate::AuthUser) find it. In *required* mode
//!    ([`AuthLayer::required`]) an unauthenticated request is answered `401`
//!    (with `WWW-Authenticate`) before the inner service runs; in *optional*
//!    mode, the default, it goes through and the extractors decide.
//!
//! A request that an outer `AuthLayer` already handled passes straight
//! through, so layers can nest (the auth router has its own).

mod future;

use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::header::SET_COOKIE;
use http::{HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::ResponseFuture;
use crate::auth::Auth;
use crate::credentials;
use crate::cross_site::is_safe;
use crate::error::AuthError;
use crate::extract::AuthState;
use crate::time::now_secs;
use crate::token::claims::{AccessClaims, ExtraClaims};

/// Layer that authenticates requests; see the [module docs](self).
pub struct AuthLayer<E = ()> {
    auth: Auth<E>,
    required: bool,
}

impl<E> Clone for AuthLayer<E> {
    fn clone(&self) -> Self {
        AuthLayer {
            auth: self.auth.clone(),
            required: self.required,
        }
    }
}

impl<E> std::fmt::Debug for AuthLayer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl<E: ExtraClaims> Auth<E> {
    /// The layer, in optional mode: requests pass, the extractors decide.
    /// Call [`AuthLayer::required`] to answer `401` in the layer instead.
    pub fn layer(&self) -> AuthLayer<E> {
        AuthLayer {
            auth: self.clone(),
            required: false,
        }
    }
}

impl<E> AuthLayer<E> {
    /// Answers `401` in the layer when the request is not authenticated.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

impl<S, E> Layer<S> for AuthLayer<E> {
    type Service = AuthService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            required: self.required,
        }
    }
}

/// The service [`AuthLayer`] produces.
pub struct AuthService<S, E = ()> {
    inner: S,
    auth: Auth<E>,
    required: bool,
}

impl<S: Clone, E> Clone for AuthService<S, E> {
    fn clone(&self) -> Self {
        AuthService {
            inner: self.inner.clone(),
            auth: self.auth.clone(),
            required: self.required,
        }
    }
}

impl<S, E> std::fmt::Debug for AuthService<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

/// What the synchronous part of the layer decided.
enum Step<E> {
    /// Known outcome; `by_cookie` says whether a cookie authenticated it.
    Done { state: AuthState, by_cookie: bool },
    /// Needs the store: rotate this refresh token. `fallback` is the access
    /// cookie's claims when it is still inside the leeway, for a store that
    /// cannot answer.
    Refresh {
        token: String,
        fallback: Option<Arc<AccessClaims<E>>>,
    },
}

impl<S, E: ExtraClaims> AuthService<S, E> {
    fn step<B>(&self, req: &Request<B>) -> Result<Step<E>, AuthError> {
        let settings = self.auth.settings();
        let creds = credentials::read(req.headers(), settings.access_cookie())?;
        let now = now_secs();
        let done = |state, by_cookie| Ok(Step::Done { state, by_cookie });
        if let Some(token) = creds.bearer {
            return match self.auth.verify_at(token, now) {
                Ok(claims) => done(AuthState::authenticated(claims), false),
                Err(e) => done(AuthState::failed::<E>(AuthError::InvalidToken(e)), false),
            };
        }
        let access = creds.access_cookie.map(|t| self.auth.verify_at(t, now));
        let refresh_needed = match &access {
            Some(Ok(claims)) => now >= claims.exp,
            _ => true,
        };
        if refresh_needed && let Some(token) = creds.refresh_cookie(settings.refresh_cookie()) {
            return Ok(Step::Refresh {
                token: token.to_owned(),
                fallback: access.and_then(Result::ok),
            });
        }
        match access {
            Some(Ok(claims)) => done(AuthState::authenticated(claims), true),
            Some(Err(e)) => done(AuthState::failed::<E>(AuthError::InvalidToken(e)), false),
            None => done(AuthState::anonymous::<E>(), false),
        }
    }
}

impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S, E>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
    E: ExtraClaims,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if req.extensions().get::<AuthState>().is_some() {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let step = match self.step(&req) {
            Ok(step) => step,
            Err(e) => return ResponseFuture::error(e.into_response()),
        };
        // Cookies (the access cookie, or the refresh cookie about to be used)
        // are what a cross-site request could ride on.
        let by_cookie = matches!(
            step,
            Step::Done {
                by_cookie: true,
                ..
            } | Step::Refresh { .. }
        );
        if by_cookie && !is_safe(req.method()) {
            req = match self.auth.cross_site().check(req) {
                Ok(req) => req,
                Err(e) => return ResponseFuture::error(e.into_response()),
            };
        }
        match step {
            Step::Done { state, .. } => {
                if self.required
                    && let Some(e) = state.rejection()
                {
                    return ResponseFuture::error(e.into_response());
                }
                req.extensions_mut().insert(state);
                ResponseFuture::inner(self.inner.call(req))
            }
            Step::Refresh { token, fallback } => {
                // The clone takes the place of the service that was polled ready.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(refresh_then_call(
                    self.auth.clone(),
                    inner,
                    req,
                    token,
                    fallback,
                    self.required,
                ))
            }
        }
    }
}

async fn refresh_then_call<S, E, ReqBody, ResBody>(
    auth: Auth<E>,
    mut inner: S,
    mut req: Request<ReqBody>,
    token: String,
    fallback: Option<Arc<AccessClaims<E>>>,
    required: bool,
) -> Result<Response, S::Error>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
    E: ExtraClaims,
{
    let (state, cookies) = match auth.refresh(&token).await {
        Ok(tokens) => {
            tracing::debug!(sid = %tokens.session.id, "access token refreshed by the layer");
            let cookies = auth.session_cookies(&tokens);
            (
                AuthState::authenticated(tokens.access.claims),
                Some(cookies),
            )
        }
        Err(AuthError::InvalidRefreshToken) => {
            (AuthState::anonymous::<E>(), Some(auth.clear_cookies()))
        }
        Err(e) => match fallback {
            // The store is out, but the access cookie is still inside the leeway.
            Some(claims) => (AuthState::authenticated(claims), None),
            None => (AuthState::failed::<E>(e), None),
        },
    };
    let mut res = match (required, state.rejection()) {
        (true, Some(e)) => e.into_response(),
        _ => {
            req.extensions_mut().insert(state);
            inner.call(req).await?.map(Body::new)
        }
    };
    if let Some(cookies) = cookies {
        append_cookies(&mut res, &cookies);
    }
    Ok(res)
}

/// Appends `Set-Cookie` values, except for names the response already sets:
/// the handler's own decision (a logout, say) wins.
fn append_cookies(res: &mut Response, cookies: &[HeaderValue]) {
    let name = |v: &HeaderValue| -> Option<String> {
        v.to_str()
            .ok()?
            .split_once('=')
            .map(|(n, _)| n.trim().to_owned())
    };
    let taken: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(name)
        .collect();
    for cookie in cookies {
        if name(cookie).is_some_and(|n| !taken.contains(&n)) {
            res.headers_mut().append(SET_COOKIE, cookie.clone());
        }
    }
}
