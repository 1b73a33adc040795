//! Email-and-password authentication for [Axum](https://docs.rs/axum): JWT
//! access tokens, rotating refresh cookies, extractors, pluggable stores and
//! a ready-made auth router serving the API of `shared/API.md`.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use axum_authkit::{Auth, AuthUser, store::MemoryStore};
//!
//! async fn me(user: AuthUser) -> String {
//!     format!("{} ({})", user.email, user.id())
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let auth: Auth = Auth::builder()
//!     .secret(b"a long random secret, at least 32 bytes")
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(auth.layer())                     // validates tokens, refreshes cookies
//!     .nest("/api/v1/auth", auth.router());    // signup, signin, verify-email, ...
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # if false {
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # }
//! # Ok(()) }
//! ```
//!
//! # What happens to a request
//!
//! [`AuthLayer`] reads the token from `Authorization: Bearer` or the
//! `access_token` cookie (`src/source.rs`), verifies it ([`verify`], through a
//! verified-token cache), and puts the outcome into the request extensions,
//! where the extractors ([`AuthUser`], `Option<AuthUser>`, [`VerifiedUser`])
//! read it. When the access token has expired but the refresh cookie is good,
//! the layer rotates the refresh token ([`refresh`]) and sets both cookies on
//! the response. Cookie-authenticated unsafe requests from other sites are
//! refused ([`csrf`]).
//!
//! # Modules
//!
//! | concept | module |
//! |---|---|
//! | the shared handle and its operations | [`auth`] |
//! | settings and the builder | [`config`] |
//! | signing / verify-only keys, rotation, JWKS | [`keys`] |
//! | the claims, and the app's own | [`claims`] |
//! | token → claims, RFC 8725 checks | [`verify`] |
//! | refresh tokens, families, reuse detection | [`refresh`] |
//! | the layer and its response future | [`layer`] |
//! | extractors | [`extract`] |
//! | cross-site rule | [`csrf`] |
//! | cookies | [`cookies`] |
//! | errors and their JSON body | [`error`] |
//! | argon2id, policy, common passwords | [`password`] |
//! | verification codes | [`verification`] |
//! | captcha (reCAPTCHA, hCaptcha, Turnstile) | [`captcha`] |
//! | mail | [`mail`] |
//! | rate limits | [`rate_limit`] |
//! | client address | [`client_ip`] |
//! | stores: traits, memory, SQLite, PostgreSQL, Redis | [`store`] |
//!
//! The HTTP routes live in `src/routes/`, one file per route, and are reached
//! through [`Auth::router`].
//!
//! # Feature flags
//!
//! | feature | default | what |
//! |---|---|---|
//! | `sqlite` | yes | `SqliteStore` (sqlx, bundled SQLite) |
//! | `postgres` | yes | `PostgresStore` (sqlx) |
//! | `redis` | yes | `RedisStore`: refresh families and rate limits shared by instances |
//! | `siteverify` | yes | `Siteverify` captcha client (reqwest, rustls) |
//! | `smtp` | no | `SmtpMailer`: mail over SMTP with STARTTLS or implicit TLS (lettre, rustls) |
//!
//! With `default-features = false` the crate has the layer, extractors,
//! router and in-memory stores only.
//!
//! # Security notes
//!
//! - Algorithms are pinned per key: the key named by `kid` decides, never the
//!   token's `alg` (`none` and algorithm confusion fail). `crit`, `jku`,
//!   `jwk`, `x5u` and `x5c` headers are refused; access tokens must say
//!   `typ: at+jwt`. Crypto is `jsonwebtoken`'s pure-Rust RustCrypto backend
//!   (see [`keys`]).
//! - Refresh tokens are opaque 384-bit values stored only as SHA-256 hashes;
//!   every use rotates them; a rotated-away token outside a 10 s grace window
//!   revokes its whole sign-in.
//! - Passwords: argon2id (OWASP parameters) off the async workers, on a
//!   bounded pool of lowest-priority threads with a bounded queue; unknown
//!   logins cost the same as wrong passwords; secrets and
//!   codes are compared in constant time.
//! - Cookies default to `HttpOnly; Secure; SameSite=Lax; Path=/`; the
//!   `__Host-` prefix is supported.
//! - Every bad input gets a JSON error (`400`, `401`, `403`, `413`, `415`,
//!   `429`) and changes nothing; store outages are `503`, never a panic.
//! - Access tokens are stateless: revoking a sign-in takes effect at once in
//!   the revoking process and within one access-token lifetime (15 minutes by
//!   default) elsewhere.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod cache;
pub mod captcha;
pub mod claims;
pub mod client_ip;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod keys;
pub mod layer;
pub mod mail;
pub mod password;
pub mod rate_limit;
pub mod refresh;
mod routes;
mod source;
pub mod store;
pub mod time;
pub mod verification;
pub mod verify;

pub use auth::{Auth, Session};
pub use cache::CacheConfig;
pub use claims::{AccessClaims, ExtraClaims};
pub use config::{AuthBuilder, AuthConfig, ConfigError, RateLimits};
pub use error::AuthError;
pub use extract::{AuthUser, VerifiedUser};
pub use layer::AuthLayer;

/// The README's example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
