//! [`AuthError`]: every failure the crate reports, and how it becomes a
//! response.
//!
//! The body is always JSON, `{"detail": "...", "code": "..."}`, plus
//! `"errors": {"field": ["message", ...]}` for field validation errors. Every
//! `401` carries `WWW-Authenticate` as RFC 6750 section 3 describes:
//! `Bearer realm="api"` alone when no credentials came, with
//! `error="invalid_token"` and an `error_description` when a token came and
//! was bad. `429` carries `Retry-After`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::keys::KeyError;
use crate::store::StoreError;
use crate::token::TokenError;

/// Why an [`Auth`](crate::Auth) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither [`AuthBuilder::secret`](crate::AuthBuilder::secret) nor [`AuthBuilder::keys`](crate::AuthBuilder::keys) was called.
    #[error("no signing key: call AuthBuilder::secret or AuthBuilder::keys")]
    MissingKeys,
    /// `keys` was given without `refresh_secret`.
    #[error("AuthBuilder::keys needs AuthBuilder::refresh_secret as well (at least 32 bytes)")]
    MissingRefreshSecret,
    /// The refresh secret is shorter than 32 bytes.
    #[error("the refresh secret has {0} bytes; at least 32 are required")]
    RefreshSecretTooShort(usize),
    /// No user store or no session store.
    #[error("no {0}: call AuthBuilder::store (or users / sessions)")]
    MissingStore(&'static str),
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// A cookie setting browsers would refuse.
    #[error("cookie {name:?}: {problem}")]
    Cookie {
        /// The cookie's name, prefix included.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An allowed origin could not be parsed.
    #[error("invalid allowed origin {origin:?}: {reason}")]
    Origin {
        /// The origin as given.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The realm named in `WWW-Authenticate` challenges.
pub(crate) const REALM: &str = "api";

/// Field validation messages, keyed by field name.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

/// Everything that can go wrong, from a bad token to a store outage.
///
/// Each variant has a fixed status and machine `code` (see [`AuthError::code`]);
/// the `Display` text is the human `detail`.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No access token (nor a usable refresh cookie) came with the request. `401 not_authenticated`.
    #[error("Authentication credentials were not provided.")]
    MissingCredentials,
    /// A token came and was refused. `401 invalid_token`, or `token_expired`
    /// when only its lifetime was wrong.
    #[error("The access token is invalid: {0}.")]
    InvalidToken(TokenError),
    /// More than one `Authorization` header. `400 invalid_request`.
    #[error("More than one Authorization header was sent.")]
    MultipleAuthorization,
    /// A cookie-authenticated unsafe request from another site. `403 csrf_failed`.
    #[error("Cross-site request refused.")]
    CsrfFailed,
    /// The route needs a verified e-mail address. `403 email_not_verified`.
    #[error("The e-mail address has not been verified.")]
    EmailNotVerified,
    /// The refresh cookie is missing, unknown, expired or revoked. `401 invalid_refresh_token`.
    #[error("The refresh token is invalid or has expired.")]
    InvalidRefreshToken,
    /// Unknown login or wrong password (deliberately indistinguishable). `401 invalid_credentials`.
    #[error("Invalid login or password.")]
    InvalidCredentials,
    /// The body failed validation. `400 invalid_request`.
    #[error("{detail}")]
    InvalidRequest {
        /// Human summary.
        detail: String,
        /// Per-field messages (may be empty for whole-body errors).
        errors: FieldErrors,
    },
    /// The body is not `application/json`. `415 unsupported_media_type`.
    #[error("Expected a request body with Content-Type: application/json.")]
    UnsupportedMediaType,
    /// The body is over the size limit. `413 payload_too_large`.
    #[error("The request body is too large.")]
    PayloadTooLarge,
    /// The captcha provider said no. `400 captcha_failed`.
    #[error("The captcha check failed.")]
    CaptchaFailed,
    /// The captcha provider could not be asked. `503 captcha_unavailable`.
    #[error("The captcha service is unavailable; try again later.")]
    CaptchaUnavailable,
    /// The mailer failed on a route whose whole point is the mail (resend,
    /// change-email). `503 mail_unavailable`.
    #[error("The mail could not be sent; try again later.")]
    MailUnavailable,
    /// A password the caller had to confirm was wrong (change-password,
    /// change-email, account deletion). `400 invalid_password`, with the
    /// field named in `errors`.
    #[error("The password is incorrect.")]
    InvalidPassword(&'static str),
    /// No such resource (an unknown path under the auth prefix, or a session
    /// that is not one of the caller's). `404 not_found`.
    #[error("Not found.")]
    NotFound,
    /// A known path with another method. `405 method_not_allowed`, with
    /// `Allow`.
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// Sign-up with an address that already has an account. `409 email_taken`.
    #[error("An account with this e-mail address already exists.")]
    EmailTaken,
    /// A rate limit was reached. `429 rate_limited` with `Retry-After`.
    #[error("Too many requests; try again later.")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Wrong verification code. `400 invalid_code`.
    #[error("The verification code is invalid.")]
    InvalidCode,
    /// The verification code expired. `400 code_expired`.
    #[error("The verification code has expired; request a new one.")]
    CodeExpired,
    /// The code was burned after too many wrong tries. `429 too_many_attempts`.
    #[error("Too many wrong codes; request a new one.")]
    TooManyAttempts,
    /// A store could not be reached. `503 store_unavailable`.
    #[error("The service is temporarily unavailable; try again later.")]
    StoreUnavailable(#[source] std::sync::Arc<StoreError>),
    /// An extractor ran on a route without `AuthLayer`: a wiring bug in the
    /// app. `500 auth_layer_missing`.
    #[error(
        "{0} was used on a route that AuthLayer does not cover; add `.layer(auth.layer())` (or `.layer(auth.layer().required())`) to the router that serves it."
    )]
    LayerMissing(&'static str),
    /// An extractor asked for other app claims than the layer's `Auth` was
    /// built with: a wiring bug in the app. `500 claims_type_mismatch`.
    #[error(
        "{extractor} expects app claims of type `{expected}`, but the AuthLayer in front of this route was built for `{found}`; use {extractor}<{found}> (or build the Auth with .with_claims for `{expected}`)."
    )]
    ClaimsMismatch {
        /// The extractor, with its type parameter.
        extractor: &'static str,
        /// The claims type the extractor asked for.
        expected: &'static str,
        /// The claims type of the layer's `Auth`.
        found: &'static str,
    },
    /// Something that should not happen (a hashing task died, a token could
    /// not be signed). `500 internal_error`.
    #[error("Internal error.")]
    Internal(&'static str),
}

impl AuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            MissingCredentials | InvalidToken(_) | InvalidRefreshToken | InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            MultipleAuthorization
            | InvalidRequest { .. }
            | CaptchaFailed
            | InvalidCode
            | CodeExpired
            | InvalidPassword(_) => StatusCode::BAD_REQUEST,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            CsrfFailed | EmailNotVerified => StatusCode::FORBIDDEN,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EmailTaken => StatusCode::CONFLICT,
            RateLimited { .. } | TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            CaptchaUnavailable | MailUnavailable | StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            LayerMissing(_) | ClaimsMismatch { .. } | Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable `code` of the body.
    pub fn code(&self) -> &'static str {
        use AuthError::*;
        match self {
            MissingCredentials => "not_authenticated",
            InvalidToken(TokenError::Expired) => "token_expired",
            InvalidToken(_) => "invalid_token",
            MultipleAuthorization | InvalidRequest { .. } => "invalid_request",
            CsrfFailed => "csrf_failed",
            EmailNotVerified => "email_not_verified",
            InvalidRefreshToken => "invalid_refresh_token",
            InvalidCredentials => "invalid_credentials",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            CaptchaFailed => "captcha_failed",
            CaptchaUnavailable => "captcha_unavailable",
            MailUnavailable => "mail_unavailable",
            EmailTaken => "email_taken",
            RateLimited { .. } => "rate_limited",
            InvalidCode => "invalid_code",
            CodeExpired => "code_expired",
            TooManyAttempts => "too_many_attempts",
            StoreUnavailable(_) => "store_unavailable",
            LayerMissing(_) => "auth_layer_missing",
            ClaimsMismatch { .. } => "claims_type_mismatch",
            InvalidPassword(_) => "invalid_password",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Internal(_) => "internal_error",
        }
    }

    /// A validation error for one field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field, vec![message.into()]);
        Self::invalid(errors)
    }

    /// A validation error naming each field's problems.
    pub fn invalid(errors: FieldErrors) -> Self {
        AuthError::InvalidRequest {
            detail: "The request is invalid.".into(),
            errors,
        }
    }

    /// A validation error for the whole body.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        AuthError::InvalidRequest {
            detail: detail.into(),
            errors: FieldErrors::new(),
        }
    }

    fn challenge(&self) -> Option<HeaderValue> {
        let description = match self {
            AuthError::InvalidToken(e) => e.description(),
            AuthError::InvalidRefreshToken => "the refresh token is invalid or expired",
            _ if self.status() == StatusCode::UNAUTHORIZED => {
                return Some(HeaderValue::from_static(r#"Bearer realm="api""#));
            }
            _ => return None,
        };
        // Descriptions are static ASCII without quotes, so the value is valid.
        HeaderValue::from_str(&format!(
            r#"Bearer realm="{REALM}", error="invalid_token", error_description="{description}""#
        ))
        .ok()
    }
}

impl From<crate::password::HashError> for AuthError {
    fn from(err: crate::password::HashError) -> Self {
        match err {
            crate::password::HashError::Busy => AuthError::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
            },
            crate::password::HashError::Failed(what) => AuthError::Internal(what),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => AuthError::EmailTaken,
            other => AuthError::StoreUnavailable(std::sync::Arc::new(other)),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        (&self).into_response()
    }
}

impl IntoResponse for &AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AuthError::StoreUnavailable(e) => tracing::warn!(error = %e, "store unavailable"),
            AuthError::LayerMissing(_) | AuthError::ClaimsMismatch { .. } => {
                tracing::error!("{self}")
            }
            AuthError::Internal(what) => tracing::error!(what, "internal error"),
            _ => tracing::debug!(code = self.code(), "request refused"),
        }
        let password_field;
        let errors = match &self {
            AuthError::InvalidRequest { errors, .. } if !errors.is_empty() => Some(errors),
            AuthError::InvalidPassword(field) => {
                password_field = FieldErrors::from([(*field, vec![self.to_string()])]);
                Some(&password_field)
            }
            _ => None,
        };
        let body = Body {
            detail: self.to_string(),
            code: self.code(),
            errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (status, json).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge() {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let AuthError::RateLimited { retry_after } = *self {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}
