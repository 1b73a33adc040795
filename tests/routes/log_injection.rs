//! No input can forge a log line: user strings reach the log escaped.
//!
//! Every route gets `\n`, `\r\n`, ESC and the Unicode line breaks in every
//! string it takes (logins, names, addresses, passwords, codes, refresh
//! tokens, user agents, origins, paths) while a TRACE subscriber writes
//! plain text into a buffer. Header values cannot carry CR, LF or ESC at all
//! (`http` refuses them), so headers get the line breaks that are legal
//! there (U+0085, U+2028).

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum_authkit::mail::{LogMailer, Mail, MailError, Mailer};
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Logs each mail as the default mailer does, and keeps it for the test.
struct LoggingMailer(TestMailer);

#[async_trait]
impl Mailer for LoggingMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        LogMailer.send(mail).await?;
        self.0.send(mail).await
    }
}

const INJECTIONS: [&str; 5] = [
    "\nINFO forged code=123456",
    "\r\nINFO forged code=123456",
    "\x1b[2K\x1b[1GINFO forged",
    "\u{85}INFO forged",
    "\u{2028}INFO forged",
];

/// `s` with every byte but ASCII letters and digits percent-encoded.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn header_ok(value: &str) -> bool {
    HeaderValue::from_bytes(value.as_bytes()).is_ok()
}

#[tokio::test]
async fn no_input_starts_a_log_line() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // While only one dispatcher is registered, tracing-core caches a
    // callsite's interest from the default of whichever thread hits it first:
    // a callsite another test (without a subscriber) hits first would stay
    // silent here. With a second one registered, every registered dispatcher
    // is asked.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    let outbox = Arc::new(Outbox::default());
    let h = harness_with(|b| {
        b.with_tokens_in_body(true)
            .with_mailer(Arc::new(LoggingMailer(TestMailer(outbox.clone()))))
    });
    let s = h.signup("victim@example.com").await;
    let cookie = s.session();

    for inj in INJECTIONS {
        let text = format!("x{inj}");
        let email = format!("x{inj}@example.com");
        let quoted = format!("\"x{inj}\"@example.com");
        let password = format!("long enough password{inj}");
        let ua = format!("Agent/1.0{inj}");
        let origin = format!("https://evil.example{inj}");

        for address in [&email, &quoted] {
            let mut call = h.call(Method::POST, "/signup/").json(
                json!({"email": address, "password": password, "name": format!("Jo{inj}"), "captcha": "ok"}),
            );
            if header_ok(&ua) {
                call = call.header("user-agent", &ua);
            }
            call.send().await;
        }
        // Wrong passwords for a forged login, up to its limit and past it.
        for _ in 0..6 {
            let mut call = h
                .call(Method::POST, "/signin/")
                .json(json!({"login": text, "password": password, "captcha": "ok"}));
            if header_ok(&ua) {
                call = call.header("user-agent", &ua);
            }
            call.send().await;
        }
        let mut call = h
            .call(Method::POST, "/signin/")
            .json(json!({"login": "victim@example.com", "password": PASSWORD, "captcha": "ok"}));
        if header_ok(&ua) {
            call = call.header("user-agent", &ua);
        }
        call.send().await;

        h.post(
            "/verify-email/",
            json!({"verification_code": text}),
            Some(&cookie),
        )
        .await;
        h.post("/custom-refresh/", json!({"refresh_token": text}), None)
            .await;
        h.post("/custom-logout/", json!({"refresh_token": text}), None)
            .await;
        for address in [&email, &quoted] {
            h.post(
                "/password-reset/",
                json!({"email": address, "captcha": text}),
                None,
            )
            .await;
            h.post(
                "/password-reset/confirm/",
                json!({"email": address, "code": "123456", "new_password": password}),
                None,
            )
            .await;
            h.post(
                "/change-email/",
                json!({"new_email": address, "password": text}),
                Some(&cookie),
            )
            .await;
        }
        h.post(
            "/change-password/",
            json!({"current_password": text, "new_password": password}),
            Some(&cookie),
        )
        .await;
        h.post(
            "/change-email/confirm/",
            json!({"verification_code": text}),
            Some(&cookie),
        )
        .await;
        h.call(Method::DELETE, "/account/")
            .cookie(&cookie)
            .json(json!({"password": text}))
            .send()
            .await;
        h.call(Method::DELETE, &format!("/sessions/{}/", percent(&text)))
            .cookie(&cookie)
            .send()
            .await;
        h.call(Method::GET, &format!("/{}/", percent(&text)))
            .send()
            .await;
        // Refused cross-site requests log their Origin and Sec-Fetch-Site.
        if header_ok(&origin) {
            let r = h
                .call(Method::POST, "/custom-logout/")
                .cookie(&cookie)
                .header("origin", &origin)
                .send()
                .await;
            assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
            let r = h
                .call(Method::POST, "/signin/")
                .header("sec-fetch-site", &origin)
                .json(json!({"login": text, "password": password}))
                .send()
                .await;
            assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
        }
    }
    // Let the reset tasks finish their lookups.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    drop(guard);

    let log = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    // The inputs did reach the log, escaped.
    assert!(
        log.contains(r"x\ninfo forged code=123456"),
        "a wrong password logs the login: {log}"
    );
    assert!(log.contains("cross-site request refused"), "{log}");
    assert!(log.contains("rate limited"), "{log}");
    // No raw control or line-breaking character, and every line is the
    // subscriber's own: it starts with its timestamp.
    for bad in ['\x1b', '\r', '\u{85}', '\u{2028}'] {
        assert!(!log.contains(bad), "{bad:?} in the log: {log}");
    }
    for line in log.lines() {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a line not started by the subscriber: {line:?}"
        );
        assert!(!line.to_lowercase().trim_start().starts_with("info forged"));
    }
}
