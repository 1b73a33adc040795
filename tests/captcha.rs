#![cfg(feature = "siteverify")]
//! `Siteverify` against a real HTTP server on loopback that answers as the
//! providers document: a form-encoded `POST` in, JSON out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use axum_authkit::captcha::{CaptchaError, CaptchaVerifier, NoCaptcha, Siteverify};
use serde_json::{Value, json};

const SECRET: &str = "0x4AAAAAAAtest-secret";
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// What the mock provider saw.
#[derive(Clone, Default)]
struct Seen {
    /// Every request, whatever its route.
    requests: Arc<AtomicUsize>,
    /// The form of every request to `/siteverify`.
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Seen {
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn forms(&self) -> Vec<HashMap<String, String>> {
        self.forms.lock().unwrap().clone()
    }
}

/// A provider's siteverify: it checks the secret, and answers for a few
/// fixed tokens the way reCAPTCHA / hCaptcha / Turnstile do.
async fn siteverify(
    State(seen): State<Seen>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    seen.forms.lock().unwrap().push(form.clone());
    if form.get("secret").map(String::as_str) != Some(SECRET) {
        return Json(json!({ "success": false, "error-codes": ["invalid-input-secret"] }));
    }
    let ok = |hostname: &str, action: &str, score: f64| {
        json!({
            "success": true,
            "challenge_ts": "2025-01-01T12:00:00Z",
            "hostname": hostname,
            "action": action,
            "score": score,
            "error-codes": [],
        })
    };
    Json(match form.get("response").map(String::as_str) {
        Some("good") => ok("example.com", "login", 0.9),
        Some("good-upper-host") => ok("WWW.Example.COM", "login", 0.9),
        Some("other-host") => ok("evil.example.net", "login", 0.9),
        Some("low-score") => ok("example.com", "login", 0.1),
        Some("signup-action") => ok("example.com", "signup", 0.9),
        // reCAPTCHA v2 / Turnstile style: no score.
        Some("v2") => json!({
            "success": true,
            "challenge_ts": "2025-01-01T12:00:00Z",
            "hostname": "example.com",
        }),
        Some("dup") => json!({ "success": false, "error-codes": ["timeout-or-duplicate"] }),
        Some("no-codes") => json!({ "success": false }),
        _ => json!({ "success": false, "error-codes": ["invalid-input-response"] }),
    })
}

async fn count(State(seen): State<Seen>, request: Request, next: Next) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

/// Starts the mock provider on 127.0.0.1:0; returns its base URL.
async fn provider() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/siteverify", post(siteverify))
        .route(
            "/status-500",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded") }),
        )
        .route(
            "/status-503-json",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "success": false, "error-codes": ["internal-error"] })),
                )
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(json!({ "success": true, "hostname": "example.com" }))
            }),
        )
        .route(
            "/garbage",
            post(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Bad gateway</body></html>",
                )
            }),
        )
        .route(
            "/json-without-success",
            post(|| async { Json(json!({ "hostname": "example.com" })) }),
        )
        .route(
            "/bad-request-json",
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "success": false, "error-codes": ["bad-request"] })),
                )
            }),
        )
        .route(
            "/bad-request-html",
            post(|| async { (StatusCode::BAD_REQUEST, "<html>400</html>") }),
        )
        .route(
            "/forbidden-success",
            post(|| async { (StatusCode::FORBIDDEN, Json(json!({ "success": true }))) }),
        )
        .route(
            "/redirect",
            post(|| async { Redirect::temporary("/siteverify") }),
        )
        .route(
            "/huge",
            post(|| async { Json(json!({ "success": true, "padding": "x".repeat(200_000) })) }),
        )
        .layer(middleware::from_fn_with_state(seen.clone(), count))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn turnstile(path: &str) -> (Siteverify, Seen) {
    let (base, seen) = provider().await;
    let verifier = Siteverify::turnstile(SECRET).verify_url(format!("{base}{path}"));
    (verifier, seen)
}

