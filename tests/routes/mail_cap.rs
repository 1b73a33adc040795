//! Mail to one address is capped (5 an hour, all purposes together); past
//! the cap the routes answer as usual and nothing is sent.

use std::time::Duration;

use axum_authkit::LimitSettings;
use axum_authkit::limits::Limit;
use axum_authkit::mail::MailKind;
use http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn six_code_mails_in_an_hour_send_five() {
    let h = harness_with(|b| {
        b.with_limits(LimitSettings {
            // The per-user request limit would stop the sixth request first.
            code_requests_per_user: Limit::new(100, Duration::from_secs(900)),
            ..LimitSettings::default()
        })
    });
    let cap = h.auth.settings().limits().mails_per_address.max as usize;
    assert_eq!(cap, 5, "the default cap");
    let s = h.signup("cap@example.com").await; // 1
    for n in 1..=2 {
        let r = h
            .post(
                "/password-reset/",
                json!({"email": "cap@example.com", "captcha": "ok"}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        h.outbox
            .wait_for("cap@example.com", MailKind::PasswordReset, n)
            .await; // 2, 3
    }
    for _ in 0..3 {
        // 4, 5, and the sixth, which answers as usual and sends nothing.
        let r = h
            .post("/resend-verification/", json!({}), Some(&s.session()))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    }
    assert_eq!(h.outbox.to("cap@example.com").len(), cap);
    let r = h
        .post(
            "/password-reset/",
            json!({"email": "cap@example.com", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = h
        .post("/resend-verification/", json!({}), Some(&s.session()))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.outbox.to("cap@example.com").len(), cap);
    // Another address is not affected.
    h.signup("uncapped@example.com").await;
    assert_eq!(h.outbox.to("uncapped@example.com").len(), 1);
}
