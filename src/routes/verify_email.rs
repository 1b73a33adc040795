//! `POST /verify-email/` and `POST /resend-verification/`.
//!
//! Every attempt is counted *before* the code is compared, in one atomic
//! store update, so even concurrent guesses get at most `max_attempts`
//! comparisons; past that the code is burned (`429 too_many_attempts`, the
//! right code included) until a new one is sent.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::body::JsonObject;
use super::with_cookies;
use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::mail::{MailFacts, MailKind, Templates};
use crate::rate_limit::Decision;
use crate::store::{StoreError, User};
use crate::time::now_millis;
use crate::verification::is_well_formed;

async fn current_user<E: ExtraClaims>(
    auth: &Auth<E>,
    user: &AuthUser<E>,
) -> Result<User, AuthError> {
    match auth.users().user_by_id(user.id()).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(AuthError::MissingCredentials),
    }
}

async fn limit<E: ExtraClaims>(
    auth: &Auth<E>,
    key: String,
    limit: crate::rate_limit::Limit,
) -> Result<(), AuthError> {
    match auth.inner.limiter.hit(&key, limit).await? {
        Decision::Limited { retry_after } => Err(AuthError::RateLimited { retry_after }),
        Decision::Allowed { .. } => Ok(()),
    }
}

pub(super) async fn verify_email<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let code = f.string("verification_code");
    let code = code.trim();
    if !f.has_error("verification_code") && !is_well_formed(code) {
        f.error("verification_code", "Enter the 6-digit code.");
    }
    f.finish()?;

    let mut user = current_user(&auth, &caller).await?;
    if !user.email_verified {
        limit(
            &auth,
            format!("verify:user:{}", user.id),
            auth.config().limits().verify_attempts_per_user,
        )
        .await?;
        let record = auth
            .users()
            .verification_code(&user.id)
            .await?
            .ok_or(AuthError::InvalidCode)?;
        let attempts = match auth.users().count_verification_attempt(&user.id).await {
            Ok(n) => n,
            Err(StoreError::NotFound) => return Err(AuthError::InvalidCode),
            Err(e) => return Err(e.into()),
        };
        if attempts > auth.inner.codes.policy.max_attempts {
            return Err(AuthError::TooManyAttempts);
        }
        if now_millis() >= record.expires_at {
            return Err(AuthError::CodeExpired);
        }
        if !auth.inner.codes.matches(&user.id, code, &record) {
            let left = auth
                .inner
                .codes
                .policy
                .max_attempts
                .saturating_sub(attempts);
            return Err(if left == 0 {
                AuthError::TooManyAttempts
            } else {
                AuthError::InvalidCode
            });
        }
        auth.users().mark_email_verified(&user.id).await?;
        user.email_verified = true;
        tracing::info!(user = %user.id, "e-mail verified");
    }
    let (token, _) = auth.issue_access_token(&user, caller.session_id())?;
    let cookie = auth
        .config()
        .access_cookie()
        .set(&token, auth.config().access_ttl());
    let body = json!({ "detail": "The e-mail address is verified.", "email_verified": true });
    Ok(with_cookies(StatusCode::OK, &[cookie], Some(body)))
}

pub(super) async fn resend<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
) -> Result<Response, AuthError> {
    let user = current_user(&auth, &caller).await?;
    if user.email_verified {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    limit(
        &auth,
        format!("resend:user:{}", user.id),
        auth.config().limits().resends_per_user,
    )
    .await?;
    if !send_new_code(&auth, &user).await? {
        return Err(AuthError::MailUnavailable);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Replaces `user`'s verification code with a fresh one and mails it.
/// Returns whether the mail went out (a failure is logged; the stored code
/// stands either way).
pub(super) async fn send_new_code<E: ExtraClaims>(
    auth: &Auth<E>,
    user: &User,
) -> Result<bool, AuthError> {
    let (code, record) = auth.inner.codes.generate(&user.id, now_millis());
    auth.users()
        .set_verification_code(&user.id, &record)
        .await?;
    let facts = MailFacts::new(&user.email, &user.name).code(&code, auth.inner.codes.policy.ttl);
    let mail = Templates::default().mail(MailKind::Verification, &facts);
    let sent = auth.inner.mailer.send(&mail).await;
    if let Err(e) = &sent {
        tracing::warn!(user = %user.id, error = %e, "verification mail not sent");
    }
    Ok(sent.is_ok())
}
