//! `POST /signin/`: check a login and password, start a sign-in.
//!
//! An unknown login and a wrong password get the same `401` body after the
//! same argon2 work. Failures are counted per login and per client address,
//! reserved before the captcha and the hashing; at the limit the route
//! answers `429` with `Retry-After` at once.

use axum::extract::State;
use axum_core::response::Response;
use http::StatusCode;
use http::request::Parts;

use super::body::JsonObject;
use super::signup::check_captcha;
use super::{ip_key, with_cookies};
use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::rate_limit::{Decision, Limit};
use crate::store::email_key;

pub(super) async fn signin<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    parts: Parts,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let login = f.string("login");
    let password = f.string("password");
    let captcha = f.optional_string("captcha");
    f.finish()?;

    let limits = auth.config().limits();
    let ip = ip_key(&parts, &auth);
    let mut keys = vec![(
        format!("signin:login:{}", email_key(&login)),
        limits.signin_failures_per_login,
    )];
    if let Some(ip) = &ip {
        keys.push((format!("signin:ip:{ip}"), limits.signin_failures_per_ip));
    }
    // Each attempt reserves its failure up front (atomically), so a burst
    // cannot get more password evaluations than the limits allow.
    for (i, (key, limit)) in keys.iter().enumerate() {
        match auth.inner.limiter.reserve(key, *limit).await {
            Ok(Decision::Allowed { .. }) => {}
            Ok(Decision::Limited { retry_after }) => {
                release(&auth, &keys[..i]).await;
                tracing::info!(key = ?key, "sign-in rate limited");
                return Err(AuthError::RateLimited { retry_after });
            }
            Err(e) => {
                release(&auth, &keys[..i]).await;
                return Err(e.into());
            }
        }
    }
    let checked = async {
        check_captcha(&auth, &captcha, &parts).await?;
        let user = auth.users().user_by_email(&login).await?;
        let verdict = auth
            .inner
            .passwords
            .verify(
                password.clone(),
                user.as_ref().map(|u| u.password_hash.clone()),
                ip.as_deref(),
            )
            .await?;
        Ok::<_, AuthError>((user, verdict))
    }
    .await;
    // No password was evaluated: the attempt is not a failure.
    let (user, verdict) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            release(&auth, &keys).await;
            return Err(e);
        }
    };
    let user = match user {
        Some(user) if verdict.ok && !user.disabled => user,
        _ => {
            // The reservations stand: they are this failure's count.
            tracing::info!("sign-in failed");
            return Err(AuthError::InvalidCredentials);
        }
    };
    auth.inner.limiter.reset(&keys[0].0).await?;
    release(&auth, &keys[1..]).await;
    if verdict.needs_rehash {
        match auth.inner.passwords.hash(password, ip.as_deref()).await {
            Ok(hash) => {
                if let Err(e) = auth.users().set_password_hash(&user.id, &hash).await {
                    tracing::warn!(user = %user.id, error = %e, "password rehash not stored");
                }
            }
            Err(e) => tracing::warn!(user = %user.id, error = %e, "password rehash failed"),
        }
    }
    let session = auth.sign_in(&user).await?;
    Ok(with_cookies(
        StatusCode::NO_CONTENT,
        &auth.session_cookies(&session),
        None,
    ))
}

/// Gives back the reservations of an attempt that is not a failure.
async fn release<E: ExtraClaims>(auth: &Auth<E>, keys: &[(String, Limit)]) {
    for (key, _) in keys {
        if let Err(e) = auth.inner.limiter.release(key).await {
            tracing::warn!(key = ?key, error = %e, "rate-limit release failed");
        }
    }
}
