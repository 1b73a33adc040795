//! `POST /password-reset/` and `POST /password-reset/confirm/`.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::body::JsonObject;
use super::{ClientOf, session_response};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::token::claims::ExtraClaims;

/// `202` whether or not the address has an account.
pub(super) async fn request<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let email = f.string("email");
    let captcha = f.optional_string("captcha");
    f.finish()?;
    auth.request_password_reset(&client.with_captcha(captcha), &email)
        .await?;
    let body = json!({
        "detail": "If the address has an account, a code to reset its password is on its way."
    });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub(super) async fn confirm<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let email = f.string("email");
    let code = f.code("code");
    let new_password = f.string("new_password");
    f.finish()?;
    let tokens = auth
        .reset_password(&client, &email, &code, &new_password)
        .await?;
    Ok(session_response(
        &auth,
        &tokens,
        StatusCode::NO_CONTENT,
        None,
    ))
}
