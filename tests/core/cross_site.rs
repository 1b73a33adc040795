//! The cross-site rule: cookie-authenticated unsafe requests from another
//! site are refused (`403 csrf_failed`, logged at `WARN`), before any
//! refresh; Bearer requests and safe methods are exempt.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};

use crate::support::*;

#[tokio::test]
async fn csrf_applies_to_cookie_authenticated_unsafe_requests() {
    let fx = fixture_with(|b| b.with_allowed_origins(["https://app.test"])).await;
    let tokens = fx.session().await;
    let app = fx.required();
    let cookie = format!("access_token={}", tokens.access.token);
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
    let auth = format!("Bearer {}", tokens.access.token);
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
    let tokens = fx.session().await;
    let sid = &tokens.session.id;
    let cookie = format!(
        "access_token={}; refresh_token={}",
        fx.expired(sid),
        tokens.refresh_token
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
    assert_eq!(fx.session_rotated_at(sid).await, 0, "no rotation");
    assert_eq!(fx.hits(), 0);

    // The same request from this site refreshes.
    let headers = [
        ("cookie", cookie.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let res = send(&fx.required(), request("POST", "/me", &headers)).await;
    res.ok();
    assert_session_cookie(&res.cookie("refresh_token"));
    assert_ne!(fx.session_rotated_at(sid).await, 0);
}

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refusal_is_logged_at_warn_with_escaped_headers_and_the_fix() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // The test runs on one thread, and so do the layer and the handler.
    let _guard = tracing::subscriber::set_default(subscriber);

    let fx = fixture().await;
    let tokens = fx.session().await;
    let req = Request::post("/me")
        .header(header::HOST, HOST)
        .header(
            header::COOKIE,
            format!("access_token={}", tokens.access.token),
        )
        .header(
            header::ORIGIN,
            HeaderValue::from_bytes(b"https://evil.test\"\xff").unwrap(),
        )
        .header(
            "sec-fetch-site",
            HeaderValue::from_bytes(b"cross-site\"\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    send(&fx.required(), req)
        .await
        .error(StatusCode::FORBIDDEN, "csrf_failed");

    let bytes = logs.0.lock().unwrap().clone();
    assert!(
        !bytes.contains(&0xff) && !bytes.contains(&0xfe),
        "raw header bytes reached the log"
    );
    let text = String::from_utf8(bytes).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("cross-site request refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {text:?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(r#"origin=Some("https://evil.test\"\xff")"#),
        "{line}"
    );
    assert!(
        line.contains(r#"sec_fetch_site=Some("cross-site\"\xfe")"#),
        "{line}"
    );
    assert!(line.contains("with_allowed_origins"), "{line}");
    assert_eq!(fx.hits(), 0);
}
