//! `POST /custom-refresh/`: rotate the refresh cookie, mint an access token.

use axum::extract::State;
use axum_core::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::with_cookies;
use crate::auth::Auth;
use crate::claims::ExtraClaims;
use crate::error::AuthError;

pub(super) async fn refresh<E: ExtraClaims>(
    State(auth): State<Auth<E>>,
    req: axum::extract::Request,
) -> Response {
    // The refresh cookie is a credential: the cross-site rule applies.
    let Some(req) = auth.inner.csrf.check(req) else {
        return AuthError::CsrfFailed.into_response();
    };
    let headers: &HeaderMap = req.headers();
    let Some(token) = auth.config().refresh_cookie().find(headers) else {
        return AuthError::InvalidRefreshToken.into_response();
    };
    match auth.refresh(token).await {
        Ok(session) => with_cookies(
            StatusCode::NO_CONTENT,
            &auth.session_cookies(&session),
            None,
        ),
        Err(e @ AuthError::InvalidRefreshToken) => {
            // Stop the client from presenting a dead token again.
            let mut res = e.into_response();
            for cookie in auth.clear_cookies() {
                res.headers_mut().append(http::header::SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}
