//! `POST /signup/`: create an account, sign it in, mail a verification code.

use axum::extract::State;
use axum_core::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::body::JsonObject;
use super::{ClientOf, session_response, user_json};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::token::claims::ExtraClaims;

pub(super) async fn signup<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let email = f.string("email");
    let password = f.string("password");
    let name = f.string("name");
    let captcha = f.optional_string("captcha");
    f.finish()?;
    let client = client.with_captcha(captcha);
    let signed_up = auth.sign_up(&client, &email, &password, &name).await?;
    let body = Value::Object(user_json(&signed_up.user));
    Ok(session_response(
        &auth,
        &signed_up.tokens,
        StatusCode::CREATED,
        Some(body),
    ))
}
