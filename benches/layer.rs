//! One authenticated request, `GET /me` with a Bearer header (a session
//! cookie for axum-login), whose handler answers a short static string,
//! through:
//!
//! - `request/baseline`: the plain axum 0.8 router, no auth;
//! - `request/authkit_cached`: the same router with `auth.layer().required()`
//!   and an `AuthUser` handler, the same token every time (cache hit);
//! - `request/authkit_first_seen`: the same, built with
//!   `CacheSettings::disabled()`, so every request verifies the token in full
//!   (what a token's first request costs);
//! - `request/jwt_authorizer`: jwt-authorizer 0.15's layer on an axum 0.7
//!   router (HS256 secret, `iss` and `aud` checked), `JwtClaims` handler;
//! - `request/axum_jwt_auth`: axum-jwt-auth 0.7, which has no layer: its
//!   `Claims` extractor decodes with an HS256 `LocalDecoder` in router state;
//! - `request/axum_login`: axum-login 0.18 (`login_required!`) over
//!   tower-sessions 0.14's memory store, with the cookie of a prior login.
//!
//! Every router is driven the same way: `oneshot` on a clone, inside
//! `b.to_async` on a current-thread runtime, status checked and body read.
//! The JWT peers verify the very token authkit verifies.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum_authkit::{AccessClaims, Auth, CacheSettings};
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::ServiceExt;

use common::{AUDIENCE, BODY, HS256_SECRET, ISSUER, authkit_me, hs256_auth, plain, token};

async fn jwt_authorizer_me(claims: jwt_authorizer::JwtClaims<AccessClaims>) -> &'static str {
    black_box(&claims);
    BODY
}

async fn axum_jwt_auth_me(claims: axum_jwt_auth::Claims<AccessClaims>) -> &'static str {
    black_box(&claims.claims);
    BODY
}

// ---- axum-login backend -----------------------------------------------------

#[derive(Clone, Debug)]
struct LoginUser {
    id: u64,
    auth_hash: Vec<u8>,
}

impl axum_login::AuthUser for LoginUser {
    type Id = u64;
    fn id(&self) -> u64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

#[derive(Clone, Default)]
struct LoginBackend {
    users: Arc<HashMap<u64, LoginUser>>,
}

impl axum_login::AuthnBackend for LoginBackend {
    type User = LoginUser;
    type Credentials = u64;
    type Error = Infallible;

    async fn authenticate(&self, id: u64) -> Result<Option<LoginUser>, Infallible> {
        Ok(self.users.get(&id).cloned())
    }

