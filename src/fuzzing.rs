//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Thin wrappers over crate-private parsers, so the targets drive the very
//! code a request goes through without widening the public API. Not part of
//! the API: hidden from the docs, no semver promise, may change at any time.

use std::sync::Arc;

use axum::body::Body;
use futures_util::FutureExt;
use http::{HeaderMap, Request, StatusCode};
use serde_json::{Map, Value};

use crate::cookies::CookieSettings;
use crate::session::refresh::Raw;
use crate::token::claims::ExtraClaims;
use crate::{AccessClaims, Auth, TokenError};

/// `Auth::verify_at`: the verified-token cache, the UTF-8 check, the full
/// verification and the deny list, at time `now` (seconds since the epoch).
pub fn verify_at<E: ExtraClaims>(
    auth: &Auth<E>,
    token: &[u8],
    now: i64,
) -> Result<Arc<AccessClaims<E>>, TokenError> {
    auth.verify_at(token, now)
}

/// Signs `claims` with the active key of `auth`, as the crate mints tokens.
pub fn sign<E: ExtraClaims>(auth: &Auth<E>, claims: &AccessClaims<E>) -> String {
    auth.fuzz_parts()
        .0
        .sign(claims)
        .unwrap_or_else(|e| panic!("signing failed: {e}"))
}

/// The verifier alone (no cache, no deny list), claims parsed as `E`.
pub fn verify_uncached<E: ExtraClaims>(
    auth: &Auth<E>,
    token: &str,
    now: i64,
) -> Result<AccessClaims<E>, TokenError> {
    auth.fuzz_parts().0.verify::<E>(token, now)
}

/// What `credentials::read` found in a request's headers, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The Bearer token, when an `Authorization: Bearer` header came.
    pub bearer: Option<Vec<u8>>,
    /// Whether any `Authorization` header came.
    pub has_authorization: bool,
    /// The access cookie (read only without a Bearer token).
    pub access_cookie: Option<Vec<u8>>,
    /// The refresh cookie (read only without an `Authorization` header).
    pub refresh_cookie: Option<String>,
    /// What the layer verifies: the Bearer token, else the access cookie.
    pub access_token: Option<Vec<u8>>,
}

/// Reads credentials as the layer does; `Err` is the answer (`400` for two
/// `Authorization` headers).
pub fn read_credentials(
    headers: &HeaderMap,
    access: &CookieSettings,
    refresh: &CookieSettings,
) -> Result<Credentials, StatusCode> {
    let c = crate::credentials::read(headers, access).map_err(|e| e.status())?;
    Ok(Credentials {
        bearer: c.bearer.map(<[u8]>::to_vec),
        has_authorization: c.has_authorization,
        access_cookie: c.access_cookie.map(<[u8]>::to_vec),
        refresh_cookie: c.refresh_cookie(refresh).map(str::to_owned),
        access_token: c.access_token().map(<[u8]>::to_vec),
    })
}

/// The token of one `Authorization` header value, if it is a Bearer one.
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    crate::credentials::bearer_token(value)
}

/// A JSON body as the routes read it.
#[derive(Debug)]
pub struct JsonBody {
    /// The object as parsed.
    pub object: Map<String, Value>,
    /// `Fields` applied to it, as a sign-in-like route would (`email`
    /// required, `name` optional, `code` a one-time code): `Ok` or the
    /// `400` with its field errors.
    pub fields: Result<(), StatusCode>,
}

/// Reads `req` with the body extractor's rules and a `limit` in bytes.
/// `Err` is the status it answers with. Panics if the body is not ready at
/// once (the target only feeds in-memory bodies).
pub fn read_json_body(req: Request<Body>, limit: usize) -> Result<JsonBody, StatusCode> {
    let object = crate::routes::body::JsonObject::read(req, limit)
        .now_or_never()
        .expect("an in-memory body is ready at once")
        .map_err(|e| e.status())?;
    let map = object.as_map().clone();
    let mut f = object.fields();
    f.string("email");
    f.optional_string("name");
    f.code("code");
    let fields = f.finish().map_err(|e| e.status());
    Ok(JsonBody {
        object: map,
        fields,
    })
}

/// A refresh token as the crate parses one: the 48 raw bytes, when
/// well-formed.
pub fn parse_refresh_token(token: &str) -> Option<[u8; 48]> {
    Raw::parse(token).map(|r| r.0)
}

/// The refresh token of 48 raw bytes (base64url, 64 characters).
pub fn encode_refresh_token(raw: [u8; 48]) -> String {
    Raw(raw).encode()
}

/// The session id a refresh token names.
pub fn refresh_session_id(raw: [u8; 48]) -> String {
    Raw(raw).session_id()
}

/// Starts a session in the store of `auth` (which must answer at once, as
/// `MemoryStore` does) and returns its refresh token.
pub fn start_session<E: ExtraClaims>(auth: &Auth<E>, user_id: &str) -> String {
    let (_, refresh, store) = auth.fuzz_parts();
    refresh
        .start(
            store,
            user_id,
            &crate::Client::default(),
            crate::time::now_millis(),
        )
        .now_or_never()
        .expect("the store answers at once")
        .expect("the memory store does not fail")
        .token
}

/// `RefreshTokens::owner`: the id of the live session `token` belongs to
/// (any generation within the look-back), if any.
pub fn refresh_owner<E: ExtraClaims>(auth: &Auth<E>, token: &str) -> Option<String> {
    let (_, refresh, store) = auth.fuzz_parts();
    refresh
        .owner(store, token)
        .now_or_never()
        .expect("the store answers at once")
        .ok()
        .flatten()
        .map(|s| s.id)
}
