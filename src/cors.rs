//! CORS for browser apps on other origins, from the same setting as the
//! cross-site rule ([`AuthBuilder::with_allowed_origins`](crate::AuthBuilder::with_allowed_origins)),
//! so the two can never disagree.

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Auth;
use crate::token::claims::ExtraClaims;

impl<E: ExtraClaims> Auth<E> {
    /// A tower-http [`CorsLayer`] for the allowed origins: exact origins,
    /// credentials (cookies) allowed, the methods and headers the auth routes
    /// need, preflights cached for 10 minutes. Put it outermost, around the
    /// whole app, so preflights are answered before any other layer:
    ///
    /// ```
    /// # fn demo() -> Result<(), axum_authkit::ConfigError> {
    /// use std::sync::Arc;
    /// use axum::Router;
    /// use axum_authkit::{Auth, store::MemoryStore};
    ///
    /// let auth: Auth = Auth::builder()
    ///     .secret(b"a long random secret, at least 32 bytes")
    ///     .store(Arc::new(MemoryStore::new()))
    ///     .with_allowed_origins(["https://app.example.com"])
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .nest("/api/v1/auth", auth.router())
    ///     .layer(auth.cors_layer());
    /// # Ok(()) }
    /// ```
    ///
    /// With no allowed origins it allows none, and browsers keep the
    /// same-origin policy.
    pub fn cors_layer(&self) -> CorsLayer {
        let origins: Vec<HeaderValue> = self
            .settings()
            .allowed_origins()
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([CONTENT_TYPE, AUTHORIZATION])
            .max_age(Duration::from_secs(600))
    }
}
