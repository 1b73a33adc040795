//! `POST /signup/`.

use http::{StatusCode, header};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn signup_creates_signs_in_and_mails_a_code() {
    let h = harness();
    let r = h.signup("  New.User@Example.com ").await;
    // Trimmed; the local part as typed, the domain in its canonical form.
    assert_eq!(r.json["email"], "New.User@example.com");
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
    let code = h.outbox.last_code("New.User@example.com");
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
            json!({"email": "jo@bücher.example", "password": "パスワードは十分に長いです🙂", "name": "ジョン・ドー", "captcha": "ok"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert_eq!(
        h.signin("JO@BÜCHER.example", "パスワードは十分に長いです🙂")
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

/// Look-alike spellings of one mailbox are one account: a Unicode domain and
/// its punycode twin, case; invisible and bidi characters are refused.
#[tokio::test]
async fn look_alike_addresses_are_one_account_or_refused() {
    let h = harness();
    assert_eq!(
        h.signup("ada@bücher.example").await.status,
        StatusCode::CREATED
    );
    for twin in [
        "ada@xn--bcher-kva.example",
        "ADA@BÜCHER.EXAMPLE",
        " Ada@Bücher.Example ",
    ] {
        let r = h
            .post(
                "/signup/",
                json!({"email": twin, "password": PASSWORD, "name": "Ada", "captcha": "ok"}),
                None,
            )
            .await;
        assert_error(&r, StatusCode::CONFLICT, "email_taken");
    }
    for bad in [
        "a\u{200B}da@example.com",
        "ada@exa\u{200D}mple.com",
        "ada\u{202E}@example.com",
        "\"ada\"@example.com",
        "ada@[127.0.0.1]",
        "ada@localhost",
    ] {
        let r = h
            .post(
                "/signup/",
                json!({"email": bad, "password": PASSWORD, "name": "Ada", "captcha": "ok"}),
                None,
            )
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            r.json["errors"]["email"].is_array(),
            "{bad:?} -> {}",
            r.json
        );
    }
    // The punycode spelling signs the Unicode account in.
    assert_eq!(
        h.signin("ada@xn--bcher-kva.example", PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
}
