//! Operators' view: each auth operation is a `tracing` span named
//! `auth.<flow>` carrying the user id and session id, and no token, code or
//! password ever reaches the log.

use std::io::Write;
use std::sync::{Arc, Mutex};

use http::StatusCode;
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

#[tokio::test]
async fn flows_are_spans_with_user_and_session_and_no_secrets() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // See log_injection.rs: a second dispatcher keeps callsite interest fresh.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    let h = harness_with(|b| b.with_tokens_in_body(true));
    let s = h.signup("spans@example.com").await;
    let code = h.outbox.last_code("spans@example.com");
    let signin = h.signin("spans@example.com", PASSWORD).await;
    assert_eq!(signin.status, StatusCode::OK);
    let access = signin.json["access_token"].as_str().unwrap().to_owned();
    let refresh = signin.json["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = h
        .post("/custom-refresh/", json!({"refresh_token": refresh}), None)
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    let claims = h.auth.verify(&access).unwrap();

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    for span in ["auth.sign_up", "auth.sign_in", "auth.refresh"] {
        assert!(log.contains(span), "no {span} span in:\n{log}");
    }
    let refresh_line = log
        .lines()
        .find(|l| l.contains("auth.refresh"))
        .expect("a line inside the refresh span");
    assert!(
        refresh_line.contains(&format!("user={}", claims.sub)),
        "{refresh_line}"
    );
    assert!(
        refresh_line.contains(&format!("sid={}", claims.sid)),
        "{refresh_line}"
    );
    let signin_line = log
        .lines()
        .find(|l| l.contains("auth.sign_in"))
        .expect("a line inside the sign-in span");
    assert!(
        signin_line.contains(&format!("user={}", claims.sub)),
        "{signin_line}"
    );

    for secret in [
        access.as_str(),
        refresh.as_str(),
        refreshed.json["refresh_token"].as_str().unwrap(),
        refreshed.json["access_token"].as_str().unwrap(),
        &s.access_token(),
        PASSWORD,
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    // The test mailer does not log; the code may only appear through a mailer.
    assert!(!log.contains(&format!("code={code}")));
}