    async fn get_user(&self, id: &u64) -> Result<Option<LoginUser>, Infallible> {
        Ok(self.users.get(id).cloned())
    }
}

type LoginSession = axum_login::AuthSession<LoginBackend>;

async fn login(mut session: LoginSession) -> StatusCode {
    match session.authenticate(1).await {
        Ok(Some(user)) if session.login(&user).await.is_ok() => StatusCode::NO_CONTENT,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn login_me(session: LoginSession) -> &'static str {
    black_box(&session.user);
    BODY
}

// ---- the contestants --------------------------------------------------------

/// A router of either axum version, with the one header its request carries.
enum App {
    Axum08(Router),
    Axum07(axum07::Router),
    /// The layer around the whole router (`auth.layer().layer(router)`),
    /// instead of `Router::layer`, which boxes each route once more.
    Outer(axum_authkit::layer::AuthService<Router>),
}

struct Contestant {
    name: &'static str,
    app: App,
    header: (HeaderName, HeaderValue),
}

fn request(header: &(HeaderName, HeaderValue)) -> Request<axum::body::Body> {
    Request::get("/me")
        .header(header.0.clone(), header.1.clone())
        .body(axum::body::Body::empty())
        .expect("request")
}

fn request07(header: &(HeaderName, HeaderValue)) -> Request<axum07::body::Body> {
    Request::get("/me")
        .header(header.0.clone(), header.1.clone())
        .body(axum07::body::Body::empty())
        .expect("request")
}

/// One request through a clone of the router: status checked, body read.
async fn call(app: &App, header: &(HeaderName, HeaderValue)) -> bytes::Bytes {
    let (status, body) = match app {
        App::Axum08(router) => send(router.clone(), request(header)).await,
        App::Outer(service) => send(service.clone(), request(header)).await,
        App::Axum07(router) => send(router.clone(), request07(header)).await,
    };
    assert_eq!(status, StatusCode::OK, "request refused: {body:?}");
    body
}

async fn send<S, ReqBody, ResBody>(service: S, req: Request<ReqBody>) -> (StatusCode, bytes::Bytes)
where
    S: tower::Service<Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>,
    ResBody: http_body::Body<Data = bytes::Bytes>,
    ResBody::Error: std::fmt::Debug,
{
    let res = service.oneshot(req).await.expect("infallible");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

fn contestants(rt: &Runtime) -> (Vec<Contestant>, Auth, Auth) {
    let cached = hs256_auth(CacheSettings::default());
    let uncached = hs256_auth(CacheSettings::disabled());
    let token = token(&cached);
    println!("token: {} bytes", token.len());
    let bearer = (
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );

    let baseline = Router::new().route("/me", get(plain));
    let authkit = |auth: &Auth| {
        Router::new()
            .route("/me", get(authkit_me))
            .layer(auth.layer().required())
    };

    // jwt-authorizer (axum 0.7).
    let authorizer = rt
        .block_on(
            jwt_authorizer::JwtAuthorizer::<AccessClaims>::from_secret(HS256_SECRET)
                .validation(
                    jwt_authorizer::Validation::new()
                        .iss(&[ISSUER])
                        .aud(&[AUDIENCE]),
                )
                .build(),
        )
        .expect("jwt-authorizer");
    let jwt_authorizer_app = axum07::Router::new()
        .route("/me", axum07::routing::get(jwt_authorizer_me))
        .layer(jwt_authorizer::IntoLayer::into_layer(authorizer));

    // axum-jwt-auth (an extractor with a decoder in state).
    let mut validation = jsonwebtoken10::Validation::new(jsonwebtoken10::Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let decoder: axum_jwt_auth::Decoder<AccessClaims> = Arc::new(
        axum_jwt_auth::LocalDecoder::builder()
            .keys(vec![jsonwebtoken10::DecodingKey::from_secret(
                HS256_SECRET.as_bytes(),
            )])
            .validation(validation)
            .build()
            .expect("axum-jwt-auth"),
    );
    let axum_jwt_auth_app = Router::new()
        .route("/me", get(axum_jwt_auth_me))
        .with_state(decoder);

    // axum-login: log in once, then present the session cookie.
    let backend = LoginBackend {
        users: Arc::new(HashMap::from([(
            1,
            LoginUser {
                id: 1,
                auth_hash: b"session auth hash".to_vec(),
            },
        )])),
    };
    let sessions = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false);
    let login_app = Router::new()
        .route("/me", get(login_me))
        .route_layer(axum_login::login_required!(LoginBackend))
        .route("/login", axum::routing::post(login))
        .layer(axum_login::AuthManagerLayerBuilder::new(backend, sessions).build());
    let res = rt
        .block_on(
            login_app.clone().oneshot(
                Request::post("/login")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            ),
        )
        .expect("infallible");
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "axum-login login");
    let set_cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("session cookie");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();

    let list = vec![
        Contestant {
            name: "baseline",
            app: App::Axum08(baseline),
            header: bearer.clone(),
        },
        Contestant {
            name: "authkit_cached",
            app: App::Axum08(authkit(&cached)),
            header: bearer.clone(),
        },
        Contestant {
            name: "authkit_first_seen",
            app: App::Axum08(authkit(&uncached)),
            header: bearer.clone(),
        },
        Contestant {
            name: "identity_layer",
            app: App::Axum08(
                Router::new()
                    .route("/me", get(plain))
                    .layer(tower::layer::util::Identity::new()),
            ),
            header: bearer.clone(),
        },
        Contestant {
            name: "authkit_cached_outer",
            app: App::Outer(tower::Layer::layer(
                &cached.layer().required(),
                Router::new().route("/me", get(authkit_me)),
            )),
            header: bearer.clone(),
        },
        Contestant {
            name: "jwt_authorizer",
            app: App::Axum07(jwt_authorizer_app),
            header: bearer.clone(),
        },
        Contestant {
            name: "axum_jwt_auth",
            app: App::Axum08(axum_jwt_auth_app),
            header: bearer,
        },
        Contestant {
            name: "axum_login",
            app: App::Axum08(login_app),
            header: (COOKIE, HeaderValue::from_str(&cookie).expect("cookie")),
        },
    ];
    (list, cached, uncached)
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (list, cached, uncached) = contestants(&rt);

    // Each contestant must authenticate before it is timed.
    for contestant in &list {
        let body = rt.block_on(call(&contestant.app, &contestant.header));
        assert_eq!(body, BODY, "{}", contestant.name);
    }
    assert_eq!(cached.cached_tokens(), 1, "the cached auth did not cache");
    assert_eq!(uncached.cached_tokens(), 0, "the uncached auth cached");

    let mut g = c.benchmark_group("request");
    for contestant in &list {
        g.bench_function(contestant.name, |b| {
            b.to_async(&rt)
                .iter(|| call(&contestant.app, &contestant.header))
        });
    }
    g.finish();
    assert_eq!(uncached.cached_tokens(), 0, "the uncached auth cached");
}

criterion_group!(benches, requests);
criterion_main!(benches);
