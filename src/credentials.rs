//! Where a request's credentials come from.
//!
//! 1. `Authorization: Bearer <token>` (scheme case-insensitive). Two or more
//!    `Authorization` headers are a `400`. A Bearer token that is present is
//!    *the* credential: when it is invalid, the cookie is not consulted.
//!    Other schemes (`Basic`, ...) are left to the app.
//! 2. Otherwise (no Bearer token) the access cookie (default `access_token`).
//! 3. The refresh cookie (default `refresh_token`), looked up only when a
//!    refresh is possible: no `Authorization` header, and an access cookie
//!    that is missing, past its `exp` or invalid.
//!
//! A token in the query string (`?access_token=`) is never read: URLs end up
//! in logs and `Referer` headers.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::cookies::CookieSettings;
use crate::error::AuthError;

/// The credentials a request carries, borrowed from its headers (as bytes:
/// a cached token is recognised without a UTF-8 check).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Credentials<'a> {
    /// The token of an `Authorization: Bearer` header.
    pub(crate) bearer: Option<&'a [u8]>,
    /// Whether any `Authorization` header came.
    pub(crate) has_authorization: bool,
    /// The access cookie's value (read only when no Bearer token came).
    pub(crate) access_cookie: Option<&'a [u8]>,
    headers: &'a HeaderMap,
}

impl<'a> Credentials<'a> {
    /// The refresh cookie, when a refresh is possible (no `Authorization`
    /// header came).
    pub(crate) fn refresh_cookie(&self, cookie: &CookieSettings) -> Option<&'a str> {
        if self.has_authorization {
            return None;
        }
        cookie.find(self.headers)
    }

    /// The access token, from the header or else the cookie.
    pub(crate) fn access_token(&self) -> Option<&'a [u8]> {
        self.bearer.or(self.access_cookie)
    }
}

/// Reads the credentials of a request; `access_cookie` names the cookie.
pub(crate) fn read<'a>(
    headers: &'a HeaderMap,
    access_cookie: &CookieSettings,
) -> Result<Credentials<'a>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::MultipleAuthorization);
    }
    let bearer = first.and_then(|v| bearer_token(v.as_bytes()));
    Ok(Credentials {
        bearer,
        has_authorization: first.is_some(),
        access_cookie: if bearer.is_none() {
            access_cookie.find_bytes(headers)
        } else {
            None
        },
        headers,
    })
}

/// The token of a `Bearer` credential (RFC 6750 section 2.1); `Some(b"")`
/// for a Bearer credential without a token, so that it is refused rather
/// than ignored.
pub(crate) fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    if value.len() < SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    if !rest.is_empty() && rest[0] != b' ' {
        return None; // "Bearerx": another scheme
    }
    Some(rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bEaReR   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Bearer"), Some(&b""[..]));
        assert_eq!(bearer_token(b"Bearer \xff"), Some(&b"\xff"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearerabc"), None);
    }
}
