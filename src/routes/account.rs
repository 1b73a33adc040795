//! `DELETE /account/`.

use axum::extract::State;
use axum_core::response::Response;

use super::body::JsonObject;
use super::{ClientOf, cleared};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

pub(super) async fn delete<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    ClientOf(client): ClientOf,
    body: JsonObject,
) -> Result<Response, AuthError> {
    let mut f = body.fields();
    let password = f.string("password");
    f.finish()?;
    auth.delete_account(&caller, &client, &password).await?;
    Ok(cleared(&auth))
}
