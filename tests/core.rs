//! Integration tests of the core: keys, token verification, token sources,
//! the layer and its extractors, automatic refresh, the cross-site rule and
//! the verified-token cache. Everything runs through an axum `Router` with
//! `oneshot`, or through `Auth` directly where the HTTP layer adds nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use axum_authkit::cookies::{CookiePrefix, CookieSettings};
use axum_authkit::keys::{KeyError, KeySet, SigningKey, VerifyKey};
use axum_authkit::store::{MemoryStore, NewUser, User, UserStore};
use axum_authkit::time::now_secs;
use axum_authkit::verify::TokenError;
use axum_authkit::{
    Auth, AuthBuilder, AuthError, AuthUser, CacheConfig, ConfigError, Session, VerifiedUser,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey};
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

const SECRET: &[u8] = b"core tests: the HS256 secret, 32+ bytes long";
const OTHER_SECRET: &[u8] = b"core tests: some other secret, 32+ bytes";
const REFRESH_SECRET: &[u8] = b"core tests: the refresh secret, 32+ bytes";
const KID: &str = "hs-main";
const ISS: &str = "https://issuer.test";
const AUD: &str = "https://api.test";
const HOST: &str = "api.test";
const BARE_CHALLENGE: &str = r#"Bearer realm="api""#;

const ED_PRIVATE: &[u8] = include_bytes!("keys/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed25519_public.pem");
const P256_PRIVATE: &[u8] = include_bytes!("keys/p256_private.pem");
const P256_PUBLIC: &[u8] = include_bytes!("keys/p256_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");

// ---------------------------------------------------------------------------
// Fixture: an Auth over a MemoryStore, one user, and a router that counts
// how often its handlers ran.

type Hits = Arc<AtomicUsize>;

struct Fx {
    auth: Auth,
    store: Arc<MemoryStore>,
    user: User,
    hits: Hits,
}

/// The HS256 key that signs, plus public keys that an algorithm-confusion
/// token could name.
fn keyset() -> KeySet {
    KeySet::new(SigningKey::hs256(KID, SECRET).unwrap())
        .with_verify_key(VerifyKey::rs256_pem("rsa-pub", RSA_PUBLIC).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::ed25519_pem("ed-pub", ED_PUBLIC).unwrap())
        .unwrap()
}

fn base_builder(store: &Arc<MemoryStore>, keys: KeySet) -> AuthBuilder {
    Auth::builder()
        .keys(keys)
        .refresh_secret(REFRESH_SECRET)
        .store(store.clone())
        .issuer(ISS)
        .audience(AUD)
}

async fn new_user(store: &MemoryStore, email: &str) -> User {
    store
        .create_user(NewUser {
            email: email.into(),
            name: "Test User".into(),
            password_hash: "not used here".into(),
        })
        .await
        .unwrap()
}

async fn fixture_with(configure: impl FnOnce(AuthBuilder) -> AuthBuilder) -> Fx {
    let store = Arc::new(MemoryStore::new());
    let auth = configure(base_builder(&store, keyset())).build().unwrap();
    let user = new_user(&store, "alice@example.test").await;
    Fx {
        auth,
        store,
        user,
        hits: Hits::default(),
    }
}

async fn fixture() -> Fx {
    fixture_with(|b| b).await
}

fn cache(enabled: bool) -> CacheConfig {
    if enabled {
        CacheConfig::default()
    } else {
        CacheConfig::disabled()
    }
}

fn hit(hits: &Hits) {
    hits.fetch_add(1, Ordering::SeqCst);
}

async fn me(State(hits): State<Hits>, user: AuthUser) -> Json<Value> {
    hit(&hits);
    Json(json!({"sub": user.id(), "sid": user.session_id(), "email": user.email}))
}

async fn maybe(State(hits): State<Hits>, user: Option<AuthUser>) -> String {
    hit(&hits);
    user.map_or_else(|| "anonymous".to_owned(), |u| u.id().to_owned())
}

async fn verified(State(hits): State<Hits>, user: VerifiedUser) -> String {
    hit(&hits);
    user.id().to_owned()
}

async fn open(State(hits): State<Hits>) -> &'static str {
    hit(&hits);
    "open"
}

async fn sets_cookie(State(hits): State<Hits>, _user: AuthUser) -> impl IntoResponse {
    hit(&hits);
    (
        [(header::SET_COOKIE, "access_token=from-handler; Path=/")],
        "ok",
    )
}

fn routes(hits: Hits) -> Router {
    Router::new()
        .route("/me", get(me).post(me))
        .route("/maybe", get(maybe))
        .route("/verified", get(verified))
        .route("/open", get(open).post(open))
        .route("/sets-cookie", get(sets_cookie))
        .with_state(hits)
}

impl Fx {
    /// Optional-mode layer.
    fn app(&self) -> Router {
        routes(self.hits.clone()).layer(self.auth.layer())
    }

