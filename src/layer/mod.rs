//! [`AuthLayer`]: validates the access token of every request and rotates the
//! refresh cookie when the access token has run out.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use axum_authkit::{Auth, AuthUser, store::MemoryStore};
//!
//! async fn me(user: AuthUser) -> String {
//!     user.email.clone()
//! }
//!
//! # fn demo() -> Result<(), axum_authkit::ConfigError> {
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(auth.layer().required());
//! # Ok(()) }
//! ```
//!
//! For each request, in order:
//!
//! 1. The source (`src/source.rs`) yields the credentials: the Bearer header,
//!    else the access cookie. Two `Authorization` headers: `400`.
//! 2. The token is verified (from the verified-token cache when it was seen
//!    before).
//! 3. **Automatic refresh.** When the request has no `Authorization` header,
//!    its access cookie is missing or *expired* (genuine, just old) and its
//!    refresh cookie is good, the layer rotates the refresh token, mints a new
//!    access token, authenticates the request with it and appends `Set-Cookie`
//!    for both cookies to the response (unless the handler itself set a cookie
//!    of that name). A refresh cookie that turns out invalid is cleared.
//! 4. A cookie-authenticated unsafe request from another site gets `403
//!    csrf_failed` (see [`csrf`](crate::csrf)).
//! 5. The outcome goes into the request extensions, where the
//!    [extractors](crate::extract) find it. In *required* mode
//!    ([`AuthLayer::required`]) an unauthenticated request is answered `401`
//!    (with `WWW-Authenticate`) before the inner service runs; in *optional*
//!    mode, the default, it goes through and the extractors decide.
//!
//! A request that an outer `AuthLayer` already handled passes straight
//! through, so layers can nest (the auth router has its own).

mod future;

use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::header::SET_COOKIE;
use http::{HeaderValue, Method, Request};
use tower_layer::Layer;
use tower_service::Service;

pub use self::future::ResponseFuture;
use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::extract::AuthState;
use crate::source;
use crate::time::now_secs;
use crate::verify::TokenError;

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

impl<E> AuthLayer<E> {
    /// An optional-mode layer (see [`Auth::layer`]).
    pub fn new(auth: Auth<E>) -> Self {
        AuthLayer {
            auth,
            required: false,
        }
    }

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
    Done {
        state: AuthState<E>,
        by_cookie: bool,
    },
    /// Needs the store: rotate this refresh token.
    Refresh(String),
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl<E: ExtraClaims> Auth<E> {
    fn step<B>(&self, req: &Request<B>) -> Result<Step<E>, AuthError> {
        let config = &self.inner.config;
        let creds = source::read(req.headers(), config)?;
        let refresh = || match creds.refresh_cookie(config) {
            Some(token) if !creds.has_authorization => Some(Step::Refresh(token.to_owned())),
            _ => None,
        };
        let done = |state, by_cookie| Ok(Step::Done { state, by_cookie });
        if let Some(token) = creds.bearer {
            return match self.verify_at(token, now_secs()) {
                Ok(claims) => done(AuthState::Authenticated(claims), false),
                Err(e) => done(AuthState::failed(AuthError::InvalidToken(e)), false),
            };
        }
        match creds.access_cookie {
            Some(token) => match self.verify_at(token, now_secs()) {
                Ok(claims) => done(AuthState::Authenticated(claims), true),
                Err(TokenError::Expired) if let Some(step) = refresh() => Ok(step),
                Err(e) => done(AuthState::failed(AuthError::InvalidToken(e)), false),
            },
            None => refresh().map_or_else(|| done(AuthState::Anonymous, false), Ok),
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
        if req.extensions().get::<AuthState<E>>().is_some() {
            return ResponseFuture::inner(self.inner.call(req));
        }
        let step = match self.auth.step(&req) {
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
            } | Step::Refresh(_)
        );
        if by_cookie && !is_safe(req.method()) {
            req = match self.auth.inner.csrf.check(req) {
                Some(req) => req,
                None => return ResponseFuture::error(AuthError::CsrfFailed.into_response()),
            };
        }
        match step {
            Step::Done { state, .. } => {
                if self.required
                    && let Some(e) = rejection(&state)
                {
                    return ResponseFuture::error(e.into_response());
                }
                req.extensions_mut().insert(state);
                ResponseFuture::inner(self.inner.call(req))
            }
            Step::Refresh(token) => {
                // The clone takes the place of the service that was polled ready.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(refresh_then_call(
                    self.auth.clone(),
                    inner,
                    req,
                    token,
                    self.required,
                ))
            }
        }
    }
}

fn rejection<E>(state: &AuthState<E>) -> Option<AuthError> {
    match state {
        AuthState::Authenticated(_) => None,
        AuthState::Anonymous => Some(AuthError::MissingCredentials),
        AuthState::Failed(e) => Some(AuthError::clone(e)),
    }
}

async fn refresh_then_call<S, E, ReqBody, ResBody>(
    auth: Auth<E>,
    mut inner: S,
    mut req: Request<ReqBody>,
    token: String,
    required: bool,
) -> Result<Response, S::Error>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum_core::BoxError>,
    E: ExtraClaims,
{
    let (state, cookies) = match auth.refresh(&token).await {
        Ok(session) => {
            tracing::debug!(sid = %session.family.id, "access token refreshed by the layer");
            (
                AuthState::Authenticated(session.claims.clone()),
                Some(auth.session_cookies(&session)),
            )
        }
        Err(e @ AuthError::InvalidRefreshToken) => {
            (AuthState::failed(e), Some(auth.clear_cookies()))
        }
        Err(e) => (AuthState::failed(e), None),
    };
    let mut res = match (required, rejection(&state)) {
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
