//! The harness: an app with the auth router under `/api/v1/auth`, a mailer
//! that keeps what it was given, a captcha with fixed answers, and request
//! and reply helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::routing::get;
use axum_authkit::captcha::{CaptchaError, CaptchaVerifier};
use axum_authkit::mail::{Mail, MailError, MailKind, Mailer};
use axum_authkit::store::MemoryStore;
use axum_authkit::{Auth, AuthBuilder, AuthUser, PasswordSettings};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";
pub const NEW_PASSWORD: &str = "a different long passphrase";
/// The peer address every request comes from unless it says otherwise.
pub const PEER: [u8; 4] = [192, 0, 2, 1];

/// One mail as the mailer got it.
#[derive(Clone, Debug)]
pub struct Sent {
    pub kind: MailKind,
    pub to: String,
    pub code: Option<String>,
}

/// Every mail "sent", in order.
#[derive(Default)]
pub struct Outbox(Mutex<Vec<Sent>>);

impl Outbox {
    pub fn all(&self) -> Vec<Sent> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Mails to `to` (exactly as addressed).
    pub fn to(&self, to: &str) -> Vec<Sent> {
        self.all().into_iter().filter(|m| m.to == to).collect()
    }

    /// The code of the latest mail to `to` that carried one.
    pub fn last_code(&self, to: &str) -> String {
        self.to(to)
            .into_iter()
            .rev()
            .find_map(|m| m.code)
            .expect("a code was sent")
    }

    /// Waits (up to a generous deadline) until `n` mails of `kind` went to
    /// `to`, for mail sent off the request path; returns the latest.
    pub async fn wait_for(&self, to: &str, kind: MailKind, n: usize) -> Sent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Sent> = self.to(to).into_iter().filter(|m| m.kind == kind).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind:?} mail #{n} to {to} within the deadline; outbox: {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

pub struct TestMailer(pub Arc<Outbox>);

#[async_trait]
impl Mailer for TestMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.0.0.lock().unwrap().push(Sent {
            kind: mail.kind,
            to: mail.to.clone(),
            code: mail.code.clone(),
        });
        Ok(())
    }
}

/// A mail provider that is down.
pub struct DownMailer;

#[async_trait]
impl Mailer for DownMailer {
    async fn send(&self, _: &Mail) -> Result<(), MailError> {
        Err(MailError::new(
            "connection refused",
            "the mail server is down",
        ))
    }
}

/// A verifier with a fixed answer per token, for the routes' mapping of
/// verdicts (the real siteverify client is tested in tests/captcha.rs).
pub struct FixedCaptcha;

#[async_trait]
impl CaptchaVerifier for FixedCaptcha {
    async fn verify(
        &self,
        response: &str,
        _: Option<std::net::IpAddr>,
    ) -> Result<(), CaptchaError> {
        match response {
            "ok" => Ok(()),
            "down" => Err(CaptchaError::Unavailable("test".into())),
            _ => Err(CaptchaError::Failed {
                error_codes: vec!["invalid-input-response".into()],
                reason: "test",
            }),
        }
    }
}

pub struct Harness {
    pub app: Router,
    pub auth: Auth,
    pub outbox: Arc<Outbox>,
    /// The store behind `auth` (unless the test swapped it).
    pub store: Arc<MemoryStore>,
}

pub fn builder(outbox: &Arc<Outbox>, store: &Arc<MemoryStore>) -> AuthBuilder {
    Auth::builder()
        .secret(b"routes test secret, 32 bytes or more")
        .store(store.clone())
        .with_mailer(Arc::new(TestMailer(outbox.clone())))
        .with_captcha(Arc::new(FixedCaptcha))
        .with_password_settings(PasswordSettings {
            memory_kib: 1024, // fast tests; the defaults are tested in password.rs
            ..Default::default()
        })
}

async fn account(user: AuthUser) -> String {
    user.id().to_owned()
}

