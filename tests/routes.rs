//! The auth router, in process: every status and error code of API.md.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::routing::get;
use axum_authkit::captcha::{CaptchaError, CaptchaVerifier};
use axum_authkit::mail::{Mail, MailError, Mailer};
use axum_authkit::rate_limit::Limit;
use axum_authkit::store::{
    Family, MemoryStore, NewUser, RefreshStore, Rotation, StoreError, User, UserStore,
    VerificationCode,
};
use axum_authkit::verification::CodePolicy;
use axum_authkit::{Auth, AuthUser, RateLimits};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

/// Records every code "sent".
#[derive(Default)]
struct Outbox(Mutex<Vec<(String, String)>>);

impl Outbox {
    fn last_code(&self, to: &str) -> String {
        let sent = self.0.lock().unwrap();
        sent.iter()
            .rev()
            .find(|(t, _)| t == to)
            .map(|(_, c)| c.clone())
            .expect("a code was sent")
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct TestMailer(Arc<Outbox>);

#[async_trait]
impl Mailer for TestMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let code = mail.code.clone().expect("a verification mail has a code");
        self.0.0.lock().unwrap().push((mail.to.clone(), code));
        Ok(())
    }
}

/// A mail provider that is down.
struct DownMailer;

#[async_trait]
impl Mailer for DownMailer {
    async fn send(&self, _: &Mail) -> Result<(), MailError> {
        Err(MailError::new("provider down", "connection refused"))
    }
}

/// A verifier with a fixed answer per token, for the route's mapping of
/// verdicts (the real siteverify client is tested in tests/captcha.rs).
struct FixedCaptcha;

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

struct Harness {
    app: Router,
    auth: Auth,
    outbox: Arc<Outbox>,
}

fn builder(outbox: &Arc<Outbox>) -> axum_authkit::AuthBuilder {
    Auth::builder()
        .secret(b"routes test secret, 32 bytes or more")
        .store(Arc::new(MemoryStore::new()))
        .mailer(Arc::new(TestMailer(outbox.clone())))
        .captcha(Arc::new(FixedCaptcha))
        .password_policy(axum_authkit::password::PasswordPolicy {
            memory_kib: 1024, // fast tests; the defaults are tested in password.rs
            ..Default::default()
        })
}

async fn account(user: AuthUser) -> String {
    user.id().to_owned()
}

fn harness_with(f: impl FnOnce(axum_authkit::AuthBuilder) -> axum_authkit::AuthBuilder) -> Harness {
    let outbox = Arc::new(Outbox::default());
    let auth = f(builder(&outbox)).build().unwrap();
    let app = Router::new()
        .route("/api/v1/account/", get(account))
        .layer(auth.layer())
        .nest("/api/v1/auth", auth.router())
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
    Harness { app, auth, outbox }
}

