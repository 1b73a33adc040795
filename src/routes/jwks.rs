//! The JWKS document: the public verification keys, for services that
//! verify this app's access tokens on their own.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

/// How long verifiers may cache the document. A key joins as verify-only
/// well before it signs, so a cached copy stays good through a rotation.
const CACHE: &str = "public, max-age=300";

/// `200` with the JWKS serialized once when the router was built (the keys
/// of an `Auth` never change).
pub(super) async fn jwks(State(body): State<Bytes>) -> Response {
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(CACHE));
    res
}
