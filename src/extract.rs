//! Extractors: [`AuthUser`], its optional form, and [`VerifiedUser`].
//!
//! They read what [`AuthLayer`](crate::layer::AuthLayer) put into the request, so
//! they cost nothing more than an `Arc` clone:
//!
//! | extractor | no credentials | bad credentials | unverified e-mail |
//! |---|---|---|---|
//! | `AuthUser` | `401` | `401` | passes |
//! | `Option<AuthUser>` | `None` | `401` | passes |
//! | `VerifiedUser` | `401` | `401` | `403 email_not_verified` |
//!
//! A refresh cookie that the layer tried and found dead (revoked, expired,
//! unknown) makes the request anonymous, and its response clears both
//! cookies.
//!
//! Without the layer they fail with `500 auth_layer_missing`, and under a
//! layer built for other app claims with `500 claims_type_mismatch`; both
//! messages say what to change. Never silently.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, body::Body, routing::get};
//! use axum_authkit::{Auth, AuthUser, Client, VerifiedUser, store::MemoryStore};
//! use http::{Request, StatusCode, header};
//! use tower::ServiceExt;
//!
//! async fn greet(user: Option<AuthUser>) -> String {
//!     user.map_or("hello stranger".into(), |u| format!("hello {}", u.email))
//! }
//!
//! async fn billing(user: VerifiedUser) -> String {
//!     format!("billing for {}", user.email)
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/greet", get(greet))
//!     .route("/billing", get(billing))
//!     .layer(auth.layer());
//!
//! let anonymous = Request::get("/greet").body(Body::empty())?;
//! assert_eq!(app.clone().oneshot(anonymous).await?.status(), StatusCode::OK);
//!
//! // A signed-in user whose address is not verified yet: 403 on /billing.
//! let client = Client::trusted();
//! auth.sign_up(&client, "ada@example.com", "correct horse battery staple", "Ada").await?;
//! let tokens = auth.sign_in(&client, "ada@example.com", "correct horse battery staple").await?;
//! let req = Request::get("/billing")
//!     .header(header::AUTHORIZATION, format!("Bearer {}", tokens.access.token))
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(req).await?.status(), StatusCode::FORBIDDEN);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

use std::any::{Any, TypeId};
use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::error::AuthError;
use crate::token::claims::AccessClaims;

/// What the layer concluded about a request (in its extensions). The claims
/// are type-erased so that an extractor of the wrong claims type can say so.
#[derive(Clone)]
pub(crate) struct AuthState {
    outcome: Outcome,
    claims_type: (TypeId, &'static str),
}

#[derive(Clone)]
enum Outcome {
    Authenticated(Arc<dyn Any + Send + Sync>),
    Anonymous,
    Failed(Arc<AuthError>),
}

impl AuthState {
    pub(crate) fn authenticated<E: Send + Sync + 'static>(claims: Arc<AccessClaims<E>>) -> Self {
        Self::new::<E>(Outcome::Authenticated(claims))
    }

    pub(crate) fn anonymous<E: 'static>() -> Self {
        Self::new::<E>(Outcome::Anonymous)
    }

    pub(crate) fn failed<E: 'static>(e: AuthError) -> Self {
        Self::new::<E>(Outcome::Failed(Arc::new(e)))
    }

    fn new<E: 'static>(outcome: Outcome) -> Self {
        AuthState {
            outcome,
            claims_type: crate::auth::claims_type::<E>(),
        }
    }

    /// Why the layer would refuse this request in required mode.
    pub(crate) fn rejection(&self) -> Option<AuthError> {
        match &self.outcome {
            Outcome::Authenticated(_) => None,
            Outcome::Anonymous => Some(AuthError::MissingCredentials),
            Outcome::Failed(e) => Some(AuthError::clone(e)),
        }
    }

    fn user<E: Send + Sync + 'static>(
        &self,
        extractor: &'static str,
    ) -> Result<Option<AuthUser<E>>, AuthError> {
        let mismatch = || AuthError::ClaimsMismatch {
            extractor,
            expected: std::any::type_name::<E>(),
            found: self.claims_type.1,
        };
        if self.claims_type.0 != TypeId::of::<E>() {
            return Err(mismatch());
        }
        match &self.outcome {
            Outcome::Authenticated(claims) => claims
                .clone()
                .downcast::<AccessClaims<E>>()
                .map(|claims| Some(AuthUser { claims }))
                .map_err(|_| mismatch()),
            Outcome::Anonymous => Ok(None),
            Outcome::Failed(e) => Err(AuthError::clone(e)),
        }
    }
}

fn state<'a>(parts: &'a Parts, extractor: &'static str) -> Result<&'a AuthState, AuthError> {
    parts
        .extensions
        .get::<AuthState>()
        .ok_or(AuthError::LayerMissing(extractor))
}

/// The authenticated user: the claims of a valid access token.
///
/// Rejects with `401` when the request has no valid credentials.
#[derive(Clone, Debug)]
pub struct AuthUser<E = ()> {
    claims: Arc<AccessClaims<E>>,
}

impl<E> AuthUser<E> {
    /// The user's id (`sub`).
    pub fn id(&self) -> &str {
        &self.claims.sub
    }

    /// The session (`sid`).
    pub fn session_id(&self) -> &str {
        &self.claims.sid
    }

    /// All claims.
    pub fn claims(&self) -> &Arc<AccessClaims<E>> {
        &self.claims
    }
}

impl<E> Deref for AuthUser<E> {
    type Target = AccessClaims<E>;
    fn deref(&self) -> &AccessClaims<E> {
        &self.claims
    }
}

impl<S: Send + Sync, E: Send + Sync + 'static> FromRequestParts<S> for AuthUser<E> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        state(parts, "AuthUser")?
            .user::<E>("AuthUser")?
            .ok_or(AuthError::MissingCredentials)
    }
}

impl<S: Send + Sync, E: Send + Sync + 'static> OptionalFromRequestParts<S> for AuthUser<E> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, AuthError> {
        state(parts, "Option<AuthUser>")?.user::<E>("Option<AuthUser>")
    }
}

/// An [`AuthUser`] whose e-mail address is verified; `403
/// email_not_verified` otherwise.
#[derive(Clone, Debug)]
pub struct VerifiedUser<E = ()>(pub AuthUser<E>);

impl<E> Deref for VerifiedUser<E> {
    type Target = AuthUser<E>;
    fn deref(&self) -> &AuthUser<E> {
        &self.0
    }
}

impl<S: Send + Sync, E: Send + Sync + 'static> FromRequestParts<S> for VerifiedUser<E> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        let user = state(parts, "VerifiedUser")?
            .user::<E>("VerifiedUser")?
            .ok_or(AuthError::MissingCredentials)?;
        if !user.claims.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        Ok(VerifiedUser(user))
    }
}
