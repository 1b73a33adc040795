//! Access-token verification, in one run, on one ~400-byte token per
//! algorithm carrying this crate's own `AccessClaims`:
//!
//! - `verify/jsonwebtoken_decode/{hs256,eddsa,es256}`: `jsonwebtoken::decode`
//!   of the same token, `Validation` requiring `exp`, `iss` and `aud` (the
//!   baseline);
//! - `verify/first_seen/{hs256,eddsa,es256}`: `Auth::verify` with the
//!   verified-token cache turned off, the full check every time;
//! - `verify/cache_hit/{hs256,eddsa,es256}`: `Auth::verify` of a token it has
//!   already verified (the verified-token cache answers);
//! - `verify/first_seen_denied_100k/hs256` and
//!   `verify/cache_hit_denied_100k/hs256`: the same two with 100,000
//!   revoked sessions on the instance's deny list (loaded from the shared
//!   one): what a cache miss pays for the lookup, and that a hit pays
//!   nothing;
//! - `verify/floor/hmac_sha256`: HMAC-SHA256 over the signing input alone
//!   (key setup included, as any verifier pays it), the cost no HS256
//!   verification can go under;
//! - `verify/floor/hashmap_lookup`: `HashMap<String, Arc<_>>::get` keyed by the
//!   full token (std SipHash), the reference for a cache hit.
//!
//! Keys: HS256 from an ASCII secret; Ed25519 and P-256 from the PEM fixtures
//! in `tests/keys/`.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use axum_authkit::keys::{KeySet, SigningKey};
use axum_authkit::store::{MemoryStore, SessionStore};
use axum_authkit::{AccessClaims, Auth, CacheSettings};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::Sha256;

use common::{AUDIENCE, HS256_SECRET, ISSUER, REFRESH_SECRET, auth_with, token};

const ED25519_PEM: &[u8] = include_bytes!("../tests/keys/ed25519_private.pem");
const P256_PEM: &[u8] = include_bytes!("../tests/keys/p256_private.pem");

/// An `Auth` signing with the key `make` builds, the same without a cache,
/// and a token they both accept.
fn auth_and_token(make: fn() -> SigningKey) -> (Auth, Auth, String) {
    let auth = auth_with(make(), CacheSettings::default());
    let uncached = auth_with(make(), CacheSettings::disabled());
    let token = token(&auth);
    (auth, uncached, token)
}

fn verification(c: &mut Criterion) {
    let algs = [
        (
            "hs256",
            (|| SigningKey::hs256("hs-bench", HS256_SECRET.as_bytes()).expect("hs256"))
                as fn() -> SigningKey,
        ),
        ("eddsa", || {
            SigningKey::ed25519_pem("ed-bench", ED25519_PEM).expect("ed25519")
        }),
        ("es256", || {
            SigningKey::es256_pem("es-bench", P256_PEM).expect("p256")
        }),
    ]
    .map(|(name, make)| {
        let (auth, uncached, token) = auth_and_token(make);
        (name, auth, uncached, token)
    });
    let (_, _, _, hs_token) = &algs[0];
    for (name, _, _, token) in &algs {
        println!("{name} token: {} bytes", token.len());
    }

    let mut g = c.benchmark_group("verify");

    // Baseline: jsonwebtoken::decode of the same tokens, iss, aud and exp
    // required (HS256 from the secret, the others from the JWKS).
    for (name, auth, _, token) in &algs {
        let (key, alg) = match *name {
            "hs256" => (
                DecodingKey::from_secret(HS256_SECRET.as_bytes()),
                Algorithm::HS256,
            ),
            _ => {
                let jwks = auth.jwks();
                let jwk = jwks.keys.first().expect("public key");
                let alg = if *name == "eddsa" {
                    Algorithm::EdDSA
                } else {
                    Algorithm::ES256
                };
                (DecodingKey::from_jwk(jwk).expect("jwk"), alg)
            }
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key, &validation).expect("jsonwebtoken");
        g.bench_function(format!("jsonwebtoken_decode/{name}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<AccessClaims>(black_box(token.as_str()), &key, &validation)
                    .expect("valid")
            })
        });
    }

    // Full verification, nothing cached.
    for (name, _, uncached, token) in &algs {
        uncached.verify(token).expect("valid");
        g.bench_function(format!("first_seen/{name}"), |b| {
            b.iter(|| uncached.verify(black_box(token.as_str())).expect("valid"))
        });
    }

    // The same token again: served by the verified-token cache.
    for (name, auth, _, token) in &algs {
        auth.verify(token).expect("valid");
        assert_eq!(auth.cached_tokens(), 1, "{name}: token not cached");
        g.bench_function(format!("cache_hit/{name}"), |b| {
            b.iter(|| auth.verify(black_box(token.as_str())).expect("valid"))
        });
    }

    // With 100,000 revoked sessions on the deny list.
    let store = Arc::new(MemoryStore::new());
    deny_others(&store, 100_000);
    let cached = auth_over(&store, CacheSettings::default());
    let uncached = auth_over(&store, CacheSettings::disabled());
    let token = token(&cached);
    uncached.verify(&token).expect("valid");
    g.bench_function("first_seen_denied_100k/hs256", |b| {
        b.iter(|| uncached.verify(black_box(token.as_str())).expect("valid"))
    });
    cached.verify(&token).expect("valid");
    assert_eq!(cached.cached_tokens(), 1, "token not cached");
    g.bench_function("cache_hit_denied_100k/hs256", |b| {
        b.iter(|| cached.verify(black_box(token.as_str())).expect("valid"))
    });

    // Floors.
    let (signing_input, _) = hs_token.rsplit_once('.').expect("three segments");
    g.bench_function("floor/hmac_sha256", |b| {
        b.iter(|| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(HS256_SECRET.as_bytes()).expect("any key length");
            mac.update(black_box(signing_input.as_bytes()));
            mac.finalize().into_bytes()
        })
    });
    let (_, hs_auth, _, _) = &algs[0];
    let claims = hs_auth.verify(hs_token).expect("valid");
    let mut map: HashMap<String, Arc<AccessClaims>> = HashMap::new();
    map.insert(hs_token.clone(), claims);
    g.bench_function("floor/hashmap_lookup", |b| {
        b.iter(|| {
            map.get(black_box(hs_token.as_str()))
                .cloned()
                .expect("present")
        })
    });

    g.finish();
}

/// Puts `n` other sessions on `store`'s shared deny list, as other
/// instances would.
fn deny_others(store: &MemoryStore, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("{i:0>22}")).collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let until = i64::try_from(now_ms).expect("ms") + 3_600_000;
    runtime().block_on(store.deny(&ids, until)).expect("deny");
}

/// An HS256 `Auth` over `store` whose deny list holds the store's (loaded
/// as an instance does before it serves).
fn auth_over(store: &Arc<MemoryStore>, cache: CacheSettings) -> Auth {
    let auth = Auth::builder()
        .keys(KeySet::new(
            SigningKey::hs256("hs-bench", HS256_SECRET.as_bytes()).expect("hs256"),
        ))
        .refresh_secret(REFRESH_SECRET)
        .store(store.clone())
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_token_cache(cache)
        .build()
        .expect("auth");
    let loaded = runtime().block_on(auth.load_revocations()).expect("load");
    assert!(loaded > 0, "the deny list is loaded");
    auth
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

criterion_group!(benches, verification);
criterion_main!(benches);
