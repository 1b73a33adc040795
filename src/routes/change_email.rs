//! `POST /change-email/` and `POST /change-email/confirm/`.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::body::JsonObject;
use super::{ClientOf, access_response, user_json};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

/// `202`: a code to the new address, a notice to the old one.
pub(super) async fn request<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let new_email = f.string("new_email");
    let password = f.string("password");
    f.finish()?;
    auth.request_email_change(&caller, &client, &new_email, &password)
        .await?;
    let body = json!({ "detail": "A code is on its way to the new address." });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

pub(super) async fn confirm<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let code = f.code("verification_code");
    f.finish()?;
    let changed = auth.confirm_email_change(&caller, &client, &code).await?;
    Ok(access_response(
        &auth,
        &changed.access,
        user_json(&changed.user),
    ))
}
