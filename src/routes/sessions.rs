//! `GET /sessions/` and `DELETE /sessions/{id}/`.

use axum::Json;
use axum::extract::{Path, State};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::cleared;
use crate::auth::Auth;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

pub(super) async fn list<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
) -> Result<Response, AuthError> {
    let sessions = auth.sessions(&caller).await?;
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// `204`; revoking the caller's own session also clears its cookies.
pub(super) async fn revoke<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    auth.revoke_session(&caller, &id).await?;
    if id == caller.session_id() {
        return Ok(cleared(&auth));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
