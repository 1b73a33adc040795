//! `POST /change-email/` and `POST /change-email/confirm/`.

use axum_authkit::mail::MailKind;
use http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn change_email_request_errors() {
    let h = harness();
    let s = h.signup("ce@example.com").await;
    h.signup("taken@example.com").await;
    let cookie = s.session();
    let before = h.outbox.count();
    assert_error(
        &h.post(
            "/change-email/",
            json!({"new_email": "new@example.com", "password": PASSWORD}),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "not_authenticated",
    );
    let wrong = h
        .post(
            "/change-email/",
            json!({"new_email": "new@example.com", "password": "not my password at all"}),
            Some(&cookie),
        )
        .await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "invalid_password");
    assert!(
        wrong.json["errors"]["password"].is_array(),
        "{}",
        wrong.json
    );
    let taken = h
        .post(
            "/change-email/",
            json!({"new_email": " Taken@Example.com", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "email_taken");
    let invalid = h
        .post(
            "/change-email/",
            json!({"new_email": "not an address", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    assert_error(&invalid, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(
        invalid.json["errors"]["new_email"].is_array(),
        "{}",
        invalid.json
    );
    assert_eq!(h.outbox.count(), before, "no mail for a refused request");
    // No code is pending: confirm is refused like a wrong code.
    let confirm = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": "123456"}),
            Some(&cookie),
        )
        .await;
    assert_error(&confirm, StatusCode::BAD_REQUEST, "invalid_code");
}

#[tokio::test]
async fn change_email_moves_the_account_to_the_new_address() {
    let h = harness();
    let s = h.signup("old@example.com").await;
    let other = h.signin("old@example.com", PASSWORD).await;
    let id = s.json["id"].as_str().unwrap().to_owned();
    let cookie = s.session();
    let r = h
        .post(
            "/change-email/",
            json!({"new_email": "New@Example.com", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    // A code to the new address, a notice without one to the old.
    let to_new = h.outbox.to("New@example.com");
    assert_eq!(to_new.len(), 1, "{to_new:?}");
    assert_eq!(to_new[0].kind, MailKind::EmailChangeCode);
    let code = to_new[0].code.clone().expect("a code to the new address");
    let notices: Vec<_> = h
        .outbox
        .to("old@example.com")
        .into_iter()
        .filter(|m| m.kind == MailKind::EmailChangeNotice)
        .collect();
    assert_eq!(notices.len(), 1, "{:?}", h.outbox.all());
    assert_eq!(notices[0].code, None);
    // Nothing changed yet.
    assert!(
        h.auth
            .users()
            .user_by_email("old@example.com")
            .await
            .unwrap()
            .is_some()
    );

    let wrong_code = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": wrong(&code)}),
            Some(&cookie),
        )
        .await;
    assert_error(&wrong_code, StatusCode::BAD_REQUEST, "invalid_code");
    let ok = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": code}),
            Some(&cookie),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert_eq!(
        ok.json,
        json!({"id": id, "email": "New@example.com", "name": "Jo", "email_verified": true})
    );
    let claims = h.auth.verify(&ok.access_token()).unwrap();
    assert_eq!(claims.email, "New@example.com");
    assert!(claims.email_verified);
    assert!(
        ok.cookie("refresh_token").is_none(),
        "the refresh token stays"
    );

    // The store moved the account.
    let user = h
        .auth
        .users()
        .user_by_email("new@example.com")
        .await
        .unwrap()
        .expect("the account under its new address");
    assert_eq!(user.id, id);
    assert!(user.email_verified);
    assert!(
        h.auth
            .users()
            .user_by_email("old@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // The other session continues and its next refresh carries the address.
    let refreshed = h.refresh_after(&other).await;
    assert_eq!(
        refreshed.status,
        StatusCode::NO_CONTENT,
        "{}",
        refreshed.json
    );
    let claims = h.auth.verify(&refreshed.access_token()).unwrap();
    assert_eq!(claims.email, "New@example.com");
    assert!(claims.email_verified);
    // Sign-in follows the address; the old one is free again.
    assert_eq!(
        h.signin("new@example.com", PASSWORD).await.status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &h.signin("old@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    h.signup("old@example.com").await;
    // The code was used up.
    let again = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": code}),
            Some(&ok.cookie("access_token").unwrap()),
        )
        .await;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_code");
}

#[tokio::test]
async fn an_address_taken_before_the_confirm_is_409() {
    let h = harness();
    let s = h.signup("mine@example.com").await;
    let cookie = s.session();
    let r = h
        .post(
            "/change-email/",
            json!({"new_email": "contested@example.com", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let code = h.outbox.last_code("contested@example.com");
    h.signup("Contested@example.com").await;
    let confirm = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": code}),
            Some(&cookie),
        )
        .await;
    assert_error(&confirm, StatusCode::CONFLICT, "email_taken");
    assert!(confirm.cookies().is_empty());
    let id = s.json["id"].as_str().unwrap();
    let user = h.auth.users().user_by_id(id).await.unwrap().unwrap();
    assert_eq!(user.email, "mine@example.com");
}

#[tokio::test]
async fn the_fifth_wrong_code_burns_the_change_code() {
    let h = harness();
    let s = h.signup("burnce@example.com").await;
    let cookie = s.session();
    let r = h
        .post(
            "/change-email/",
            json!({"new_email": "burnt@example.com", "password": PASSWORD}),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let code = h.outbox.last_code("burnt@example.com");
    for i in 1..=5 {
        let r = h
            .post(
                "/change-email/confirm/",
                json!({"verification_code": wrong(&code)}),
                Some(&cookie),
            )
            .await;
        if i < 5 {
            assert_error(&r, StatusCode::BAD_REQUEST, "invalid_code");
        } else {
            assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
        }
    }
    let right = h
        .post(
            "/change-email/confirm/",
            json!({"verification_code": code}),
            Some(&cookie),
        )
        .await;
    assert_error(&right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(
        h.auth
            .users()
            .user_by_email("burnt@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_mail_failure_fails_the_request_but_not_the_notices_of_others() {
    let h = harness_with(|b| b.with_mailer(std::sync::Arc::new(DownMailer)));
    let s = h.signup("nomail@example.com").await;
    // The change's whole point is the mail: 503.
    let r = h
        .post(
            "/change-email/",
            json!({"new_email": "unreached@example.com", "password": PASSWORD}),
            Some(&s.session()),
        )
        .await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable");
    // A password change only sends a notice: it goes through.
    let r = h
        .post(
            "/change-password/",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            Some(&s.session()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
}