    /// Required-mode layer.
    fn required(&self) -> Router {
        routes(self.hits.clone()).layer(self.auth.layer().required())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn session(&self) -> Session {
        self.auth.sign_in(&self.user).await.unwrap()
    }

    /// Valid claims for this user in sign-in `sid`.
    fn claims(&self, sid: &str) -> Value {
        let now = now_secs();
        json!({
            "sub": self.user.id, "email": self.user.email, "email_verified": false,
            "sid": sid, "jti": format!("jti-{now}"), "iat": now, "exp": now + 600,
            "iss": ISS, "aud": AUD,
        })
    }

    /// An access token signed with the real key, claims as given.
    fn sign(&self, claims: &Value) -> String {
        hs(&hs_header(), claims, SECRET)
    }

    /// A genuine access token that expired an hour ago.
    fn expired(&self, sid: &str) -> String {
        let now = now_secs();
        self.sign(&with(
            &self.claims(sid),
            json!({"iat": now - 4000, "exp": now - 3600}),
        ))
    }

    async fn family_rotated_at(&self, sid: &str) -> i64 {
        let family = self.auth.families().family(sid).await.unwrap().unwrap();
        family.rotated_at
    }

    async fn family_revoked(&self, sid: &str) -> bool {
        let family = self.auth.families().family(sid).await.unwrap().unwrap();
        family.revoked
    }
}

// ---------------------------------------------------------------------------
// Token crafting.

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` from raw JSON text, HMAC-SHA256 over `key`.
fn jwt(header: &str, claims: &str, key: &[u8]) -> String {
    let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let signature = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{signed}.{signature}")
}

fn hs(header: &Value, claims: &Value, key: &[u8]) -> String {
    jwt(&header.to_string(), &claims.to_string(), key)
}

fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": KID})
}

/// `base` with `changes` applied; a `null` change removes the member.
fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    let obj = out.as_object_mut().unwrap();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    out
}

fn token_header(token: &str) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(token).unwrap()
}

// ---------------------------------------------------------------------------
// HTTP helpers.

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, HOST);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

fn bearer(method: &str, uri: &str, token: &str) -> Request<Body> {
    request(
        method,
        uri,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn with_cookies(method: &str, uri: &str, cookies: &str) -> Request<Body> {
    request(method, uri, &[("cookie", cookies)])
}

struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn send(app: &Router, req: Request<Body>) -> Res {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Res {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Res {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        self
    }

    #[track_caller]
    fn error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert!(self.body["detail"].is_string(), "body: {}", self.text);
        if status != StatusCode::UNAUTHORIZED {
            assert!(self.www_authenticate().is_none());
        }
    }

    fn www_authenticate(&self) -> Option<&str> {
        self.headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
    }

    /// 401 for a request that carried no credentials: the bare challenge.
    #[track_caller]
    fn unauthenticated(&self) {
        self.error(StatusCode::UNAUTHORIZED, "not_authenticated");
        assert_eq!(self.www_authenticate(), Some(BARE_CHALLENGE));
    }

    /// 401 for a bad token: RFC 6750 `invalid_token` with a description.
    #[track_caller]
    fn invalid(&self, code: &str) {
        self.error(StatusCode::UNAUTHORIZED, code);
        let challenge = self.www_authenticate().expect("WWW-Authenticate");
        assert!(challenge.starts_with(BARE_CHALLENGE), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert!(challenge.contains(r#"error_description=""#), "{challenge}");
    }

    fn set_cookies(&self) -> Vec<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect()
    }

    #[track_caller]
    fn cookie(&self, name: &str) -> Cookie<'static> {
        let mut found: Vec<_> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.name() == name)
            .collect();
        assert_eq!(found.len(), 1, "Set-Cookie {name}: {:?}", self.headers);
        found.remove(0)
    }
}

fn code_of(err: TokenError) -> &'static str {
    AuthError::InvalidToken(err).code()
}

/// HttpOnly, Secure, SameSite=Lax, Path=/ with a positive Max-Age.
#[track_caller]
fn assert_session_cookie(c: &Cookie<'_>) {
    assert_eq!(c.http_only(), Some(true), "{c}");
    assert_eq!(c.secure(), Some(true), "{c}");
    assert_eq!(c.same_site(), Some(SameSite::Lax), "{c}");
    assert_eq!(c.path(), Some("/"), "{c}");
    assert!(c.max_age().unwrap().whole_seconds() > 0, "{c}");
    assert!(!c.value().is_empty(), "{c}");
}

#[track_caller]
fn assert_cleared(c: &Cookie<'_>, domain: Option<&str>) {
    assert_eq!(c.value(), "", "{c}");
    assert_eq!(c.max_age().unwrap().whole_seconds(), 0, "{c}");
    assert_eq!(c.path(), Some("/"), "{c}");
    assert_eq!(c.domain(), domain, "{c}");
}

async fn wait_until_after(exp: i64) {
    while now_secs() <= exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Keys.

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
        let session = signer.sign_in(&user).await.unwrap();
        let token = &session.access_token;

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
        assert_eq!(verifier.verify(token).unwrap().sid, session.family.id);

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
        let old_session = old_auth.sign_in(&user).await.unwrap();

        let rotated = KeySet::new(old_again).rotate(next).unwrap();
        assert_eq!(rotated.active_kid(), next_kid);
        assert!(rotated.get(&old_kid).is_some());
        let auth = base_builder(&store, rotated).build().unwrap();

        // The old key's token still verifies, directly and through the layer.
        let claims = auth.verify(&old_session.access_token).unwrap();
        assert_eq!(claims.sub, user.id);
        let app = routes(Hits::default()).layer(auth.layer().required());
        send(&app, bearer("GET", "/me", &old_session.access_token))
            .await
            .ok();

        // New tokens carry the new kid, from sign-in and from refresh.
        let fresh = auth.sign_in(&user).await.unwrap();
        let h = token_header(&fresh.access_token);
        assert_eq!(h.kid.as_deref(), Some(next_kid.as_str()));
        assert_eq!(h.alg, next_alg);
        let refreshed = auth.refresh(&old_session.refresh_token).await.unwrap();
        let h = token_header(&refreshed.access_token);
        assert_eq!(h.kid.as_deref(), Some(next_kid.as_str()));

        // ...which the old-only key set does not know.
        assert_eq!(
            old_auth.verify(&fresh.access_token).unwrap_err(),
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
    let token = auth.sign_in(&user).await.unwrap().access_token;
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

// ---------------------------------------------------------------------------
// Verification: every rejection, with the cache on and off.

struct Case {
    name: &'static str,
    token: String,
    err: TokenError,
}

fn rejection_cases(fx: &Fx, sid: &str, refresh_token: &str) -> Vec<Case> {
    use TokenError::*;
    let now = now_secs();
    let claims = fx.claims(sid);
    let header = hs_header();
    let claims_text = claims.to_string();
    let good = fx.sign(&claims);
    let (good_signed, good_sig) = good.rsplit_once('.').unwrap();
    let other = fx.sign(&with(&claims, json!({"sub": "mallory"})));
    let (other_signed, _) = other.rsplit_once('.').unwrap();
    let pad = "x".repeat(8 * 1024);
    let mut cases = vec![
        (
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(with(&header, json!({"alg": "none"})).to_string().as_bytes()),
                b64(claims_text.as_bytes())
            ),
            AlgorithmMismatch,
        ),
        (
            "alg none, HS256 signature",
            hs(&with(&header, json!({"alg": "none"})), &claims, SECRET),
            AlgorithmMismatch,
        ),
        (
            "alg RS256 on the HS256 key",
            hs(&with(&header, json!({"alg": "RS256"})), &claims, SECRET),
            AlgorithmMismatch,
        ),
        (
            "alg confusion: HS256 keyed with the RSA public PEM",
            hs(
                &with(&header, json!({"kid": "rsa-pub"})),
                &claims,
                RSA_PUBLIC,
            ),
            AlgorithmMismatch,
        ),
        (
            "alg confusion: HS256 keyed with the Ed25519 public PEM",
            hs(&with(&header, json!({"kid": "ed-pub"})), &claims, ED_PUBLIC),
            AlgorithmMismatch,
        ),
        (
            "unknown kid",
            hs(&with(&header, json!({"kid": "nope"})), &claims, SECRET),
            UnknownKey,
        ),
        (
            "missing kid",
            hs(&with(&header, json!({"kid": null})), &claims, SECRET),
            UnknownKey,
        ),
        (
            "kid null",
            jwt(
                r#"{"alg":"HS256","typ":"at+jwt","kid":null}"#,
                &claims_text,
                SECRET,
            ),
            UnknownKey,
        ),
        (
            "signed with another secret",
            hs(&header, &claims, OTHER_SECRET),
            BadSignature,
        ),
        (
            "signature of other claims",
            format!("{other_signed}.{good_sig}"),
            BadSignature,
        ),
        (
            "truncated signature",
            format!("{good_signed}.{}", &good_sig[..20]),
            BadSignature,
        ),
        ("empty signature", format!("{good_signed}."), BadSignature),
        (
            "expired",
            fx.sign(&with(&claims, json!({"exp": now - 3600}))),
            Expired,
        ),
        (
            "missing exp",
            fx.sign(&with(&claims, json!({"exp": null}))),
            InvalidClaims,
        ),
        (
            "string exp",
            fx.sign(&with(&claims, json!({"exp": "9999999999"}))),
            InvalidClaims,
        ),
        (
            "string nbf",
            fx.sign(&with(&claims, json!({"nbf": "0"}))),
            InvalidClaims,
        ),
        (
            "exp out of range",
            fx.sign(&with(&claims, json!({"exp": 1e300}))),
            InvalidClaims,
        ),
        (
            "duplicate exp",
            jwt(
                &header.to_string(),
                &claims_text.replacen('{', &format!("{{\"exp\":{},", now + 600), 1),
                SECRET,
            ),
            InvalidClaims,
        ),
        (
            "nbf in the future",
            fx.sign(&with(&claims, json!({"nbf": now + 3600}))),
            NotYetValid,
        ),
        (
            "wrong iss",
            fx.sign(&with(&claims, json!({"iss": "https://evil.test"}))),
            WrongIssuer,
        ),
        (
            "missing iss",
            fx.sign(&with(&claims, json!({"iss": null}))),
            InvalidClaims,
        ),
        (
            "wrong aud",
            fx.sign(&with(&claims, json!({"aud": "https://other.test"}))),
            WrongAudience,
        ),
        (
            "aud array without ours",
            fx.sign(&with(&claims, json!({"aud": ["a", "b"]}))),
            WrongAudience,
        ),
        (
            "crit header",
            hs(&with(&header, json!({"crit": ["exp"]})), &claims, SECRET),
            ForbiddenHeader,
        ),
        (
            "crit null",
            jwt(
                &format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{KID}","crit":null}}"#),
                &claims_text,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "jku header",
            hs(
                &with(&header, json!({"jku": "https://evil.test/jwks.json"})),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "jwk header",
            hs(
                &with(
                    &header,
                    json!({"jwk": {"kty": "oct", "k": b64(OTHER_SECRET)}}),
                ),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "x5u header",
            hs(
                &with(&header, json!({"x5u": "https://evil.test/cert.pem"})),
                &claims,
                SECRET,
            ),
            ForbiddenHeader,
        ),
        (
            "x5c header",
            hs(&with(&header, json!({"x5c": ["MIIB"]})), &claims, SECRET),
            ForbiddenHeader,
        ),
        (
            "typ JWT",
            hs(&with(&header, json!({"typ": "JWT"})), &claims, SECRET),
            WrongType,
        ),
        (
            "typ refresh+jwt",
            hs(
                &with(&header, json!({"typ": "refresh+jwt"})),
                &claims,
                SECRET,
            ),
            WrongType,
        ),
        (
            "no typ",
            hs(&with(&header, json!({"typ": null})), &claims, SECRET),
            WrongType,
        ),
        ("the refresh token", refresh_token.to_owned(), Malformed),
        (
            "over 8 KiB",
            fx.sign(&with(&claims, json!({"pad": pad}))),
            TooLarge,
        ),
        ("garbage", "garbage".to_owned(), Malformed),
        ("two segments", good_signed.to_owned(), Malformed),
        ("four segments", format!("{good}.{good_sig}"), Malformed),
        ("empty", String::new(), Malformed),
        (
            "header not base64",
            format!("!!!.{}", good.split_once('.').unwrap().1),
            Malformed,
        ),
        (
            "header not JSON",
            jwt("not json", &claims_text, SECRET),
            Malformed,
        ),
        (
            "duplicate alg",
            jwt(
                &format!(r#"{{"alg":"none","alg":"HS256","typ":"at+jwt","kid":"{KID}"}}"#),
                &claims_text,
                SECRET,
            ),
            Malformed,
        ),
        (
            "payload not JSON",
            jwt(&header.to_string(), "not json", SECRET),
            InvalidClaims,
        ),
    ];
    // Padding in the signature is not base64url without padding.
    cases.push(("padded signature", format!("{good}="), BadSignature));
    cases
        .into_iter()
        .map(|(name, token, err)| Case { name, token, err })
        .collect()
}

#[tokio::test]
async fn every_rejection_with_cache_on_and_off() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.token_cache(cache(cached))).await;
        let session = fx.session().await;
        let app = fx.required();
        let optional = fx.app();

        // Control: the genuine token passes.
        send(&app, bearer("GET", "/me", &session.access_token))
            .await
            .ok();
        let cases = rejection_cases(&fx, &session.family.id, &session.refresh_token);
        for case in &cases {
            let what = format!("{} (cache {cached})", case.name);
            assert_eq!(fx.auth.verify(&case.token), Err(case.err), "{what}");
            // Twice: a refused token is never remembered.
            assert_eq!(fx.auth.verify(&case.token), Err(case.err), "{what}");

            let res = send(&app, bearer("GET", "/me", &case.token)).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
            res.invalid(code_of(case.err));

            // The same token as the access cookie, no refresh cookie.
            if !case.token.is_empty() {
                let cookie = format!("access_token={}", case.token);
                let res = send(&optional, with_cookies("GET", "/me", &cookie)).await;
                assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what}");
                res.invalid(code_of(case.err));
            }
        }
        assert_eq!(fx.hits(), 1, "no handler ran for a refused token");
        assert_eq!(fx.auth.cached_tokens(), usize::from(cached));
        assert_eq!(code_of(TokenError::Expired), "token_expired");
    }
}

#[tokio::test]
async fn accepted_edge_cases_with_cache_on_and_off() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.token_cache(cache(cached))).await;
        let sid = fx.session().await.family.id;
        let now = now_secs();
        let claims = fx.claims(&sid);
        let accepted = [
            (
                "exp within the 30 s leeway",
                fx.sign(&with(&claims, json!({"exp": now - 10}))),
            ),
            (
                "nbf within the leeway",
                fx.sign(&with(&claims, json!({"nbf": now + 10}))),
            ),
            (
                "nbf in the past",
                fx.sign(&with(&claims, json!({"nbf": now - 10}))),
            ),
            (
                "aud array containing ours",
                fx.sign(&with(&claims, json!({"aud": ["other", AUD]}))),
            ),
            (
                "fractional exp",
                fx.sign(&with(&claims, json!({"exp": now as f64 + 600.5}))),
            ),
            (
                "typ application/at+jwt",
                hs(
                    &with(&hs_header(), json!({"typ": "application/at+jwt"})),
                    &claims,
                    SECRET,
                ),
            ),
            (
                "just under the size cap",
                fx.sign(&with(&claims, json!({"pad": "x".repeat(5000)}))),
            ),
        ];
        let app = fx.required();
        for (name, token) in &accepted {
            assert!(
                fx.auth.verify(token).is_ok(),
                "{name} (cache {cached}): {:?}",
                fx.auth.verify(token)
            );
            let res = send(&app, bearer("GET", "/me", token)).await;
            assert_eq!(res.ok().body["sid"], sid.as_str(), "{name}");
        }
    }
}

#[tokio::test]
async fn the_size_cap_is_configurable() {
    let fx = fixture_with(|b| b.max_token_bytes(200)).await;
    let session = fx.session().await;
    assert!(session.access_token.len() > 200);
    assert_eq!(
        fx.auth.verify(&session.access_token),
        Err(TokenError::TooLarge)
    );
}

// ---------------------------------------------------------------------------
// Token sources.

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let app = fx.required();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {token}");
        let res = send(&app, request("GET", "/me", &[("authorization", &auth)])).await;
        assert_eq!(res.ok().body["sub"], fx.user.id.as_str(), "{scheme}");
    }
    // An empty Bearer credential is a bad token, not an absent one.
    let res = send(&app, request("GET", "/me", &[("authorization", "Bearer")])).await;
    res.invalid("invalid_token");
    // Another scheme is not a credential of ours.
    let res = send(
        &app,
        request("GET", "/me", &[("authorization", "Basic YTpi")]),
    )
    .await;
    res.unauthenticated();
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let auth = format!("Bearer {token}");
    for app in [fx.app(), fx.required()] {
        for uri in ["/open", "/me"] {
            let req = request(
                "GET",
                uri,
                &[("authorization", &auth), ("authorization", &auth)],
            );
            send(&app, req)
                .await
                .error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
    assert_eq!(fx.hits(), 0);
}

#[tokio::test]
async fn bearer_beats_the_cookie_and_never_falls_back() {
    let fx = fixture().await;
    let session = fx.session().await;
    let app = fx.required();
    let token = &session.access_token;

    // Valid Bearer + garbage cookie: the Bearer decides.
    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("cookie", "access_token=garbage"),
        ],
    );
    send(&app, req).await.ok();

    // Invalid Bearer + valid cookie: 401, no fallback.
    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", "Bearer garbage"),
            ("cookie", &format!("access_token={token}")),
        ],
    );
    send(&app, req).await.invalid("invalid_token");

    // The cookie alone works.
    let cookie = format!("access_token={token}");
    send(&app, with_cookies("GET", "/me", &cookie)).await.ok();
    assert_eq!(fx.hits(), 2);
}

#[tokio::test]
async fn access_token_query_parameter_is_ignored() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let app = fx.required();
    let uri = format!("/me?access_token={token}");
    send(&app, request("GET", &uri, &[]))
        .await
        .unauthenticated();
    let optional = fx.app();
    let uri = format!("/maybe?access_token={token}");
    let res = send(&optional, request("GET", &uri, &[])).await;
    assert_eq!(res.ok().text, "anonymous");
}

#[tokio::test]
async fn configurable_cookie_names_are_read_and_written() {
    let fx = fixture_with(|b| {
        b.access_cookie(CookieSettings::new("at").prefix(CookiePrefix::Host))
            .refresh_cookie(CookieSettings::new("rt").prefix(CookiePrefix::Host))
    })
    .await;
    assert_eq!(fx.auth.config().access_cookie().cookie_name(), "__Host-at");
    let session = fx.session().await;
    let app = fx.required();
    let token = &session.access_token;

    let cookie = format!("__Host-at={token}");
    send(&app, with_cookies("GET", "/me", &cookie)).await.ok();
    // The default name means nothing now.
    let cookie = format!(
        "access_token={token}; refresh_token={}",
        session.refresh_token
    );
    send(&app, with_cookies("GET", "/me", &cookie))
        .await
        .unauthenticated();

    // Automatic refresh reads and writes the configured names.
    let cookie = format!(
        "__Host-at={}; __Host-rt={}",
        fx.expired(&session.family.id),
        session.refresh_token
    );
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    res.ok();
    assert_session_cookie(&res.cookie("__Host-at"));
    assert_session_cookie(&res.cookie("__Host-rt"));
    assert_eq!(res.set_cookies().len(), 2);

    // A __Host- cookie without Secure is refused at build time.
    let err = base_builder(&Arc::new(MemoryStore::new()), keyset())
        .access_cookie(CookieSettings::new("at").prefix(CookiePrefix::Host))
        .cookie_secure(false)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------
// The layer and the extractors.

#[tokio::test]
async fn required_mode_answers_401_before_the_handler() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let app = fx.required();

    send(&app, request("GET", "/open", &[]))
        .await
        .unauthenticated();
    send(&app, request("POST", "/open", &[]))
        .await
        .unauthenticated();
    send(&app, bearer("GET", "/open", "garbage"))
        .await
        .invalid("invalid_token");
    send(&app, with_cookies("GET", "/open", "access_token=garbage"))
        .await
        .invalid("invalid_token");
    assert_eq!(fx.hits(), 0, "the inner service must not run");

    send(&app, bearer("GET", "/open", &token)).await.ok();
    assert_eq!(fx.hits(), 1);
}

#[tokio::test]
async fn optional_mode_lets_requests_through_and_extractors_decide() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let app = fx.app();

    assert_eq!(
        send(&app, request("GET", "/open", &[])).await.ok().text,
        "open"
    );
    let res = send(&app, request("GET", "/maybe", &[])).await;
    assert_eq!(res.ok().text, "anonymous");
    let res = send(&app, bearer("GET", "/maybe", &token)).await;
    assert_eq!(res.ok().text, fx.user.id);
    assert_eq!(fx.hits(), 3);

    // Option<AuthUser> with a bad token rejects.
    send(&app, bearer("GET", "/maybe", "garbage"))
        .await
        .invalid("invalid_token");
    let expired = fx.expired("sid");
    send(&app, bearer("GET", "/maybe", &expired))
        .await
        .invalid("token_expired");
    // AuthUser: 401 either way.
    send(&app, request("GET", "/me", &[]))
        .await
        .unauthenticated();
    send(&app, bearer("GET", "/me", "garbage"))
        .await
        .invalid("invalid_token");
    assert_eq!(fx.hits(), 3);

    // An open route ignores a bad token in optional mode.
    send(&app, bearer("GET", "/open", "garbage")).await.ok();
}

#[tokio::test]
async fn verified_user_needs_a_verified_email() {
    let fx = fixture().await;
    let app = fx.app();
    let unverified = fx.session().await.access_token;
    send(&app, bearer("GET", "/verified", &unverified))
        .await
        .error(StatusCode::FORBIDDEN, "email_not_verified");
    send(&app, request("GET", "/verified", &[]))
        .await
        .unauthenticated();
    assert_eq!(fx.hits(), 0);

    fx.store.mark_email_verified(&fx.user.id).await.unwrap();
    let user = fx.store.user_by_id(&fx.user.id).await.unwrap().unwrap();
    let verified = fx.auth.sign_in(&user).await.unwrap().access_token;
    let res = send(&app, bearer("GET", "/verified", &verified)).await;
    assert_eq!(res.ok().text, fx.user.id);
}

#[tokio::test]
async fn extractors_without_the_layer_fail_loudly() {
    let fx = fixture().await;
    let token = fx.session().await.access_token;
    let app = routes(fx.hits.clone());
    for (uri, extractor) in [
        ("/me", "AuthUser"),
        ("/maybe", "Option<AuthUser>"),
        ("/verified", "VerifiedUser"),
    ] {
        let res = send(&app, bearer("GET", uri, &token)).await;
        res.error(StatusCode::INTERNAL_SERVER_ERROR, "auth_layer_missing");
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains(extractor), "{detail}");
        assert!(detail.contains("AuthLayer"), "{detail}");
        assert!(detail.contains("auth.layer()"), "{detail}");
        assert!(!detail.contains("`auth.required()`"), "{detail}");
    }
    assert_eq!(fx.hits(), 0);
}

#[tokio::test]
async fn nested_layers_refresh_once() {
    let fx = fixture().await;
    let session = fx.session().await;
    let app = routes(fx.hits.clone())
        .layer(fx.auth.layer())
        .layer(fx.auth.layer().required());
    let cookie = format!("refresh_token={}", session.refresh_token);
    let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
    res.ok();
    assert_eq!(res.set_cookies().len(), 2);
    let next = res.cookie("refresh_token");
    // Exactly one rotation: the new token is live, the old one its predecessor.
    let again = fx.auth.refresh(next.value()).await.unwrap();
    assert!(!again.family.revoked);
}

// ---------------------------------------------------------------------------
// Automatic refresh.

#[tokio::test]
async fn expired_or_missing_access_cookie_is_refreshed() {
    let fx = fixture().await;
    for (mode, app) in [("optional", fx.app()), ("required", fx.required())] {
        for access in [true, false] {
            let session = fx.session().await;
            let sid = &session.family.id;
            let cookie = if access {
                let expired = fx.expired(sid);
                assert_eq!(fx.auth.verify(&expired), Err(TokenError::Expired));
                format!(
                    "access_token={expired}; refresh_token={}",
                    session.refresh_token
                )
            } else {
                format!("refresh_token={}", session.refresh_token)
            };
            let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
            let what = format!("{mode}, access cookie sent: {access}");
            assert_eq!(res.ok().body["sid"], sid.as_str(), "{what}");
            assert_eq!(res.body["sub"], fx.user.id.as_str());

            let access_cookie = res.cookie("access_token");
            let refresh_cookie = res.cookie("refresh_token");
            assert_session_cookie(&access_cookie);
            assert_session_cookie(&refresh_cookie);
            assert_eq!(
                access_cookie.max_age(),
                Some(cookie::time::Duration::seconds(15 * 60))
            );
            let claims = fx.auth.verify(access_cookie.value()).unwrap();
            assert_eq!(claims.sid, *sid);
            assert_ne!(refresh_cookie.value(), session.refresh_token);
            assert_ne!(fx.family_rotated_at(sid).await, 0, "{what}");

            // The new pair works: the access cookie directly...
            let cookie = format!("access_token={}", access_cookie.value());
            let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
            res.ok();
            assert!(res.set_cookies().is_empty());
            // ...and the refresh cookie for the next rotation.
            fx.auth.refresh(refresh_cookie.value()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_forged_or_invalid_access_cookie_is_not_refreshed() {
    let fx = fixture().await;
    let app = fx.required();
    let session = fx.session().await;
    let sid = &session.family.id;
    let now = now_secs();
    let expired_claims = with(
        &fx.claims(sid),
        json!({"iat": now - 4000, "exp": now - 3600}),
    );
    let forged = [
        (
            "bad signature",
            hs(&hs_header(), &expired_claims, OTHER_SECRET),
        ),
        (
            "unknown kid",
            hs(
                &with(&hs_header(), json!({"kid": "x"})),
                &expired_claims,
                SECRET,
            ),
        ),
        (
            "wrong issuer",
            fx.sign(&with(&expired_claims, json!({"iss": "https://evil.test"}))),
        ),
        ("garbage", "garbage".to_owned()),
    ];
    for (name, token) in forged {
        let cookie = format!(
            "access_token={token}; refresh_token={}",
            session.refresh_token
        );
        let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{name}");
        res.invalid("invalid_token");
        assert!(res.set_cookies().is_empty(), "{name}");
    }
    assert_eq!(fx.family_rotated_at(sid).await, 0, "no rotation happened");
    assert_eq!(fx.hits(), 0);
}

#[tokio::test]
async fn no_automatic_refresh_when_an_authorization_header_came() {
    let fx = fixture().await;
    let app = fx.required();
    let session = fx.session().await;
    let sid = &session.family.id;
    let expired = fx.expired(sid);
    let cookie = format!(
        "access_token={expired}; refresh_token={}",
        session.refresh_token
    );

    let req = request(
        "GET",
        "/me",
        &[
            ("authorization", &format!("Bearer {expired}")),
            ("cookie", &cookie),
        ],
    );
    let res = send(&app, req).await;
    res.invalid("token_expired");
    assert!(res.set_cookies().is_empty());

    let req = request(
        "GET",
        "/me",
        &[("authorization", "Basic YTpi"), ("cookie", &cookie)],
    );
    // The cookie is still read (Basic is the app's business), but with an
    // Authorization header the layer never refreshes.
    let res = send(&app, req).await;
    res.invalid("token_expired");
    assert!(res.set_cookies().is_empty());
    assert_eq!(fx.family_rotated_at(sid).await, 0);
}

#[tokio::test]
async fn an_invalid_refresh_cookie_is_cleared() {
    let fx = fixture().await;
    let session = fx.session().await;
    let expired = fx.expired(&session.family.id);
    let unknown = URL_SAFE_NO_PAD.encode([9u8; 48]);
    for refresh in ["garbage", unknown.as_str()] {
        for (with_access, app) in [(true, fx.required()), (false, fx.app())] {
            let cookie = if with_access {
                format!("access_token={expired}; refresh_token={refresh}")
            } else {
                format!("refresh_token={refresh}")
            };
            let res = send(&app, with_cookies("GET", "/me", &cookie)).await;
            res.invalid("invalid_refresh_token");
            assert_cleared(&res.cookie("access_token"), None);
            assert_cleared(&res.cookie("refresh_token"), None);
        }
    }
    // On a route that does not need a user, the request goes through and the
    // stale cookies are still cleared.
    let res = send(
        &fx.app(),
        with_cookies("GET", "/open", "refresh_token=garbage"),
    )
    .await;
    res.ok();
    assert_cleared(&res.cookie("refresh_token"), None);
    assert_eq!(fx.hits(), 1);
    assert_eq!(fx.family_rotated_at(&session.family.id).await, 0);
}

#[tokio::test]
async fn cleared_cookies_repeat_path_and_domain() {
    let fx = fixture_with(|b| {
        b.access_cookie(CookieSettings::new("access_token").domain(Some("api.test")))
            .refresh_cookie(
                CookieSettings::new("refresh_token")
                    .domain(Some("api.test"))
                    .path("/"),
            )
    })
    .await;
    let res = send(
        &fx.required(),
        with_cookies("GET", "/me", "refresh_token=garbage"),
    )
    .await;
    res.invalid("invalid_refresh_token");
    assert_cleared(&res.cookie("access_token"), Some("api.test"));
    assert_cleared(&res.cookie("refresh_token"), Some("api.test"));
}

#[tokio::test]
async fn a_handler_setting_the_same_cookie_keeps_its_own() {
    let fx = fixture().await;
    let session = fx.session().await;
    let cookie = format!(
        "access_token={}; refresh_token={}",
        fx.expired(&session.family.id),
        session.refresh_token
    );
    let res = send(&fx.required(), with_cookies("GET", "/sets-cookie", &cookie)).await;
    res.ok();
    assert_eq!(res.cookie("access_token").value(), "from-handler");
    assert_session_cookie(&res.cookie("refresh_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_all_succeed() {
    const N: usize = 20;
    let fx = fixture().await;
    for round in 0..5 {
        let session = fx.session().await;
        let sid = session.family.id.clone();
        let cookie = format!(
            "access_token={}; refresh_token={}",
            fx.expired(&sid),
            session.refresh_token
        );
        let app = fx.required();
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let (app, cookie, barrier) = (app.clone(), cookie.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    send(&app, with_cookies("GET", "/me", &cookie)).await
                })
            })
            .collect();
        let mut successors = HashSet::new();
        for task in tasks {
            let res = task.await.unwrap();
            assert_eq!(res.status, StatusCode::OK, "round {round}: {}", res.text);
            assert_eq!(res.body["sid"], sid.as_str());
            let access = res.cookie("access_token");
            assert_eq!(fx.auth.verify(access.value()).unwrap().sid, sid);
            successors.insert(res.cookie("refresh_token").value().to_owned());
        }
        assert_eq!(successors.len(), 1, "one successor for all racers");

        let family = fx.auth.families().family(&sid).await.unwrap().unwrap();
        assert!(!family.revoked, "round {round}: the family was revoked");
        let rotated = successors.into_iter().next().unwrap();
        let next = fx.auth.refresh(&rotated).await.unwrap();
        assert!(!next.family.revoked);
        assert_ne!(next.refresh_token, rotated);
        assert!(!fx.family_revoked(&sid).await);
        assert!(fx.auth.verify(&next.access_token).is_ok());
    }
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let fx = fixture_with(|b| b.reuse_grace(Duration::from_millis(200))).await;
    let app = fx.required();
    let session = fx.session().await;
    let sid = &session.family.id;
    let old = format!("refresh_token={}", session.refresh_token);

    let res = send(&app, with_cookies("GET", "/me", &old)).await;
    res.ok();
    let new_refresh = res.cookie("refresh_token").value().to_owned();
    let new_access = res.cookie("access_token").value().to_owned();
    fx.auth.verify(&new_access).unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = send(&app, with_cookies("GET", "/me", &old)).await;
    res.invalid("invalid_refresh_token");
    assert_cleared(&res.cookie("refresh_token"), None);
    assert!(fx.family_revoked(sid).await);

    // The whole sign-in is gone: the successor and its access token too.
    let new = format!("refresh_token={new_refresh}");
    send(&app, with_cookies("GET", "/me", &new))
        .await
        .invalid("invalid_refresh_token");
    assert!(matches!(
        fx.auth.refresh(&new_refresh).await,
        Err(AuthError::InvalidRefreshToken)
    ));
    assert_eq!(fx.auth.verify(&new_access), Err(TokenError::Revoked));
    send(&app, bearer("GET", "/me", &new_access))
        .await
        .invalid("invalid_token");
}

#[tokio::test]
async fn within_the_grace_window_the_old_token_gets_the_same_successor() {
    let fx = fixture().await; // default grace: 10 s
    let app = fx.required();
    let session = fx.session().await;
    let sid = &session.family.id;
    let old = format!("refresh_token={}", session.refresh_token);

    let first = send(&app, with_cookies("GET", "/me", &old)).await;
    first.ok();
    let second = send(&app, with_cookies("GET", "/me", &old)).await;
    second.ok();
    let t1 = first.cookie("refresh_token").value().to_owned();
    assert_eq!(second.cookie("refresh_token").value(), t1);
    assert!(!fx.family_revoked(sid).await);

    // One more generation: the first token is now two back, which is reuse.
    let t2 = fx.auth.refresh(&t1).await.unwrap().refresh_token;
    send(&app, with_cookies("GET", "/me", &old))
        .await
        .invalid("invalid_refresh_token");
    assert!(fx.family_revoked(sid).await);
    assert!(fx.auth.refresh(&t2).await.is_err());
}

// ---------------------------------------------------------------------------
// Cross-site requests.

#[tokio::test]
async fn csrf_applies_to_cookie_authenticated_unsafe_requests() {
    let fx = fixture_with(|b| b.allowed_origins(["https://app.test"])).await;
    let session = fx.session().await;
    let app = fx.required();
    let cookie = format!("access_token={}", session.access_token);
    let cookie = cookie.as_str();

    let refused: [&[(&str, &str)]; 4] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.test")],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.test"),
        ],
    ];
    for headers in refused {
        let mut all = vec![("cookie", cookie)];
        all.extend_from_slice(headers);
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let res = send(&app, request(method, "/me", &all)).await;
            res.error(StatusCode::FORBIDDEN, "csrf_failed");
        }
    }
    assert_eq!(fx.hits(), 0);

    let allowed: [&[(&str, &str)]; 6] = [
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        &[("origin", "http://api.test")],
        &[("origin", "https://app.test")],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.test"),
        ],
        &[], // neither header: not a browser request
    ];
    for headers in allowed {
        let mut all = vec![("cookie", cookie)];
        all.extend_from_slice(headers);
        send(&app, request("POST", "/me", &all)).await.ok();
    }

    // Safe methods pass whatever their origin.
    let res = send(
        &app,
        request(
            "GET",
            "/me",
            &[("cookie", cookie), ("sec-fetch-site", "cross-site")],
        ),
    )
    .await;
    res.ok();

    // Bearer-authenticated requests are exempt.
    let auth = format!("Bearer {}", session.access_token);
    let res = send(
        &app,
        request(
            "POST",
            "/me",
            &[
                ("authorization", &auth),
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ],
        ),
    )
    .await;
    res.ok();
    assert_eq!(fx.hits(), 8);
}

#[tokio::test]
async fn cross_site_auto_refresh_is_refused_without_rotation() {
    let fx = fixture().await;
    let session = fx.session().await;
    let sid = &session.family.id;
    let cookie = format!(
        "access_token={}; refresh_token={}",
        fx.expired(sid),
        session.refresh_token
    );
    for app in [fx.app(), fx.required()] {
        for headers in [
            [
                ("cookie", cookie.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
            [("cookie", cookie.as_str()), ("origin", "https://evil.test")],
        ] {
            let res = send(&app, request("POST", "/me", &headers)).await;
            res.error(StatusCode::FORBIDDEN, "csrf_failed");
            assert!(res.set_cookies().is_empty());
        }
    }
    assert_eq!(fx.family_rotated_at(sid).await, 0, "no rotation");
    assert_eq!(fx.hits(), 0);

    // The same request from this site refreshes.
    let headers = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let res = send(&fx.required(), request("POST", "/me", &headers)).await;
    res.ok();
    assert_session_cookie(&res.cookie("refresh_token"));
    assert_ne!(fx.family_rotated_at(sid).await, 0);
}

// ---------------------------------------------------------------------------
// The verified-token cache.

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
    let token = fx.session().await.access_token;
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
            b.token_cache(cache(cached))
                .access_ttl(Duration::from_secs(1))
                .leeway(Duration::ZERO)
        })
        .await;
        let session = fx.session().await;
        let app = fx.required();
        send(&app, bearer("GET", "/me", &session.access_token))
            .await
            .ok();
        assert_eq!(
            fx.auth.verify(&session.access_token).unwrap().exp,
            session.claims.exp
        );
        assert_eq!(fx.auth.cached_tokens(), usize::from(cached));
        fixtures.push((cached, fx, session, app));
    }
    let last_exp = fixtures.iter().map(|f| f.2.claims.exp).max().unwrap();
    wait_until_after(last_exp).await;
    for (cached, fx, session, app) in fixtures {
        assert_eq!(
            fx.auth.verify(&session.access_token),
            Err(TokenError::Expired),
            "cache {cached}"
        );
        send(&app, bearer("GET", "/me", &session.access_token))
            .await
            .invalid("token_expired");
        assert_eq!(fx.auth.cached_tokens(), 0, "cache {cached}");
    }
}

#[tokio::test]
async fn revoking_a_sign_in_rejects_its_cached_access_token_at_once() {
    for cached in [true, false] {
        let fx = fixture_with(|b| b.token_cache(cache(cached))).await;
        let app = fx.required();
        let session = fx.session().await;
        let other_device = fx.session().await;
        for s in [&session, &other_device] {
            send(&app, bearer("GET", "/me", &s.access_token)).await.ok();
        }
        assert_eq!(fx.auth.cached_tokens(), if cached { 2 } else { 0 });

        let revoked = fx.auth.revoke(&session.refresh_token).await.unwrap();
        assert_eq!(revoked.unwrap().id, session.family.id);
        for _ in 0..2 {
            assert_eq!(
                fx.auth.verify(&session.access_token),
                Err(TokenError::Revoked),
                "cache {cached}"
            );
            send(&app, bearer("GET", "/me", &session.access_token))
                .await
                .invalid("invalid_token");
        }
        assert!(fx.family_revoked(&session.family.id).await);
        assert!(fx.auth.refresh(&session.refresh_token).await.is_err());

        // The other sign-in is untouched, until the user is signed out everywhere.
        send(&app, bearer("GET", "/me", &other_device.access_token))
            .await
            .ok();
        assert_eq!(fx.auth.revoke_user(&fx.user.id).await.unwrap(), 1);
        assert_eq!(
            fx.auth.verify(&other_device.access_token),
            Err(TokenError::Revoked)
        );
        // Revoking with an unknown token revokes nothing.
        assert!(fx.auth.revoke("garbage").await.unwrap().is_none());
    }
}
