//! Email-and-password authentication for [Axum](https://docs.rs/axum): JWT
//! access tokens, rotating refresh cookies, extractors, pluggable stores,
//! and a ready-made auth router.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, body::Body, routing::get};
//! use axum_authkit::{Auth, AuthUser, store::MemoryStore};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
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
//! // Without credentials, `AuthUser` answers 401.
//! let res = app.oneshot(Request::get("/me").body(Body::empty())?).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//!
//! // Serve it with the client's address, for the per-address limits:
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # The shape of the crate
//!
//! Three floors; arrows point down only.
//!
//! ```text
//! HTTP      AuthLayer (layer)   the router (Auth::router)   AuthUser, VerifiedUser
//!                 │                      │ parse → one Auth call → shape
//! domain    Auth: sign_up, sign_in, refresh, sign_out, verify_email, reset_password,
//!                 change_password, change_email, sessions, revoke_session, delete_account
//!                 │
//! parts     keys · access tokens (verify, cache) · sessions (refresh rotation, deny list)
//!           passwords · one-time codes · limits · mail · captcha · store
//!           Settings (plain data) ← AuthBuilder (wiring, the only part that knows every other)
//! ```
//!
//! The words: a **session** is one sign-in, named by the access token's
//! `sid` (stored as a chain of refresh tokens, a *family*, in store terms
//! only); a **token** is a JWT access token or an opaque refresh token; a
//! **code** is the 6-digit number in a mail.
//!
//! # What happens to a request
//!
//! [`AuthLayer`](layer::AuthLayer) reads the access token from `Authorization: Bearer` or the
//! `access_token` cookie, verifies it (through a verified-token cache, then
//! against this instance's copy of the deny list of ended sessions: no store
//! call), and puts the outcome into the
//! request extensions, where [`AuthUser`], `Option<AuthUser>` and
//! [`VerifiedUser`] read it. When the access cookie is missing, expired or
//! invalid but the refresh cookie is good, the layer rotates the refresh
//! token and sets both cookies on the response. Cookie-authenticated unsafe
//! requests from other sites are refused.
//!
//! # Public modules and root items
//!
//! | path | what |
//! |---|---|
//! | [`Auth`], [`AuthBuilder`], [`Settings`] and its parts | the domain API, its wiring, its settings |
//! | [`Client`], [`Tokens`], [`AccessToken`], [`SignedUp`], [`SessionInfo`], [`UserRemoved`] | what the flows take and give |
//! | [`AuthUser`], [`VerifiedUser`] | the extractors |
//! | [`layer`] | [`layer::AuthLayer`] (what [`Auth::layer`] gives), its service and response future |
//! | [`AccessClaims`], [`ExtraClaims`], [`AuthError`], [`ConfigError`], [`TokenError`] | claims and errors |
//! | [`api`] | the wire contract: every route, body, status and error `code` |
//! | [`store`] | the store traits, records, and the memory, SQLite, PostgreSQL and Redis stores |
//! | [`keys`] | signing and verify-only keys, rotation, JWKS ([`Auth::jwks_router`] serves it) |
//! | `openapi` | `Auth::openapi`: the OpenAPI 3.1 document of the router (feature `openapi`) |
//! | [`limits`] | the rate-limiter trait and the in-memory limiter |
//! | [`mail`] | the mailer trait, templates, the log and SMTP mailers |
//! | [`captcha`] | the captcha trait and the siteverify client |
//! | `testing` | the store conformance suite (feature `testing`) |
//!
//! # Feature flags
//!
//! | feature | default | what |
//! |---|---|---|
//! | `sqlite` | yes | `SqliteStore` (sqlx, bundled SQLite) |
//! | `openapi` | yes | `Auth::openapi`, an OpenAPI 3.1 document of the auth routes (utoipa) |
//! | `postgres` | | `PostgresStore` (sqlx) |
//! | `redis` | | `RedisStore`: sessions and rate limits shared by instances, on one Redis server or a Redis Cluster |
//! | `siteverify` | | `Siteverify` captcha client (reqwest, rustls) |
//! | `smtp` | | `SmtpMailer` (lettre, rustls): STARTTLS or implicit TLS, credentials, a deadline |
//! | `metrics` | | counters through the `metrics` facade (see below) |
//! | `testing` | | the store conformance suite, for your own stores |
//!
//! # For operators
//!
//! Each flow runs in a `tracing` span named `auth.<flow>` (`auth.sign_in`,
//! `auth.refresh`, ...) with the user id and session id as fields, never a
//! token, code or password; user input in log lines is escaped. With the
//! `metrics` feature, counters go through the `metrics` facade to whatever
//! exporter the app installs: sign-ins by outcome, sign-ups, rate-limited
//! requests by limit, refreshes by outcome (reuse included), sessions ended,
//! and mail by kind and outcome. None of this is on the cached-token path.
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
//!   ends its whole session. One honest client looks like a thief too: when
//!   a rotation commits but its answer is lost (the store stalled past its
//!   deadline and the client got `503`), the client keeps the old token;
//!   retried within the grace window it yields the same successor, retried
//!   later it revokes the session.
//! - Ending a session (logout, logout-all, reset, password change, session
//!   revoke, deletion, disabling, refresh-token reuse) refuses its access
//!   tokens at once on this instance and, through the session store's
//!   shared deny list ([`store::SessionStore::deny`]), on every instance
//!   sharing the store within a second, also after a restart. A background
//!   task per [`Auth`] (started when it is built inside a Tokio runtime,
//!   stopped with its last clone) applies the store's announcements (Redis
//!   pub/sub, PostgreSQL `LISTEN`/`NOTIFY`) and polls the list every 250 ms
//!   when there is no channel or it is down. Call
//!   [`Auth::load_revocations`] before serving so that a restarted instance
//!   refuses from its first request.
//! - Every store call has a deadline (the wait for a connection included);
//!   a stalled store costs a `503`, never a hung request, and the work is
//!   either done whole or not at all.
//! - Passwords: argon2id (OWASP parameters) off the async workers, on a
//!   bounded pool of lowest-priority threads with a bounded queue that each
//!   client network may fill only to its share; unknown logins cost the same
//!   as wrong passwords; secrets and codes are compared in constant time.
//! - Failure limits are reserved atomically before any expensive work, so
//!   concurrent requests cannot walk past them.
//! - Cookies default to `HttpOnly; Secure; SameSite=Lax; Path=/`; the
//!   `__Host-` prefix is supported.
//! - Every bad input gets a JSON error (`400`, `401`, `403`, `404`, `405`,
//!   `413`, `415`, `429`) and changes nothing; store outages are `503`, never
//!   a panic. User input in log lines is escaped.
//! - Ending a session (logout, reset, password change, revoke, deletion,
//!   reuse) refuses its access tokens at once in the process that ended it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
mod auth;
mod builder;
pub mod captcha;
mod client;
mod codes;
mod cookies;
mod cors;
mod counters;
mod credentials;
mod cross_site;
mod error;
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod layer;
pub mod limits;
pub mod mail;
#[cfg(feature = "openapi")]
pub mod openapi;
mod password;
mod routes;
mod session;
mod settings;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod token;

pub mod api {
    #![doc = include_str!("../docs/API.md")]
}

pub use async_trait::async_trait;
pub use cookie::SameSite;

pub use crate::auth::{
    AccessToken, Auth, EmailConfirmed, Removal, SessionInfo, SignedUp, Tokens, UserRemoved,
};
pub use crate::builder::AuthBuilder;
pub use crate::client::Client;
pub use crate::cookies::{CookiePrefix, CookieSettings};
pub use crate::error::{AuthError, ConfigError, FieldErrors};
pub use crate::extract::{AuthUser, VerifiedUser};
pub use crate::password::PasswordSettings;
pub use crate::settings::{CacheSettings, CodeSettings, LimitSettings, SessionSettings, Settings};
pub use crate::token::TokenError;
pub use crate::token::claims::{AccessClaims, Audience, ExtraClaims};

/// The README's example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
