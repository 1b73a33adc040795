//! `POST /change-password/`.

use axum::extract::State;
use axum_core::response::Response;
use http::StatusCode;

use super::body::JsonObject;
use super::{ClientOf, session_response};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

pub(super) async fn change_password<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let current = f.string("current_password");
    let new = f.string("new_password");
    f.finish()?;
    let tokens = auth
        .change_password(&caller, &client, &current, &new)
        .await?;
    Ok(session_response(
        &auth,
        &tokens,
        StatusCode::NO_CONTENT,
        None,
    ))
}
