//! Keys: secret lengths, every algorithm from PEM, rotation, JWKS.

use std::sync::Arc;

use axum_authkit::keys::{KeyError, KeySet, SigningKey, VerifyKey};
use axum_authkit::store::MemoryStore;
use axum_authkit::{Auth, Client, ConfigError, TokenError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::support::*;

#[test]
fn short_hs256_secret_is_refused() {
    let err = SigningKey::hs256("k", &[7u8; 31]).unwrap_err();
    assert!(
        matches!(err, KeyError::SecretTooShort { ref kid, len: 31 } if kid == "k"),
        "{err:?}"
    );
    let err = VerifyKey::hs256("k", &[7u8; 16]).unwrap_err();
    assert!(matches!(err, KeyError::SecretTooShort { len: 16, .. }));
    assert!(SigningKey::hs256("k", &[7u8; 32]).is_ok());

    let err = Auth::builder()
        .secret(&[7u8; 31])
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Key(KeyError::SecretTooShort { len: 31, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn each_algorithm_signs_and_verifies_from_pem() {
    let cases = [
        (
            Algorithm::HS256,
            SigningKey::hs256("k-hs", SECRET).unwrap(),
            VerifyKey::hs256("k-hs", SECRET).unwrap(),
        ),
        (
            Algorithm::EdDSA,
            SigningKey::ed25519_pem("k-ed", ED_PRIVATE).unwrap(),
            VerifyKey::ed25519_pem("k-ed", ED_PUBLIC).unwrap(),
        ),
        (
            Algorithm::ES256,
            SigningKey::es256_pem("k-es", P256_PRIVATE).unwrap(),
            VerifyKey::es256_pem("k-es", P256_PUBLIC).unwrap(),
        ),
        (
            Algorithm::RS256,
            SigningKey::rs256_pem("k-rs", RSA_PRIVATE).unwrap(),
            VerifyKey::rs256_pem("k-rs", RSA_PUBLIC).unwrap(),
        ),
    ];
    for (alg, signing, public) in cases {
        let kid = signing.kid().to_owned();
        let store = Arc::new(MemoryStore::new());
        let signer = base_builder(&store, KeySet::new(signing)).build().unwrap();
        let user = new_user(&store, "keys@example.test").await;
        let tokens = signer
            .start_session(&user, &Client::trusted())
            .await
            .unwrap();
        let token = &tokens.access.token;

        let h = token_header(token);
        assert_eq!(h.alg, alg);
        assert_eq!(h.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(h.typ.as_deref(), Some("at+jwt"));
        assert_eq!(signer.verify(token).unwrap().sub, user.id, "{alg:?}");

        let hits = Hits::default();
        let app = routes(hits.clone()).layer(signer.layer().required());
        let res = send(&app, bearer("GET", "/me", token)).await;
        assert_eq!(res.ok().body["sub"], user.id.as_str());

        // A verifier holding only the public half (verify-only key) accepts it.
        let verifier = base_builder(
            &store,
            KeySet::new(SigningKey::hs256("other", OTHER_SECRET).unwrap())
                .with_verify_key(public)
                .unwrap(),
        )
        .build()
        .unwrap();
        assert_eq!(verifier.verify(token).unwrap().sid, tokens.session.id);

        // A changed signature fails.
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{signed}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(verifier.verify(&forged), Err(TokenError::BadSignature));
    }
}

#[test]
fn invalid_pem_and_kids_are_refused() {
    assert!(matches!(
        SigningKey::ed25519_pem("k", RSA_PRIVATE),
        Err(KeyError::InvalidPem { .. })
    ));
    assert!(matches!(
        VerifyKey::es256_pem("k", b"not a pem"),
        Err(KeyError::InvalidPem { .. })
    ));
    assert!(matches!(
        SigningKey::hs256("", SECRET),
        Err(KeyError::InvalidKid(_))
    ));
    assert!(matches!(
        SigningKey::hs256("has space", SECRET),
        Err(KeyError::InvalidKid(_))
    ));
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_kid() {
    let store = Arc::new(MemoryStore::new());
    let user = new_user(&store, "rotate@example.test").await;
    let client = Client::trusted();

    // HS256 -> HS256, then EdDSA -> ES256.
    let rotations = [
        (
            KeySet::new(SigningKey::hs256("hs-old", SECRET).unwrap()),
            SigningKey::hs256("hs-old", SECRET).unwrap(),
            SigningKey::hs256("hs-new", OTHER_SECRET).unwrap(),
            Algorithm::HS256,
        ),
        (
            KeySet::new(SigningKey::ed25519_pem("2026-10", ED_PRIVATE).unwrap()),
            SigningKey::ed25519_pem("2026-10", ED_PRIVATE).unwrap(),
            SigningKey::es256_pem("2026-11", P256_PRIVATE).unwrap(),
            Algorithm::ES256,
        ),
    ];
    for (old_keys, old_again, next, next_alg) in rotations {
        let old_kid = old_keys.active_kid().to_owned();
        let next_kid = next.kid().to_owned();
        let old_auth = base_builder(&store, old_keys).build().unwrap();
        let old_session = old_auth.start_session(&user, &client).await.unwrap();

        let rotated = KeySet::new(old_again).rotate(next).unwrap();
        assert_eq!(rotated.active_kid(), next_kid);
        assert!(rotated.get(&old_kid).is_some());
        let auth = base_builder(&store, rotated).build().unwrap();

        // The old key's token still verifies, directly and through the layer.
        let claims = auth.verify(&old_session.access.token).unwrap();
        assert_eq!(claims.sub, user.id);
        let app = routes(Hits::default()).layer(auth.layer().required());
        send(&app, bearer("GET", "/me", &old_session.access.token))
            .await
            .ok();

        // New tokens carry the new kid, from a new session and from refresh.
        let fresh = auth.start_session(&user, &client).await.unwrap();
        let h = token_header(&fresh.access.token);
        assert_eq!(h.kid.as_deref(), Some(next_kid.as_str()));
        assert_eq!(h.alg, next_alg);
        let refreshed = auth.refresh(&old_session.refresh_token).await.unwrap();
        let h = token_header(&refreshed.access.token);
        assert_eq!(h.kid.as_deref(), Some(next_kid.as_str()));

        // ...which the old-only key set does not know.
        assert_eq!(
            old_auth.verify(&fresh.access.token).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    // Rotating to a key with a kid already in the set is refused.
    let err = KeySet::new(SigningKey::hs256("same", SECRET).unwrap())
        .rotate(SigningKey::hs256("same", OTHER_SECRET).unwrap())
        .unwrap_err();
    assert!(matches!(err, KeyError::DuplicateKid(ref k) if k == "same"));
}

#[tokio::test]
async fn jwks_exports_public_keys_and_never_an_hs256_secret() {
    let keys = KeySet::new(SigningKey::hs256("hs", SECRET).unwrap())
        .with_verify_key(VerifyKey::ed25519_pem("ed", ED_PUBLIC).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::es256_pem("ec", P256_PUBLIC).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::rs256_pem("rsa", RSA_PUBLIC).unwrap())
        .unwrap();
    let text = keys.jwks_json();
    let jwks: Value = serde_json::from_str(&text).unwrap();
    let exported = jwks["keys"].as_array().unwrap();
    let mut seen: Vec<(&str, &str, &str)> = exported
        .iter()
        .map(|k| {
            assert_eq!(k["use"], "sig", "{k}");
            assert!(k.get("k").is_none() && k.get("d").is_none(), "{k}");
            (
                k["kid"].as_str().unwrap(),
                k["alg"].as_str().unwrap(),
                k["kty"].as_str().unwrap(),
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("ec", "ES256", "EC"),
            ("ed", "EdDSA", "OKP"),
            ("rsa", "RS256", "RSA")
        ]
    );
    assert!(!text.contains("\"oct\""));
    assert!(!text.contains(&URL_SAFE_NO_PAD.encode(SECRET)));

    // From private keys: only the public halves, and an outside verifier can
    // use them to check our tokens.
    let store = Arc::new(MemoryStore::new());
    let keys = KeySet::new(SigningKey::rs256_pem("rs-old", RSA_PRIVATE).unwrap())
        .rotate(SigningKey::ed25519_pem("ed-new", ED_PRIVATE).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::hs256("hs-partner", OTHER_SECRET).unwrap())
        .unwrap();
    let auth = base_builder(&store, keys).build().unwrap();
    let user = new_user(&store, "jwks@example.test").await;
    let token = auth
        .start_session(&user, &Client::trusted())
        .await
        .unwrap()
        .access
        .token;
    let jwks = auth.jwks();
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    assert_eq!(kids, ["ed-new", "rs-old"]);
    let json = serde_json::to_value(&jwks).unwrap();
    for k in json["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} exported: {k}");
        }
    }
    let jwk = jwks.find("ed-new").unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["sub"], user.id.as_str());
}
