//! Email-and-password authentication for [Axum](https://docs.rs/axum).
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
