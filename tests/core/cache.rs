//! The verified-token cache: a hit is the same token byte for byte (any
//! changed byte is verified afresh and refused), expiry is re-checked on
//! every hit, and ending a session drops its tokens at once.

use std::sync::Arc;
use std::time::Duration;

use axum_authkit::TokenError;
use axum_authkit::store::MemoryStore;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::json;

use crate::support::*;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

fn mutate(token: &str, pos: usize, byte: u8) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    if bytes[pos] == byte {
        return None;
    }
    bytes[pos] = byte;
    Some(String::from_utf8(bytes).unwrap())
}

#[test]
fn a_cached_token_with_any_byte_changed_is_rejected() {
    let store = Arc::new(MemoryStore::new());
    let auth = base_builder(&store, keyset()).build().unwrap();
    let now = now_secs();
    let claims = json!({
        "sub": "u1", "email": "u1@example.test", "email_verified": true, "sid": "s1",
        "jti": "j1", "iat": now, "exp": now + 600, "iss": ISS, "aud": AUD,
    });
    let token = hs(&hs_header(), &claims, SECRET);
    auth.verify(&token).unwrap();
    assert_eq!(auth.cached_tokens(), 1);

    // Every position, one substitute each.
    for pos in 0..token.len() {
        let byte = token.as_bytes()[pos];
        let i = ALPHABET.iter().position(|&b| b == byte).unwrap();
        let other = ALPHABET[(i + 1) % ALPHABET.len()];
        let mutated = mutate(&token, pos, other).unwrap();
        assert!(auth.verify(&mutated).is_err(), "position {pos}");
    }

    // Random positions and bytes.
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (0..token.len(), proptest::sample::select(ALPHABET.to_vec()));
    runner
        .run(&strategy, |(pos, byte)| {
            if let Some(mutated) = mutate(&token, pos, byte) {
                let result = auth.verify(&mutated);
                if result.is_ok() {
                    return Err(TestCaseError::fail(format!(
                        "accepted with byte {pos} set to {:?}",
                        byte as char
                    )));
                }
            }
            Ok(())
        })
        .unwrap();

    // The original is still accepted, and nothing else was cached.
    assert_eq!(auth.verify(&token).unwrap().sub, "u1");
    assert_eq!(auth.cached_tokens(), 1);
}

#[tokio::test]
async fn a_cached_token_with_a_byte_changed_is_rejected_over_http() {
    let fx = fixture().await;
    let token = fx.session().await.access.token;
    let app = fx.required();
    send(&app, bearer("GET", "/me", &token)).await.ok();
    assert_eq!(fx.auth.cached_tokens(), 1);
    for pos in [0, token.len() / 2, token.len() - 1] {
        let byte = if token.as_bytes()[pos] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let mutated = mutate(&token, pos, byte).unwrap();
        send(&app, bearer("GET", "/me", &mutated))
            .await
            .invalid("invalid_token");
    }
    send(&app, bearer("GET", "/me", &token)).await.ok();
}

#[tokio::test]
async fn a_cached_token_is_rejected_once_expired() {
    let mut fixtures = Vec::new();
    for cached in [true, false] {
        let fx = fixture_with(|b| {
            b.with_token_cache(cache(cached))
                .with_access_ttl(Duration::from_secs(1))
                .with_leeway(Duration::ZERO)
        })
        .await;
        let tokens = fx.session().await;
        let app = fx.required();
        send(&app, bearer("GET", "/me", &tokens.access.token))
            .await
            .ok();
        assert_eq!(
            fx.auth.verify(&tokens.access.token).unwrap().exp,
            tokens.access.claims.exp
        );
        assert_eq!(fx.auth.cached_tokens(), usize::from(cached));
        fixtures.push((cached, fx, tokens, app));
    }
    let last_exp = fixtures
        .iter()
        .map(|f| f.2.access.claims.exp)
        .max()
        .unwrap();
    wait_until_after(last_exp).await;
    for (cached, fx, tokens, app) in fixtures {
        assert_eq!(
            fx.auth.verify(&tokens.access.token),
            Err(TokenError::Expired),
            "cache {cached}"
        );
        send(&app, bearer("GET", "/me", &tokens.access.token))
            .await
            .invalid("token_expired");
        assert_eq!(fx.auth.cached_tokens(), 0, "cache {cached}");
    }
}

#[tokio::test]
async fn ending_a_session_refuses_its_cached_access_token_at_once() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.with_token_cache(cache(cached))).await;
        let app = fx.required();
        let tokens = fx.session().await;
        let other_device = fx.session().await;
        for s in [&tokens, &other_device] {
            send(&app, bearer("GET", "/me", &s.access.token)).await.ok();
        }
        assert_eq!(fx.auth.cached_tokens(), if cached { 2 } else { 0 });

        let ended = fx.auth.sign_out(Some(&tokens.refresh_token), None);
        assert!(ended.await.unwrap());
        for _ in 0..2 {
            assert_eq!(
                fx.auth.verify(&tokens.access.token),
                Err(TokenError::Revoked),
                "cache {cached}"
            );
            send(&app, bearer("GET", "/me", &tokens.access.token))
                .await
                .invalid("invalid_token");
        }
        assert!(fx.session_revoked(&tokens.session.id).await);
        assert!(fx.auth.refresh(&tokens.refresh_token).await.is_err());

        // The other session is untouched, until the user is signed out everywhere.
        assert!(!fx.session_revoked(&other_device.session.id).await);
        send(&app, bearer("GET", "/me", &other_device.access.token))
            .await
            .ok();
        assert_eq!(fx.auth.sign_out_everywhere(&fx.user.id).await.unwrap(), 1);
        assert_eq!(
            fx.auth.verify(&other_device.access.token),
            Err(TokenError::Revoked)
        );
        // Signing out with an unknown token ends nothing.
        assert!(!fx.auth.sign_out(Some("garbage"), None).await.unwrap());
    }
}