#[track_caller]
fn assert_failed(result: Result<(), CaptchaError>, codes: &[&str], expected_reason: &str) {
    match result {
        Err(CaptchaError::Failed {
            error_codes,
            reason,
        }) => {
            assert_eq!(error_codes, codes, "error codes");
            assert_eq!(reason, expected_reason, "reason");
        }
        other => panic!("expected Failed({codes:?}, {expected_reason:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_unavailable(result: Result<(), CaptchaError>) -> String {
    match result {
        Err(CaptchaError::Unavailable(why)) => why,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn success_sends_secret_response_and_remoteip() {
    let (base, seen) = provider().await;
    let verifier = Siteverify::recaptcha(SECRET)
        .verify_url(format!("{base}/siteverify"))
        .expected_hostnames(["example.com", "www.example.com"])
        .expected_action("login")
        .min_score(0.5);

    verifier.verify("good", Some(CLIENT_IP)).await.unwrap();

    let forms = seen.forms();
    assert_eq!(forms.len(), 1);
    let expected: HashMap<String, String> = [
        ("secret", SECRET),
        ("response", "good"),
        ("remoteip", "203.0.113.7"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(forms[0], expected);
}

#[tokio::test]
async fn remoteip_is_left_out_when_unknown() {
    let (verifier, seen) = turnstile("/siteverify").await;
    verifier.verify("v2", None).await.unwrap();
    let forms = seen.forms();
    assert_eq!(forms.len(), 1);
    assert_eq!(forms[0].get("secret").map(String::as_str), Some(SECRET));
    assert_eq!(forms[0].get("response").map(String::as_str), Some("v2"));
    assert!(!forms[0].contains_key("remoteip"), "{:?}", forms[0]);
}

#[tokio::test]
async fn ipv6_and_ipv4_mapped_addresses() {
    let (verifier, seen) = turnstile("/siteverify").await;
    let v6 = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 4).to_ipv6_mapped());
    verifier.verify("good", Some(v6)).await.unwrap();
    verifier.verify("good", Some(mapped)).await.unwrap();
    let ips: Vec<_> = seen
        .forms()
        .into_iter()
        .map(|f| f["remoteip"].clone())
        .collect();
    assert_eq!(ips, ["2001:db8::1", "198.51.100.4"]);
}

#[tokio::test]
async fn invalid_input_response() {
    let (verifier, _) = turnstile("/siteverify").await;
    let result = verifier.verify("forged-token", Some(CLIENT_IP)).await;
    assert_failed(
        result,
        &["invalid-input-response"],
        "rejected by the provider",
    );
}

#[tokio::test]
async fn timeout_or_duplicate() {
    let (verifier, _) = turnstile("/siteverify").await;
    let result = verifier.verify("dup", Some(CLIENT_IP)).await;
    assert_failed(
        result,
        &["timeout-or-duplicate"],
        "rejected by the provider",
    );
}

#[tokio::test]
async fn failure_without_error_codes() {
    let (verifier, _) = turnstile("/siteverify").await;
    assert_failed(
        verifier.verify("no-codes", None).await,
        &[],
        "rejected by the provider",
    );
}

#[tokio::test]
async fn wrong_secret() {
    let (base, _) = provider().await;
    let verifier = Siteverify::hcaptcha("not-the-secret").verify_url(format!("{base}/siteverify"));
    let result = verifier.verify("good", None).await;
    assert_failed(
        result,
        &["invalid-input-secret"],
        "rejected by the provider",
    );
}

#[tokio::test]
async fn wrong_hostname() {
    let (verifier, _) = turnstile("/siteverify").await;
    let verifier = verifier.expected_hostnames(["example.com"]);
    let result = verifier.verify("other-host", Some(CLIENT_IP)).await;
    assert_failed(result, &[], "hostname mismatch");
    // Hostnames compare case-insensitively.
    let verifier = verifier.expected_hostnames(["www.example.com"]);
    verifier.verify("good-upper-host", None).await.unwrap();
    // A missing hostname does not match either.
    let (base, _) = provider().await;
    let verifier = Siteverify::turnstile(SECRET)
        .verify_url(format!("{base}/siteverify"))
        .expected_hostnames(Vec::<String>::new());
    assert_failed(
        verifier.verify("good", None).await,
        &[],
        "hostname mismatch",
    );
}

#[tokio::test]
async fn low_v3_score() {
    let (base, _) = provider().await;
    let verifier = Siteverify::recaptcha(SECRET)
        .verify_url(format!("{base}/siteverify"))
        .min_score(0.5);
    let result = verifier.verify("low-score", Some(CLIENT_IP)).await;
    assert_failed(result, &[], "score below minimum");
    // A score equal to the minimum passes.
    verifier
        .clone()
        .min_score(0.9)
        .verify("good", None)
        .await
        .unwrap();
    // No score while one is required fails.
    assert_failed(verifier.verify("v2", None).await, &[], "score missing");
    // NaN as the minimum rejects everything.
    let nan = verifier.min_score(f32::NAN);
    assert_failed(nan.verify("good", None).await, &[], "score below minimum");
}

#[tokio::test]
async fn wrong_action() {
    let (base, _) = provider().await;
    let verifier = Siteverify::recaptcha(SECRET)
        .verify_url(format!("{base}/siteverify"))
        .expected_action("login");
    let result = verifier.verify("signup-action", Some(CLIENT_IP)).await;
    assert_failed(result, &[], "action mismatch");
    // No action at all does not match either.
    assert_failed(verifier.verify("v2", None).await, &[], "action mismatch");
}

#[tokio::test]
async fn http_500_is_unavailable() {
    let (verifier, seen) = turnstile("/status-500").await;
    let why = assert_unavailable(verifier.verify("good", Some(CLIENT_IP)).await);
    assert!(why.contains("500"), "{why}");
    assert_eq!(seen.requests(), 1);
    // A 5xx is unavailable even with a siteverify-looking body.
    let (verifier, _) = turnstile("/status-503-json").await;
    assert_unavailable(verifier.verify("good", None).await);
}

#[tokio::test]
async fn slow_provider_times_out() {
    let (verifier, seen) = turnstile("/slow").await;
    let verifier = verifier.timeout(Duration::from_millis(300));
    let started = Instant::now();
    let why = assert_unavailable(verifier.verify("good", Some(CLIENT_IP)).await);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(why.contains("300ms"), "{why}");
    assert_eq!(seen.requests(), 1);
}

#[tokio::test]
async fn closed_port_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let verifier = Siteverify::turnstile(SECRET)
        .verify_url(format!("http://{addr}/siteverify"))
        .timeout(Duration::from_secs(2));
    let why = assert_unavailable(verifier.verify("good", Some(CLIENT_IP)).await);
    assert!(why.contains("connect"), "{why}");
}

#[tokio::test]
async fn invalid_verify_url_is_unavailable() {
    let verifier = Siteverify::turnstile(SECRET).verify_url("not a url");
    assert_unavailable(verifier.verify("good", None).await);
}

#[tokio::test]
async fn garbage_body_is_unavailable() {
    let (verifier, _) = turnstile("/garbage").await;
    assert_unavailable(verifier.verify("good", Some(CLIENT_IP)).await);
    // JSON, but not a siteverify answer.
    let (verifier, _) = turnstile("/json-without-success").await;
    assert_unavailable(verifier.verify("good", None).await);
    // Far too large.
    let (verifier, _) = turnstile("/huge").await;
    assert_unavailable(verifier.verify("good", None).await);
}

#[tokio::test]
async fn client_errors() {
    // A 4xx with a siteverify answer is the provider saying no.
    let (verifier, _) = turnstile("/bad-request-json").await;
    assert_failed(
        verifier.verify("good", None).await,
        &["bad-request"],
        "rejected by the provider",
    );
    // A 4xx with anything else is no verdict.
    let (verifier, _) = turnstile("/bad-request-html").await;
    assert_unavailable(verifier.verify("good", None).await);
    // A 4xx claiming success is a contradiction: no verdict.
    let (verifier, _) = turnstile("/forbidden-success").await;
    assert_unavailable(verifier.verify("good", None).await);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (verifier, seen) = turnstile("/redirect").await;
    assert_unavailable(verifier.verify("good", None).await);
    assert_eq!(seen.requests(), 1);
    assert!(seen.forms().is_empty());
}

#[tokio::test]
async fn empty_token_fails_without_a_request() {
    let (verifier, seen) = turnstile("/siteverify").await;
    for token in ["", "   ", "\n"] {
        let result = verifier.verify(token, Some(CLIENT_IP)).await;
        assert_failed(
            result,
            &["missing-input-response"],
            "missing response token",
        );
    }
    assert_eq!(seen.requests(), 0);
    // The server is up and counting: a real token reaches it.
    verifier.verify("good", Some(CLIENT_IP)).await.unwrap();
    assert_eq!(seen.requests(), 1);
}

#[tokio::test]
async fn custom_client_is_used() {
    let (base, seen) = provider().await;
    let client = reqwest::Client::builder().build().unwrap();
    let verifier = Siteverify::hcaptcha(SECRET)
        .client(client)
        .verify_url(format!("{base}/siteverify"));
    verifier.verify("good", None).await.unwrap();
    assert_eq!(seen.forms().len(), 1);
}

#[tokio::test]
async fn works_behind_a_trait_object() {
    let (verifier, _) = turnstile("/siteverify").await;
    let dynamic: Arc<dyn CaptchaVerifier> = Arc::new(verifier);
    dynamic.verify("good", None).await.unwrap();
    assert_failed(
        dynamic.verify("dup", None).await,
        &["timeout-or-duplicate"],
        "rejected by the provider",
    );
}

#[tokio::test]
async fn no_captcha_accepts_everything() {
    NoCaptcha.verify("", None).await.unwrap();
    NoCaptcha.verify("anything", Some(CLIENT_IP)).await.unwrap();
}

#[test]
fn debug_never_prints_the_secret() {
    for verifier in [
        Siteverify::recaptcha(SECRET),
        Siteverify::hcaptcha(SECRET),
        Siteverify::turnstile(SECRET).expected_hostnames(["example.com"]),
    ] {
        let debug = format!("{verifier:?} {verifier:#?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }
}

#[test]
fn display_messages() {
    let failed = CaptchaError::Failed {
        error_codes: vec![
            "invalid-input-response".into(),
            "timeout-or-duplicate".into(),
        ],
        reason: "rejected by the provider",
    };
    assert_eq!(
        failed.to_string(),
        "captcha verification failed: rejected by the provider \
         (error codes: invalid-input-response, timeout-or-duplicate)"
    );
    let failed = CaptchaError::Failed {
        error_codes: Vec::new(),
        reason: "hostname mismatch",
    };
    assert_eq!(
        failed.to_string(),
        "captcha verification failed: hostname mismatch"
    );
    let unavailable = CaptchaError::Unavailable("HTTP 500 Internal Server Error".into());
    assert_eq!(
        unavailable.to_string(),
        "captcha provider unavailable: HTTP 500 Internal Server Error"
    );
}

#[test]
fn default_urls() {
    assert_eq!(
        Siteverify::RECAPTCHA_VERIFY_URL,
        "https://www.google.com/recaptcha/api/siteverify"
    );
    assert_eq!(
        Siteverify::HCAPTCHA_VERIFY_URL,
        "https://api.hcaptcha.com/siteverify"
    );
    assert_eq!(
        Siteverify::TURNSTILE_VERIFY_URL,
        "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    );
    assert_eq!(Siteverify::DEFAULT_TIMEOUT, Duration::from_secs(5));
    let debug = format!("{:?}", Siteverify::turnstile(SECRET));
    assert!(debug.contains(Siteverify::TURNSTILE_VERIFY_URL), "{debug}");
}