pub fn harness_with(f: impl FnOnce(AuthBuilder) -> AuthBuilder) -> Harness {
    let outbox = Arc::new(Outbox::default());
    let store = Arc::new(MemoryStore::new());
    let auth = f(builder(&outbox, &store)).build().unwrap();
    let app = Router::new()
        .route("/api/v1/account/", get(account))
        .layer(auth.layer())
        .nest("/api/v1/auth", auth.router())
        .layer(MockConnectInfo(SocketAddr::from((PEER, 4000))));
    Harness {
        app,
        auth,
        outbox,
        store,
    }
}

pub fn harness() -> Harness {
    harness_with(|b| b)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// `name=value` of a cookie set by this reply.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    /// The access token this reply set as a cookie.
    pub fn access_token(&self) -> String {
        self.cookie("access_token")
            .expect("an access cookie")
            .trim_start_matches("access_token=")
            .to_owned()
    }

    /// Both session cookies as one `Cookie` header value.
    pub fn session(&self) -> String {
        format!(
            "{}; {}",
            self.cookie("access_token").unwrap(),
            self.cookie("refresh_token").unwrap()
        )
    }

    /// Whether this reply clears both cookies.
    pub fn clears_cookies(&self) -> bool {
        ["access_token", "refresh_token"].iter().all(|name| {
            self.cookies()
                .iter()
                .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"))
        })
    }
}

/// A request being built: `h.call(Method::POST, "/signin/").json(...).send()`.
pub struct Call<'h> {
    h: &'h Harness,
    req: http::request::Builder,
    body: Body,
}

impl Call<'_> {
    pub fn json(mut self, body: Value) -> Self {
        self.req = self.req.header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(body.to_string());
        self
    }

    pub fn cookie(mut self, cookie: &str) -> Self {
        self.req = self.req.header(header::COOKIE, cookie);
        self
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.req = self
            .req
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.req = self.req.header(name, value.as_ref());
        self
    }

    /// The connection's peer address, as `axum::serve` would record it.
    pub fn peer(mut self, ip: [u8; 4]) -> Self {
        self.req = self
            .req
            .extension(ConnectInfo(SocketAddr::from((ip, 50_000))));
        self
    }

    pub async fn send(self) -> Reply {
        self.h.send(self.req.body(self.body).unwrap()).await
    }
}

impl Harness {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    /// A request to `path` under the auth prefix.
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            h: self,
            req: Request::builder()
                .method(method)
                .uri(format!("/api/v1/auth{path}")),
            body: Body::empty(),
        }
    }

    pub async fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> Reply {
        let call = self.call(Method::POST, path).json(body);
        match cookie {
            Some(c) => call.cookie(c),
            None => call,
        }
        .send()
        .await
    }

    /// `POST /custom-refresh/` with the refresh cookie that `reply` set.
    pub async fn refresh_after(&self, reply: &Reply) -> Reply {
        let cookie = reply.cookie("refresh_token").expect("a refresh cookie");
        self.post("/custom-refresh/", json!({}), Some(&cookie))
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = Request::post(format!("/api/v1/auth{path}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub async fn signup(&self, email: &str) -> Reply {
        let r = self
            .post(
                "/signup/",
                json!({"email": email, "password": PASSWORD, "name": "Jo", "captcha": "ok"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r
    }

    pub async fn signin(&self, login: &str, password: &str) -> Reply {
        self.post(
            "/signin/",
            json!({"login": login, "password": password, "captcha": "ok"}),
            None,
        )
        .await
    }

    /// The app's protected route.
    pub async fn account(&self, cookie: &str) -> Reply {
        self.send(
            Request::get("/api/v1/account/")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// The protected route with only `token`, as a Bearer credential (so no
    /// refresh cookie can rescue it).
    pub async fn account_bearer(&self, token: &str) -> StatusCode {
        self.send(
            Request::get("/api/v1/account/")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .status
    }
}

/// A code that is not `code`.
pub fn wrong(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

pub fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.code(), code, "{}", r.json);
    assert!(
        r.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{}",
        r.json
    );
    if status == StatusCode::UNAUTHORIZED {
        let challenge = r
            .headers
            .get(header::WWW_AUTHENTICATE)
            .expect("401 carries WWW-Authenticate");
        assert!(challenge.to_str().unwrap().starts_with("Bearer realm="));
    }
}
