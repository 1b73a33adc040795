//! Shared setup for the fuzz targets: one `Auth` with an HS256 signing key
//! and Ed25519 and RS256 verify-only keys, over a memory store.

use std::sync::{Arc, OnceLock};

use axum_authkit::keys::{KeySet, SigningKey, VerifyKey};
use axum_authkit::store::MemoryStore;
use axum_authkit::{Auth, ExtraClaims};
use serde_json::{Map, Value};

/// The HS256 secret of the active key `k1`.
pub const SECRET: &[u8] = b"fuzzing secret, at least 32 bytes long!!";
/// Another secret of the same kid: what a forger would try.
pub const WRONG_SECRET: &[u8] = b"some other secret, at least 32 bytes long";
pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "fuzz-audience";
/// A fixed "now", so every run is deterministic.
pub const NOW: i64 = 1_800_000_000;
/// The verifier's default leeway, in seconds.
pub const LEEWAY: i64 = 30;
/// The default token size cap.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

const ED_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ed25519_public.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/keys/rsa_public.pem");

/// An `Auth` for claims type `E`, built on first use.
pub fn auth<E: ExtraClaims>() -> Auth<E> {
    let keys = KeySet::new(SigningKey::hs256("k1", SECRET).unwrap())
        .with_verify_key(VerifyKey::ed25519_pem("ed", ED_PUBLIC).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::rs256_pem("rsa", RSA_PUBLIC).unwrap())
        .unwrap();
    Auth::builder()
        .keys(keys)
        .refresh_secret(b"fuzzing refresh secret, 32 bytes or more")
        .store(Arc::new(MemoryStore::new()))
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_claims(|_| async { Ok(E::default()) })
        .build()
        .unwrap()
}

/// The `Auth<()>` the byte-level targets share.
pub fn unit_auth() -> &'static Auth<()> {
    static AUTH: OnceLock<Auth<()>> = OnceLock::new();
    AUTH.get_or_init(auth::<()>)
}

/// Equal, but floats only nearly: serde_json without `float_roundtrip`
/// may read a float it wrote a few ulps off.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => same_map(x, y),
        _ => a == b,
    }
}

pub fn same_map(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}
