//! `POST /custom-logout/` and `POST /logout-all/`.

use axum::extract::State;
use axum_core::response::Response;
use http::{HeaderMap, StatusCode};

use super::with_cookies;
use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;
use crate::extract::AuthUser;

/// Always `204` with both cookies cleared. The sign-in is revoked when the
/// refresh cookie is genuine, or else when a valid access token names it.
/// An expired or garbage access cookie changes nothing: no `401` loop.
pub(super) async fn logout<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    headers: HeaderMap,
) -> Response {
    let config = auth.config();
    let revoked = match config.refresh_cookie().find(&headers) {
        Some(token) => auth.revoke(token).await,
        None => Ok(None),
    };
    let by_access = match revoked {
        Ok(Some(_)) => None,
        Ok(None) => crate::source::read(&headers, config)
            .ok()
            .and_then(|c| c.bearer.or(c.access_cookie))
            .and_then(|t| auth.verify_at(t, crate::time::now_secs()).ok()),
        Err(e) => {
            tracing::warn!(error = %e, "logout could not revoke the sign-in");
            None
        }
    };
    if let Some(claims) = by_access
        && let Err(e) = auth.revoke_session(&claims.sid).await
    {
        tracing::warn!(error = %e, "logout could not revoke the sign-in");
    }
    with_cookies(StatusCode::NO_CONTENT, &auth.clear_cookies(), None)
}

/// Revokes every sign-in of the caller and clears this client's cookies.
pub(super) async fn logout_all<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    user: AuthUser<E>,
) -> Result<Response, AuthError> {
    auth.revoke_user(user.id()).await?;
    Ok(with_cookies(
        StatusCode::NO_CONTENT,
        &auth.clear_cookies(),
        None,
    ))
}
