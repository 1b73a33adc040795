//! The fixture (an `Auth` over a `MemoryStore`, one user, a router that
//! counts how often its handlers ran), token crafting, and HTTP helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use axum_authkit::keys::{KeySet, SigningKey, VerifyKey};
use axum_authkit::store::{MemoryStore, NewUser, Session, SessionStore, User, UserStore};
use axum_authkit::{
    Auth, AuthBuilder, AuthError, AuthUser, CacheSettings, Client, TokenError, Tokens, VerifiedUser,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const SECRET: &[u8] = b"core tests: the HS256 secret, 32+ bytes long";
pub const OTHER_SECRET: &[u8] = b"core tests: some other secret, 32+ bytes";
pub const REFRESH_SECRET: &[u8] = b"core tests: the refresh secret, 32+ bytes";
pub const KID: &str = "hs-main";
pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "https://api.test";
pub const HOST: &str = "api.test";
pub const BARE_CHALLENGE: &str = r#"Bearer realm="api""#;

pub const ED_PRIVATE: &[u8] = include_bytes!("../keys/ed25519_private.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../keys/ed25519_public.pem");
pub const P256_PRIVATE: &[u8] = include_bytes!("../keys/p256_private.pem");
pub const P256_PUBLIC: &[u8] = include_bytes!("../keys/p256_public.pem");
pub const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa_public.pem");

/// Seconds since the Unix epoch, as the tokens count them.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

fn now_millis() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// Returns once the crate's clock (coarse, a few ms behind) is past `exp`.
pub async fn wait_until_after(exp: i64) {
    while now_millis() <= (exp + 1) * 1000 + 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// The fixture.

pub type Hits = Arc<AtomicUsize>;

pub struct Fx {
    pub auth: Auth,
    pub store: Arc<MemoryStore>,
    pub user: User,
    pub hits: Hits,
}

/// The HS256 key that signs, plus public keys that an algorithm-confusion
/// token could name.
pub fn keyset() -> KeySet {
    KeySet::new(SigningKey::hs256(KID, SECRET).unwrap())
        .with_verify_key(VerifyKey::rs256_pem("rsa-pub", RSA_PUBLIC).unwrap())
        .unwrap()
        .with_verify_key(VerifyKey::ed25519_pem("ed-pub", ED_PUBLIC).unwrap())
        .unwrap()
}

pub fn base_builder(store: &Arc<MemoryStore>, keys: KeySet) -> AuthBuilder {
    Auth::builder()
        .keys(keys)
        .refresh_secret(REFRESH_SECRET)
        .store(store.clone())
        .with_issuer(ISS)
        .with_audience(AUD)
}

pub async fn new_user(store: &MemoryStore, email: &str) -> User {
    store
        .create_user(NewUser {
            email: email.into(),
            email_key: axum_authkit::store::email_key(email),
            name: "Test User".into(),
            password_hash: "not used here".into(),
        })
        .await
        .unwrap()
}

/// A fixture whose `Auth` was built from `store` by the caller.
pub async fn fixture_on(store: Arc<MemoryStore>, auth: Auth) -> Fx {
    let user = new_user(&store, "alice@example.test").await;
    Fx {
        auth,
        store,
        user,
        hits: Hits::default(),
    }
}

pub async fn fixture_with(configure: impl FnOnce(AuthBuilder) -> AuthBuilder) -> Fx {
    let store = Arc::new(MemoryStore::new());
    let auth = configure(base_builder(&store, keyset())).build().unwrap();
    fixture_on(store, auth).await
}

pub async fn fixture() -> Fx {
    fixture_with(|b| b).await
}

pub fn cache(enabled: bool) -> CacheSettings {
    if enabled {
        CacheSettings::default()
    } else {
        CacheSettings::disabled()
    }
}

fn hit(hits: &Hits) {
    hits.fetch_add(1, Ordering::SeqCst);
}

async fn me(State(hits): State<Hits>, user: AuthUser) -> Json<Value> {
    hit(&hits);
    Json(json!({
        "sub": user.id(), "sid": user.session_id(), "email": user.email, "jti": user.jti,
    }))
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

/// `/me` (`AuthUser`), `/maybe` (`Option<AuthUser>`), `/verified`
/// (`VerifiedUser`), `/open` (no extractor), `/sets-cookie` (a handler
/// setting `access_token` itself); every handler counts in `hits`.
pub fn routes(hits: Hits) -> Router {
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
    pub fn app(&self) -> Router {
        routes(self.hits.clone()).layer(self.auth.layer())
    }

    /// Required-mode layer.
    pub fn required(&self) -> Router {
        routes(self.hits.clone()).layer(self.auth.layer().required())
    }

    /// How many handlers ran.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// A new session of the fixture's user.
    pub async fn session(&self) -> Tokens {
        self.auth
            .start_session(&self.user, &Client::trusted())
            .await
            .unwrap()
    }

    /// Valid claims for this user in session `sid`.
    pub fn claims(&self, sid: &str) -> Value {
        let now = now_secs();
        json!({
            "sub": self.user.id, "email": self.user.email, "email_verified": false,
            "sid": sid, "jti": format!("jti-{now}"), "iat": now, "exp": now + 600,
            "iss": ISS, "aud": AUD,
        })
    }

    /// An access token signed with the real key, claims as given.
    pub fn sign(&self, claims: &Value) -> String {
        hs(&hs_header(), claims, SECRET)
    }

    /// A genuine access token that expired an hour ago.
    pub fn expired(&self, sid: &str) -> String {
        let now = now_secs();
        self.sign(&with(
            &self.claims(sid),
            json!({"iat": now - 4000, "exp": now - 3600}),
        ))
    }

    /// A genuine access token past its `exp` by 10 s: inside the 30 s leeway.
    pub fn just_expired(&self, sid: &str) -> String {
        let now = now_secs();
        self.sign(&with(
            &self.claims(sid),
            json!({"iat": now - 900, "exp": now - 10, "jti": "just-expired"}),
        ))
    }

    /// The session as stored.
    pub async fn stored(&self, sid: &str) -> Session {
        self.store.session(sid).await.unwrap().unwrap()
    }

    pub async fn session_rotated_at(&self, sid: &str) -> i64 {
        self.stored(sid).await.rotated_at
    }

    pub async fn session_revoked(&self, sid: &str) -> bool {
        self.stored(sid).await.revoked
    }
}

// ---------------------------------------------------------------------------
// Token crafting.

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` from raw JSON text, HMAC-SHA256 over `key`.
pub fn jwt(header: &str, claims: &str, key: &[u8]) -> String {
    let signed = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let signature = jsonwebtoken::crypto::sign(
        signed.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{signed}.{signature}")
}

pub fn hs(header: &Value, claims: &Value, key: &[u8]) -> String {
    jwt(&header.to_string(), &claims.to_string(), key)
}

pub fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": KID})
}

/// `base` with `changes` applied; a `null` change removes the member.
pub fn with(base: &Value, changes: Value) -> Value {
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

pub fn token_header(token: &str) -> jsonwebtoken::Header {
    jsonwebtoken::decode_header(token).unwrap()
}

pub fn code_of(err: TokenError) -> &'static str {
    AuthError::InvalidToken(err).code()
}

// ---------------------------------------------------------------------------
// HTTP helpers.

pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, HOST);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

pub fn bearer(method: &str, uri: &str, token: &str) -> Request<Body> {
    request(
        method,
        uri,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

pub fn with_cookies(method: &str, uri: &str, cookies: &str) -> Request<Body> {
    request(method, uri, &[("cookie", cookies)])
}

/// `refresh_token=...`, after `access_token=...` when one is given.
pub fn session_cookies(access: Option<&str>, refresh: &str) -> String {
    match access {
        Some(access) => format!("access_token={access}; refresh_token={refresh}"),
        None => format!("refresh_token={refresh}"),
    }
}

pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn send(app: &Router, req: Request<Body>) -> Res {
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
    pub fn ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        self
    }

    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert!(self.body["detail"].is_string(), "body: {}", self.text);
        if status != StatusCode::UNAUTHORIZED {
            assert!(self.www_authenticate().is_none());
        }
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        self.headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
    }

    /// 401 for a request without (usable) credentials: the bare challenge.
    #[track_caller]
    pub fn unauthenticated(&self) {
        self.error(StatusCode::UNAUTHORIZED, "not_authenticated");
        assert_eq!(self.www_authenticate(), Some(BARE_CHALLENGE));
    }

    /// 401 for a bad token: RFC 6750 `invalid_token` with a description.
    #[track_caller]
    pub fn invalid(&self, code: &str) {
        self.error(StatusCode::UNAUTHORIZED, code);
        let challenge = self.www_authenticate().expect("WWW-Authenticate");
        assert!(challenge.starts_with(BARE_CHALLENGE), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert!(challenge.contains(r#"error_description=""#), "{challenge}");
    }

    pub fn set_cookies(&self) -> Vec<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect()
    }

    #[track_caller]
    pub fn cookie(&self, name: &str) -> Cookie<'static> {
        let mut found: Vec<_> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.name() == name)
            .collect();
        assert_eq!(found.len(), 1, "Set-Cookie {name}: {:?}", self.headers);
        found.remove(0)
    }

    /// Both default cookies cleared, and nothing else set.
    #[track_caller]
    pub fn clears_both_cookies(&self) {
        assert_cleared(&self.cookie("access_token"), None);
        assert_cleared(&self.cookie("refresh_token"), None);
        assert_eq!(self.set_cookies().len(), 2, "{:?}", self.headers);
    }
}

/// HttpOnly, Secure, SameSite=Lax, Path=/ with a positive Max-Age.
#[track_caller]
pub fn assert_session_cookie(c: &Cookie<'_>) {
    assert_eq!(c.http_only(), Some(true), "{c}");
    assert_eq!(c.secure(), Some(true), "{c}");
    assert_eq!(c.same_site(), Some(SameSite::Lax), "{c}");
    assert_eq!(c.path(), Some("/"), "{c}");
    assert!(c.max_age().unwrap().whole_seconds() > 0, "{c}");
    assert!(!c.value().is_empty(), "{c}");
}

#[track_caller]
pub fn assert_cleared(c: &Cookie<'_>, domain: Option<&str>) {
    assert_eq!(c.value(), "", "{c}");
    assert_eq!(c.max_age().unwrap().whole_seconds(), 0, "{c}");
    assert_eq!(c.path(), Some("/"), "{c}");
    assert_eq!(c.domain(), domain, "{c}");
}
