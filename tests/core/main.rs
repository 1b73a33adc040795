//! Integration tests of the core: keys, token verification, token sources,
//! the layer and its extractors, automatic refresh, the cross-site rule and
//! the verified-token cache. Everything runs through an axum `Router` with
//! `oneshot`, or through `Auth` directly where the HTTP layer adds nothing.
//!
//! One test binary; one module per concept, sharing `support`.

mod cache;
mod credentials;
mod cross_site;
mod keys;
mod layer;
mod refresh;
mod revocation;
mod support;
mod verification;
