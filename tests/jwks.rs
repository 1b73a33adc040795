//! The JWKS document: a second service that holds no key file verifies the
//! example server's access tokens from `/.well-known/jwks.json` alone,
//! through a key rotation; HMAC secrets are never published. The example
//! also serves the OpenAPI document of its auth routes.
#![cfg(feature = "sqlite")]

#[path = "common/server.rs"]
mod server;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum_authkit::Auth;
use axum_authkit::store::MemoryStore;
use http::Request;
use http_body_util::BodyExt;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::Server;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const REFRESH_SECRET: &str = "jwks-test-refresh-secret-0123456789abcdef";
const OLD_PRIVATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_private.pem"
);
const OLD_PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ed25519_public.pem");
const NEW_PRIVATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_next_private.pem"
);
const NEW_PUBLIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/ed25519_next_public.pem"
);

/// The other service: it knows the issuer, the audience and where the JWKS
/// is, nothing else.
struct Verifier {
    jwks: JwkSet,
    raw: Value,
}

impl Verifier {
    async fn fetch(server: &Server) -> (Verifier, Value) {
        let res = reqwest::get(server.url("/.well-known/jwks.json"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/json");
        let raw: Value = res.json().await.unwrap();
        let jwks = serde_json::from_value(raw.clone()).unwrap();
        (
            Verifier {
                jwks,
                raw: raw.clone(),
            },
            raw,
        )
    }

    /// The claims of `token`, or why it was refused.
    fn verify(&self, token: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or(format!("kid {kid} not in the JWKS"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        // The algorithm comes from the published key, never from the token.
        let published = self.raw["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["kid"] == kid.as_str())
            .ok_or("no such key")?;
        let alg: Algorithm = published["alg"]
            .as_str()
            .ok_or("no alg")?
            .parse()
            .map_err(|_| "unknown alg")?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["axum-authkit"]);
        validation.set_audience(&["axum-authkit"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

fn start(db: &str, signing: &str, verify: &str) -> Server {
    Server::start(&[
        ("DATABASE_URL", db),
        ("JWT_PRIVATE_KEY_FILE", signing),
        ("JWT_VERIFY_KEY_FILES", verify),
        ("REFRESH_SECRET", REFRESH_SECRET),
        ("TOKENS_IN_BODY", "true"),
    ])
}

/// Signs up `email` and returns its access token.
async fn access_token(server: &Server, email: &str) -> String {
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Jay"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn kids(raw: &Value) -> Vec<&str> {
    raw["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn another_service_verifies_tokens_from_the_jwks_through_a_rotation() {
    let dir = std::env::temp_dir().join(format!("authkit-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("jwks.db").display());

    // One signing key.
    let server = start(&db, OLD_PRIVATE, "");
    let (verifier, raw) = Verifier::fetch(&server).await;
    assert_eq!(kids(&raw).len(), 1);
    let key = &raw["keys"][0];
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kty"], "OKP");
    assert!(key.get("d").is_none(), "no private part: {key}");
    let old_token = access_token(&server, "jwks-one@example.test").await;
    let claims = verifier.verify(&old_token).unwrap();
    assert_eq!(claims["email"], "jwks-one@example.test");
    // A tampered token is refused: the verifier really checks.
    let mut forged = old_token.clone();
    forged.pop();
    forged.push(if old_token.ends_with('A') { 'B' } else { 'A' });
    assert!(verifier.verify(&forged).is_err());
    server.stop();

    // The next key joins as verify-only: published before it signs.
    let server = start(&db, OLD_PRIVATE, NEW_PUBLIC);
    let (verifier, raw) = Verifier::fetch(&server).await;
    assert_eq!(kids(&raw).len(), 2, "{raw}");
    verifier.verify(&old_token).unwrap();
    let token = access_token(&server, "jwks-two@example.test").await;
    verifier.verify(&token).unwrap();
    server.stop();

    // The next key signs, the old one verifies only.
    let server = start(&db, NEW_PRIVATE, OLD_PUBLIC);
    let (verifier, raw) = Verifier::fetch(&server).await;
    assert_eq!(kids(&raw).len(), 2, "{raw}");
    let new_token = access_token(&server, "jwks-three@example.test").await;
    let new_kid = jsonwebtoken::decode_header(&new_token)
        .unwrap()
        .kid
        .unwrap();
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(new_kid, old_kid, "the new key signs");
    verifier.verify(&new_token).unwrap();
    verifier.verify(&old_token).unwrap();
    server.stop();

    // Retired: the old key is gone from the JWKS, and its tokens with it.
    let server = start(&db, NEW_PRIVATE, "");
    let (verifier, raw) = Verifier::fetch(&server).await;
    assert_eq!(kids(&raw), [new_kid.as_str()]);
    verifier.verify(&new_token).unwrap();
    let refused = verifier.verify(&old_token).unwrap_err();
    assert!(refused.contains("not in the JWKS"), "{refused}");
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_hmac_secret_is_never_published() {
    let secret = b"a long random secret, at least 32 bytes, never to be published";
    let auth: Auth = Auth::builder()
        .secret(secret)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let app: Router = auth.jwks_router("/keys.json");
    let res = app
        .oneshot(Request::get("/keys.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body, json!({"keys": []}));
}

#[tokio::test]
async fn the_example_server_publishes_no_hmac_key_and_its_openapi_document() {
    let dir = std::env::temp_dir().join(format!("authkit-jwks-hs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("jwks.db").display());
    let server = Server::start(&[("DATABASE_URL", &db)]);
    let res = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert_eq!(text, r#"{"keys":[]}"#);
    assert!(!text.contains(server::SECRET));
    // The OpenAPI document sits next to the routes it describes.
    #[cfg(feature = "openapi")]
    {
        let res = reqwest::get(server.url("/api/v1/auth/openapi.json"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/auth/signup/"]["post"].is_object());
        let res = reqwest::get(server.url("/api/v1/auth/nowhere/"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
