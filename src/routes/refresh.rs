//! `POST /custom-refresh/`: rotate the refresh token, mint an access token.
//!
//! The token comes as the refresh cookie, or (with tokens in the body turned
//! on, and no cookie) as `{"refresh_token": "..."}`.

use axum::extract::{Request, State};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::SET_COOKIE;

use super::body::JsonObject;
use super::{refresh_cookie, session_response};
use crate::auth::Auth;
use crate::error::AuthError;
use crate::token::claims::ExtraClaims;

pub(super) async fn refresh<E: ExtraClaims>(State(auth): State<Auth<E>>, req: Request) -> Response {
    let token = match refresh_cookie(&auth, req.headers()) {
        Some(token) => Ok(token.to_owned()),
        None if auth.settings().tokens_in_body() => body_token(&auth, req).await,
        None => Err(AuthError::InvalidRefreshToken),
    };
    let result = match token {
        Ok(token) => auth.refresh(&token).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(tokens) => session_response(&auth, &tokens, StatusCode::NO_CONTENT, None),
        Err(e @ AuthError::InvalidRefreshToken) => {
            // Stop the client from presenting a dead token again.
            let mut res = e.into_response();
            for cookie in auth.clear_cookies() {
                res.headers_mut().append(SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The `refresh_token` field of a JSON body; a missing one is an invalid
/// refresh token, like a missing cookie.
pub(super) async fn body_token<E: ExtraClaims>(
    auth: &Auth<E>,
    req: Request,
) -> Result<String, AuthError> {
    use axum::extract::FromRequest;
    let body = JsonObject::from_request(req, auth).await?;
    let mut f = body.fields();
    let token = f.optional_string("refresh_token");
    f.finish()?;
    if token.is_empty() {
        return Err(AuthError::InvalidRefreshToken);
    }
    Ok(token)
}
