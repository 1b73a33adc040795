//! `POST /signin/`: check a login and password, start a session.

use axum::extract::State;
use axum_core::response::Response;
use http::StatusCode;

use super::body::JsonObject;
use super::{ClientOf, session_response};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::token::claims::ExtraClaims;

pub(super) async fn signin<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let login = f.string("login");
    let password = f.string("password");
    let captcha = f.optional_string("captcha");
    f.finish()?;
    let tokens = auth
        .sign_in(&client.with_captcha(captcha), &login, &password)
        .await?;
    Ok(session_response(
        &auth,
        &tokens,
        StatusCode::NO_CONTENT,
        None,
    ))
}
