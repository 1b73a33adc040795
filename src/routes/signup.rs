//! `POST /signup/`: create an account, sign it in, mail a verification code.

use axum::extract::State;
use axum_core::response::Response;
use http::StatusCode;
use http::request::Parts;
use serde_json::json;

use super::body::{JsonObject, has_forbidden_chars};
use super::verify_email::send_new_code;
use super::{ip_key, with_cookies};
use crate::auth::Auth;
use crate::captcha::CaptchaError;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::store::{NewUser, StoreError};

/// Longest e-mail address (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;
/// Longest display name, in characters.
const MAX_NAME: usize = 150;

pub(super) async fn signup<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    parts: Parts,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let email = f.string("email").trim().to_owned();
    let password = f.string("password");
    let name = f.string("name").trim().to_owned();
    let captcha = f.optional_string("captcha");

    if !f.has_error("email") {
        if email.chars().count() > MAX_EMAIL {
            f.error("email", format!("Use at most {MAX_EMAIL} characters."));
        } else if has_forbidden_chars(&email) || !email_address::EmailAddress::is_valid(&email) {
            f.error("email", "Enter a valid e-mail address.");
        }
    }
    if !f.has_error("password") {
        for problem in auth.inner.passwords.problems(&password) {
            f.error("password", problem);
        }
    }
    if !f.has_error("name") {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME {
            f.error("name", format!("Use 1 to {MAX_NAME} characters."));
        } else if has_forbidden_chars(&name) {
            f.error("name", "Control characters are not allowed.");
        }
    }
    f.finish()?;

    let ip = ip_key(&parts, &auth);
    if let Some(ip) = &ip {
        let limit = auth.config().limits().signups_per_ip;
        if let crate::rate_limit::Decision::Limited { retry_after } = auth
            .inner
            .limiter
            .reserve(&format!("signup:ip:{ip}"), limit)
            .await?
        {
            return Err(AuthError::RateLimited { retry_after });
        }
    }
    check_captcha(&auth, &captcha, &parts).await?;

    let password_hash = auth.inner.passwords.hash(password, ip.as_deref()).await?;
    let user = match auth
        .users()
        .create_user(NewUser {
            email,
            name,
            password_hash,
        })
        .await
    {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => return Err(AuthError::EmailTaken),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "signed up");

    // A mail that did not go out fails nothing: the account exists, and the
    // user can ask for another code.
    send_new_code(&auth, &user).await?;

    let session = auth.sign_in(&user).await?;
    let body = json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "email_verified": user.email_verified,
    });
    Ok(with_cookies(
        StatusCode::CREATED,
        &auth.session_cookies(&session),
        Some(body),
    ))
}

/// Asks the captcha verifier; fails closed.
pub(super) async fn check_captcha<E: ExtraClaims>(
    auth: &Auth<E>,
    response: &str,
    parts: &Parts,
) -> Result<(), AuthError> {
    let ip = crate::client_ip::client_ip(parts, auth.config().trusted_proxies());
    match auth.inner.captcha.verify(response, ip).await {
        Ok(()) => Ok(()),
        Err(CaptchaError::Unavailable(_)) => Err(AuthError::CaptchaUnavailable),
        Err(_) => Err(AuthError::CaptchaFailed),
    }
}
