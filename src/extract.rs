//! Extractors: [`AuthUser`], its optional form, and [`VerifiedUser`].
//!
//! They read what [`AuthLayer`](crate::AuthLayer) put into the request, so
//! they cost nothing more than an `Arc` clone:
//!
//! | extractor | no credentials | bad credentials | unverified e-mail |
//! |---|---|---|---|
//! | `AuthUser` | `401` | `401` | passes |
//! | `Option<AuthUser>` | `None` | `401` | passes |
//! | `VerifiedUser` | `401` | `401` | `403 email_not_verified` |
//!
//! "Bad credentials" include a refresh cookie that the layer tried and found
//! dead (revoked, expired, unknown): that request is refused once, and its
//! response clears both cookies, so the next one is simply anonymous.
//!
//! Without the layer (or with a layer of another claims type) they fail with
//! `500 auth_layer_missing` and a message saying so: never silently.
//!
//! ```
//! use axum::{Router, routing::get};
//! use axum_authkit::{AuthUser, VerifiedUser};
//!
//! async fn me(user: AuthUser) -> String {
//!     format!("hello {}", user.id())
//! }
//!
//! async fn greet(user: Option<AuthUser>) -> String {
//!     user.map_or("hello stranger".into(), |u| format!("hello {}", u.email))
//! }
//!
//! async fn billing(user: VerifiedUser) -> String {
//!     format!("billing for {}", user.email)
//! }
//!
//! let routes: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/greet", get(greet))
//!     .route("/billing", get(billing));
//! ```

use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::claims::AccessClaims;
use crate::error::AuthError;

/// What the layer concluded about a request (in its extensions). Two words,
/// so putting it into the extensions stays cheap.
#[derive(Clone, Debug)]
pub(crate) enum AuthState<E> {
    Authenticated(Arc<AccessClaims<E>>),
    Anonymous,
    Failed(Arc<AuthError>),
}

impl<E> AuthState<E> {
    pub(crate) fn failed(e: AuthError) -> Self {
        AuthState::Failed(Arc::new(e))
    }

    fn user(&self) -> Result<Option<AuthUser<E>>, AuthError> {
        match self {
            AuthState::Authenticated(claims) => Ok(Some(AuthUser {
                claims: claims.clone(),
            })),
            AuthState::Anonymous => Ok(None),
            AuthState::Failed(e) => Err(AuthError::clone(e)),
        }
    }
}

fn state<'a, E: Send + Sync + 'static>(
    parts: &'a Parts,
    name: &'static str,
) -> Result<&'a AuthState<E>, AuthError> {
    parts
        .extensions
        .get::<AuthState<E>>()
        .ok_or(AuthError::LayerMissing(name))
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

    /// The sign-in (`sid`).
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
        state::<E>(parts, "AuthUser")?
            .user()?
            .ok_or(AuthError::MissingCredentials)
    }
}

impl<S: Send + Sync, E: Send + Sync + 'static> OptionalFromRequestParts<S> for AuthUser<E> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, AuthError> {
        state::<E>(parts, "Option<AuthUser>")?.user()
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
        let user = state::<E>(parts, "VerifiedUser")?
            .user()?
            .ok_or(AuthError::MissingCredentials)?;
        if !user.claims.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        Ok(VerifiedUser(user))
    }
}
