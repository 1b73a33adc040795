//! `POST /custom-logout/` and `POST /logout-all/`.

use axum::extract::{Request, State};
use axum_core::response::Response;

use super::{cleared, refresh_cookie};
use crate::auth::Auth;
use crate::credentials;
use crate::error::AuthError;
use crate::extract::AuthUser;
use crate::token::claims::ExtraClaims;

/// Always `204` with both cookies cleared. The session ends when the
/// refresh token (cookie, or body where allowed) is genuine, or else when a
/// valid access token names it. Garbage changes nothing: no `401` loop.
pub(super) async fn logout<E: ExtraClaims>(State(auth): State<Auth<E>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let mut refresh = refresh_cookie(&auth, &headers).map(str::to_owned);
    if refresh.is_none() && auth.settings().tokens_in_body() && has_body(&req) {
        refresh = super::refresh::body_token(&auth, req).await.ok();
    }
    let access = credentials::read(&headers, auth.settings().access_cookie())
        .ok()
        .and_then(|c| c.access_token());
    if let Err(e) = auth.sign_out(refresh.as_deref(), access).await {
        tracing::warn!(error = %e, "logout could not end the session");
    }
    cleared(&auth)
}

fn has_body(req: &Request) -> bool {
    req.headers().contains_key(http::header::CONTENT_TYPE)
}

/// Ends every session of the caller and clears this client's cookies.
pub(super) async fn logout_all<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    caller: AuthUser<E>,
) -> Result<Response, AuthError> {
    auth.sign_out_everywhere(caller.id()).await?;
    Ok(cleared(&auth))
}
