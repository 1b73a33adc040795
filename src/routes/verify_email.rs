//! `POST /verify-email/` and `POST /resend-verification/`.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::body::JsonObject;
use super::{ClientOf, access_response};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

pub(super) async fn verify<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let code = f.code("verification_code");
    f.finish()?;
    let verified = auth.verify_email(&caller, &client, &code).await?;
    let mut body = serde_json::Map::new();
    body.insert("detail".into(), json!("The e-mail address is verified."));
    body.insert("email_verified".into(), json!(true));
    Ok(access_response(&auth, &verified.access, body))
}

pub(super) async fn resend<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
) -> Result<Response, AuthError> {
    auth.resend_verification(&caller).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