fn harness() -> Harness {
    harness_with(|b| b)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }
    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    /// `name=value` of a cookie set by this reply.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }
    /// Both session cookies as one `Cookie` header value.
    fn session(&self) -> String {
        format!(
            "{}; {}",
            self.cookie("access_token").unwrap(),
            self.cookie("refresh_token").unwrap()
        )
    }
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> Reply {
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

    async fn post(&self, path: &str, body: Value, cookie: Option<&str>) -> Reply {
        let mut req = Request::post(format!("/api/v1/auth{path}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// `POST /custom-refresh/` with the refresh cookie that `reply` set.
    async fn refresh_after(&self, reply: &Reply) -> Reply {
        let cookie = reply.cookie("refresh_token").expect("a refresh cookie");
        self.post("/custom-refresh/", json!({}), Some(&cookie))
            .await
    }

    async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = Request::post(format!("/api/v1/auth{path}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    async fn signup(&self, email: &str) -> Reply {
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

    async fn signin(&self, login: &str, password: &str) -> Reply {
        self.post(
            "/signin/",
            json!({"login": login, "password": password, "captcha": "ok"}),
            None,
        )
        .await
    }

    async fn account(&self, cookie: &str) -> Reply {
        self.send(
            Request::get("/api/v1/account/")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
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

#[tokio::test]
async fn signup_creates_signs_in_and_mails_a_code() {
    let h = harness();
    let r = h.signup("  New.User@Example.com ").await;
    assert_eq!(r.json["email"], "New.User@Example.com");
    assert_eq!(r.json["name"], "Jo");
    assert_eq!(r.json["email_verified"], false);
    assert!(r.json["id"].as_str().is_some_and(|id| !id.is_empty()));
    for name in ["access_token", "refresh_token"] {
        let c = r
            .cookies()
            .into_iter()
            .find(|c| c.starts_with(name))
            .unwrap();
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let code = h.outbox.last_code("New.User@Example.com");
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    let me = h.account(&r.session()).await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn signup_validation_errors_name_each_field() {
    let h = harness();
    let r = h.post("/signup/", json!({}), None).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    for field in ["email", "password", "name"] {
        assert!(
            r.json["errors"][field].is_array(),
            "{field} missing from {}",
            r.json
        );
    }
    let cases = [
        (
            json!({"email": "not an address", "password": PASSWORD, "name": "Jo"}),
            "email",
        ),
        (
            json!({"email": format!("{}@example.com", "a".repeat(250)), "password": PASSWORD, "name": "Jo"}),
            "email",
        ),
        (
            json!({"email": "a\u{0}b@example.com", "password": PASSWORD, "name": "Jo"}),
            "email",
        ),
        (
            json!({"email": 42, "password": PASSWORD, "name": "Jo"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(129), "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "password1234", "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "Password1234", "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "pass\u{0}word-is-long", "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": ["x"], "name": "Jo"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "   "}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "n".repeat(151)}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "Jo\u{0}"}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "evil\u{202E}txt"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let r = h.post("/signup/", body.clone(), None).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(r.json["errors"][field].is_array(), "{body} -> {}", r.json);
        assert!(r.cookies().is_empty());
    }
    // Nothing was written.
    assert!(
        h.auth
            .users()
            .user_by_email("a@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(h.outbox.count(), 0);
}

#[tokio::test]
async fn unicode_passwords_and_names_are_welcome() {
    let h = harness();
    let r = h
        .post(
            "/signup/",
            json!({"email": "ü@example.com", "password": "パスワードは十分に長いです🙂", "name": "ジョン・ドー", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(
        h.signin("Ü@EXAMPLE.COM", "パスワードは十分に長いです🙂")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // 12 characters of 3 bytes each pass the 12-character minimum.
    let r = h
        .post("/signup/", json!({"email": "v@example.com", "password": "語".repeat(12), "name": "V", "captcha": "ok"}), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
}

#[tokio::test]
async fn bad_bodies_get_clear_errors() {
    const JSON: Option<&str> = Some("application/json");
    let deep = "[".repeat(10_000);
    let not_an_object: [&[u8]; 6] = [
        b"{not json",
        b"[1,2]",
        b"",
        b"\"\\ud800\"",
        &[0xff, 0xfe, b'{'],
        deep.as_bytes(),
    ];
    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(17 * 1024));
    let h = harness();
    for path in ["/signup/", "/signin/"] {
        for body in not_an_object {
            let r = h.post_raw(path, JSON, body.to_vec()).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        }
        for content_type in [Some("text/plain"), None] {
            let r = h.post_raw(path, content_type, b"{}".to_vec()).await;
            assert_error(
                &r,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            );
        }
        let r = h.post_raw(path, JSON, big.clone().into_bytes()).await;
        assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    // A charset parameter is fine.
    let r = h
        .post_raw(
            "/signin/",
            Some("application/json; charset=utf-8"),
            json!({"login": "x@example.com", "password": "whatever it is", "captcha": "ok"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn duplicate_email_is_409_case_insensitively() {
    let h = harness();
    h.signup("dup@example.com").await;
    let r = h
        .post("/signup/", json!({"email": " DUP@Example.COM", "password": PASSWORD, "name": "Jo", "captcha": "ok"}), None)
        .await;
    assert_error(&r, StatusCode::CONFLICT, "email_taken");
}

#[tokio::test]
async fn captcha_failures_fail_closed() {
    let h = harness();
    let body = |captcha: &str| json!({"email": "c@example.com", "password": PASSWORD, "name": "Jo", "captcha": captcha});
    assert_error(
        &h.post("/signup/", body("bad"), None).await,
        StatusCode::BAD_REQUEST,
        "captcha_failed",
    );
    assert_error(
        &h.post("/signup/", body("down"), None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "captcha_unavailable",
    );
    let mut no_captcha = body("");
    no_captcha.as_object_mut().unwrap().remove("captcha");
    assert_error(
        &h.post("/signup/", no_captcha, None).await,
        StatusCode::BAD_REQUEST,
        "captcha_failed",
    );
    assert!(
        h.auth
            .users()
            .user_by_email("c@example.com")
            .await
            .unwrap()
            .is_none()
    );
    h.signup("c@example.com").await;
    let r = h
        .post(
            "/signin/",
            json!({"login": "c@example.com", "password": PASSWORD, "captcha": "bad"}),
            None,
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "captcha_failed");
    let r = h
        .post(
            "/signin/",
            json!({"login": "c@example.com", "password": PASSWORD, "captcha": "down"}),
            None,
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "captcha_unavailable");
}

#[tokio::test]
async fn signin_sets_cookies_and_hides_which_part_was_wrong() {
    let h = harness();
    h.signup("s@example.com").await;
    let ok = h.signin("S@Example.com", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert!(ok.cookie("access_token").is_some() && ok.cookie("refresh_token").is_some());
    let wrong = h.signin("s@example.com", "wrong password here").await;
    let unknown = h.signin("nobody@example.com", "wrong password here").await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.status, unknown.status);
    let missing = h
        .post("/signin/", json!({"login": "s@example.com"}), None)
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(missing.json["errors"]["password"].is_array());
}

#[tokio::test]
async fn signin_failures_are_rate_limited_per_login() {
    let h = harness();
    h.signup("r@example.com").await;
    for _ in 0..5 {
        assert_error(
            &h.signin("r@example.com", "wrong password here").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let limited = h.signin("R@example.com", PASSWORD).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry));
    // Another login is not affected.
    h.signup("other@example.com").await;
    assert_eq!(
        h.signin("other@example.com", PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn success_resets_the_login_counter_and_ip_limit_applies() {
    let h = harness_with(|b| {
        b.rate_limits(RateLimits {
            signin_failures_per_ip: Limit::new(3, Duration::from_secs(60)),
            signups_per_ip: Limit::new(2, Duration::from_secs(60)),
            ..RateLimits::default()
        })
    });
    h.signup("ip1@example.com").await;
    h.signup("ip2@example.com").await;
    let third = h
        .post("/signup/", json!({"email": "ip3@example.com", "password": PASSWORD, "name": "Jo", "captcha": "ok"}), None)
        .await;
    assert_error(&third, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(third.headers.get(header::RETRY_AFTER).is_some());
    for login in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(
            h.signin(login, "wrong password here").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Same address, fresh login: the per-address limit answers.
    assert_error(
        &h.signin("ip1@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}

#[tokio::test]
async fn disabled_users_cannot_sign_in_or_refresh() {
    let h = harness();
    let s = h.signup("d@example.com").await;
    let id = s.json["id"].as_str().unwrap().to_owned();
    h.auth.users().set_disabled(&id, true).await.unwrap();
    assert_error(
        &h.signin("d@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let r = h.refresh_after(&s).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

#[tokio::test]
async fn verify_email_flow() {
    let h = harness();
    let s = h.signup("v@example.com").await;
    let code = h.outbox.last_code("v@example.com");
    let access = s.cookie("access_token").unwrap();
    let token = access.trim_start_matches("access_token=");

    let anon = h
        .post("/verify-email/", json!({"verification_code": code}), None)
        .await;
    assert_error(&anon, StatusCode::UNAUTHORIZED, "not_authenticated");
    let malformed = h
        .post(
            "/verify-email/",
            json!({"verification_code": "12ab"}),
            Some(&access),
        )
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "invalid_request");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let r = h
        .post(
            "/verify-email/",
            json!({"verification_code": wrong}),
            Some(&access),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");

    // Bearer works as the API page shows.
    let req = Request::post("/api/v1/auth/verify-email/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"verification_code": code}).to_string()))
        .unwrap();
    let ok = h.send(req).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(ok.json["email_verified"], true);
    let fresh = ok.cookie("access_token").unwrap();
    let claims = h
        .auth
        .verify(fresh.trim_start_matches("access_token="))
        .unwrap();
    assert!(claims.email_verified);
    // Verified users posting again get 200; the code was used once.
    let again = h
        .post(
            "/verify-email/",
            json!({"verification_code": "123456"}),
            Some(&fresh),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code() {
    let h = harness();
    let s = h.signup("b@example.com").await;
    let code = h.outbox.last_code("b@example.com");
    let access = s.cookie("access_token").unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for i in 1..=5 {
        let r = h
            .post(
                "/verify-email/",
                json!({"verification_code": wrong}),
                Some(&access),
            )
            .await;
        let expected = if i < 5 {
            "invalid_code"
        } else {
            "too_many_attempts"
        };
        assert_eq!(r.code(), expected, "attempt {i}: {}", r.json);
    }
    let right = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&access),
        )
        .await;
    assert_error(&right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    // A new code works.
    let resend = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    let code = h.outbox.last_code("b@example.com");
    let ok = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&access),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let h = harness_with(|b| {
        b.code_policy(CodePolicy {
            ttl: Duration::from_millis(300),
            ..CodePolicy::default()
        })
    });
    let s = h.signup("e@example.com").await;
    let code = h.outbox.last_code("e@example.com");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = h
        .post(
            "/verify-email/",
            json!({"verification_code": code}),
            Some(&s.cookie("access_token").unwrap()),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "code_expired");
}

#[tokio::test]
async fn a_mail_failure_keeps_the_signup_but_fails_the_resend() {
    let h = harness_with(|b| b.mailer(Arc::new(DownMailer)));
    // The account exists and is signed in; only the mail is missing.
    let s = h.signup("m@example.com").await;
    let access = s.cookie("access_token").unwrap();
    assert_eq!(h.account(&access).await.status, StatusCode::OK);
    // Asking for the code again says it did not go out.
    let r = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable");
}

#[tokio::test]
async fn resend_replaces_the_code_and_is_rate_limited() {
    let h = harness();
    let s = h.signup("re@example.com").await;
    let first = h.outbox.last_code("re@example.com");
    let access = s.cookie("access_token").unwrap();
    assert_eq!(
        h.post("/resend-verification", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let second = h.outbox.last_code("re@example.com");
    if first != second {
        let old = h
            .post(
                "/verify-email/",
                json!({"verification_code": first}),
                Some(&access),
            )
            .await;
        assert_error(&old, StatusCode::BAD_REQUEST, "invalid_code");
    }
    assert_eq!(
        h.post("/resend-verification/", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.post("/resend-verification/", json!({}), Some(&access))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let limited = h
        .post("/resend-verification/", json!({}), Some(&access))
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_error(
        &h.post("/resend-verification/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let h = harness_with(|b| b.reuse_grace(Duration::from_millis(200)));
    let s = h.signup("f@example.com").await;
    let old = s.cookie("refresh_token").unwrap();
    let r = h.post("/custom-refresh/", json!({}), Some(&old)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let new = r.cookie("refresh_token").unwrap();
    assert_ne!(new, old);
    assert!(r.cookie("access_token").is_some());
    // Without a body or content type, as the API page's curl does.
    let bare = h
        .send(
            Request::post("/api/v1/auth/custom-refresh")
                .header(header::COOKIE, &new)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bare.status, StatusCode::NO_CONTENT);
    let newest = bare.cookie("refresh_token").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reuse = h.post("/custom-refresh/", json!({}), Some(&old)).await;
    assert_error(&reuse, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    assert!(
        reuse
            .cookies()
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    );
    // The family is gone: the newest token fails too.
    assert_error(
        &h.post("/custom-refresh/", json!({}), Some(&newest)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_error(
        &h.post("/custom-refresh/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    assert_error(
        &h.post("/custom-refresh/", json!({}), Some("refresh_token=garbage"))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
}

#[tokio::test]
async fn logout_always_204_and_revokes_the_family() {
    let h = harness();
    let s = h.signup("l@example.com").await;
    let r = h
        .post("/custom-logout/", json!({}), Some(&s.session()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for name in ["access_token", "refresh_token"] {
        let c = r
            .cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap();
        assert!(c.contains("Max-Age=0") && c.contains("Path=/"), "{c}");
    }
    let refresh = h.refresh_after(&s).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // This process refuses the sign-in's access token at once.
    assert_eq!(
        h.account(&s.cookie("access_token").unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
    // No credentials, garbage, expired: still 204, never a 401 loop.
    assert_eq!(
        h.post("/custom-logout/", json!({}), None).await.status,
        StatusCode::NO_CONTENT
    );
    let garbage = h
        .post(
            "/custom-logout",
            json!({}),
            Some("access_token=garbage; refresh_token=junk"),
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NO_CONTENT);
    let bare = h
        .send(
            Request::post("/api/v1/auth/custom-logout/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bare.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn signin_works_with_a_garbage_access_cookie() {
    let h = harness();
    h.signup("g@example.com").await;
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::COOKIE,
            "access_token=garbage.token.here; refresh_token=junk",
        )
        .body(Body::from(
            json!({"login": "g@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_all_revokes_every_sign_in() {
    let h = harness();
    let first = h.signup("all@example.com").await;
    let second = h.signin("all@example.com", PASSWORD).await;
    assert_error(
        &h.post("/logout-all/", json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
    let r = h
        .post("/logout-all/", json!({}), Some(&second.session()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for s in [&first, &second] {
        let refresh = h.refresh_after(s).await;
        assert_error(&refresh, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    }
}

#[tokio::test]
async fn trailing_slash_is_optional_everywhere() {
    let h = harness();
    let s = h.signup("t@example.com").await;
    for path in ["/signin", "/signin/"] {
        let r = h
            .post(
                path,
                json!({"login": "t@example.com", "password": PASSWORD, "captcha": "ok"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}");
    }
    for path in [
        "/verify-email",
        "/resend-verification",
        "/logout-all",
        "/custom-refresh",
        "/custom-logout",
        "/signup",
    ] {
        let r = h.post(path, json!({}), None).await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(h.account(&s.session()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_csrf_is_refused() {
    let h = harness();
    h.signup("x@example.com").await;
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(
            json!({"login": "x@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_error(&h.send(req).await, StatusCode::FORBIDDEN, "csrf_failed");
    let req = Request::post("/api/v1/auth/signin/")
        .header(header::CONTENT_TYPE, "application/json")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(
            json!({"login": "x@example.com", "password": PASSWORD, "captcha": "ok"}).to_string(),
        ))
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn nests_under_any_prefix() {
    let outbox = Arc::new(Outbox::default());
    let auth = builder(&outbox).build().unwrap();
    let app: Router = Router::new().nest("/auth", auth.router());
    let req = Request::post("/auth/custom-logout")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(req).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
}

/// A store whose backend is down.
struct DownStore;

fn down() -> StoreError {
    StoreError::unavailable("connection refused")
}

#[async_trait]
impl UserStore for DownStore {
    async fn create_user(&self, _: NewUser) -> Result<User, StoreError> {
        Err(down())
    }
    async fn user_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(down())
    }
    async fn user_by_id(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(down())
    }
    async fn set_password_hash(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn mark_email_verified(&self, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
    async fn set_verification_code(&self, _: &str, _: &VerificationCode) -> Result<(), StoreError> {
        Err(down())
    }
    async fn verification_code(&self, _: &str) -> Result<Option<VerificationCode>, StoreError> {
        Err(down())
    }
    async fn count_verification_attempt(&self, _: &str) -> Result<u32, StoreError> {
        Err(down())
    }
    async fn set_disabled(&self, _: &str, _: bool) -> Result<(), StoreError> {
        Err(down())
    }
}

#[async_trait]
impl RefreshStore for DownStore {
    async fn create_family(&self, _: &Family) -> Result<(), StoreError> {
        Err(down())
    }
    async fn family(&self, _: &str) -> Result<Option<Family>, StoreError> {
        Err(down())
    }
    async fn rotate(&self, _: Rotation<'_>) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_family(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_user_families(&self, _: &str) -> Result<Vec<String>, StoreError> {
        Err(down())
    }
    async fn purge_expired(&self, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn store_outage_is_503_never_500() {
    let h = harness_with(|b| b.store(Arc::new(DownStore)));
    let signup = h
        .post(
            "/signup/",
            json!({"email": "o@example.com", "password": PASSWORD, "name": "Jo", "captcha": "ok"}),
            None,
        )
        .await;
    assert_error(
        &signup,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert_error(
        &h.signin("o@example.com", PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    let token = "A".repeat(64);
    let refresh = h
        .post(
            "/custom-refresh/",
            json!({}),
            Some(&format!("refresh_token={token}")),
        )
        .await;
    assert_error(
        &refresh,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    );
    assert!(
        refresh.cookie("refresh_token").is_none(),
        "no token handed out"
    );
    // Logout still answers 204.
    assert_eq!(
        h.post(
            "/custom-logout/",
            json!({}),
            Some(&format!("refresh_token={token}"))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}
