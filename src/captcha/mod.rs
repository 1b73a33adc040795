//! Captcha checks for the sign-up and sign-in forms.
//!
//! ```no_run
//! # #[cfg(feature = "siteverify")]
//! # async fn example(token: &str, client_ip: std::net::IpAddr) {
//! use std::time::Duration;
//!
//! use axum_authkit::captcha::{CaptchaError, CaptchaVerifier, Siteverify};
//!
//! // The token is what the widget put in the form (`cf-turnstile-response`,
//! // `g-recaptcha-response` or `h-captcha-response`).
//! let verifier = Siteverify::turnstile("0x4AAAAAAA-your-secret-key")
//!     .expected_hostnames(["example.com", "www.example.com"])
//!     .timeout(Duration::from_secs(3));
//!
//! match verifier.verify(token, Some(client_ip)).await {
//!     Ok(()) => { /* go on with the sign-up */ }
//!     Err(CaptchaError::Failed { error_codes, reason }) => { /* 400 captcha_failed */ }
//!     Err(CaptchaError::Unavailable(why)) => { /* 503 captcha_unavailable */ }
//!     Err(other) => { /* variants added later */ }
//! }
//! # }
//! ```
//!
//! A [`CaptchaVerifier`] answers one question: is this widget response
//! token good? Two come with the crate:
//!
//! - [`NoCaptcha`] accepts everything. It is meant for development and tests
//!   only.
//! - `Siteverify` (feature `siteverify`, on by default) asks the provider's
//!   siteverify endpoint. One client serves Google reCAPTCHA (v2 and v3),
//!   hCaptcha and Cloudflare Turnstile, since all three speak the same
//!   protocol: a form-encoded `POST` of `secret`, `response` and `remoteip`,
//!   answered with JSON.
//!
//! # Failing closed
//!
//! [`CaptchaError::Failed`] means the token was judged and found wanting (the
//! provider said no, or a local check on hostname, action or score failed).
//! The router answers it with `400 captcha_failed`.
//! [`CaptchaError::Unavailable`] means no verdict could be had: the provider
//! was unreachable, too slow, answered 5xx, or answered something that is not
//! a siteverify answer. The router answers it with `503 captcha_unavailable`
//! and never lets the request through: an outage of the captcha provider
//! blocks sign-ups rather than opening the door to bots.
//!
//! Your own verifier only has to implement the trait:
//!
//! ```
//! use std::net::IpAddr;
//!
//! use axum_authkit::captcha::{CaptchaError, CaptchaVerifier};
//!
//! /// Accepts one fixed token (say, for an end-to-end test suite).
//! struct FixedToken(&'static str);
//!
//! #[async_trait::async_trait]
//! impl CaptchaVerifier for FixedToken {
//!     async fn verify(&self, response: &str, _ip: Option<IpAddr>) -> Result<(), CaptchaError> {
//!         if response == self.0 {
//!             Ok(())
//!         } else {
//!             Err(CaptchaError::Failed {
//!                 error_codes: vec!["invalid-input-response".to_owned()],
//!                 reason: "unknown token",
//!             })
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

/// Checks a captcha widget's response token.
///
/// Implementations must fail closed: when no verdict can be had, return
/// [`CaptchaError::Unavailable`], never `Ok`.
#[async_trait]
pub trait CaptchaVerifier: Send + Sync + 'static {
    /// Checks `response`, the token the widget put in the form, optionally
    /// together with the client's address.
    ///
    /// `Ok(())` lets the request through; [`CaptchaError::Failed`] rejects the
    /// token; [`CaptchaError::Unavailable`] means no verdict could be had.
    async fn verify(&self, response: &str, remote_ip: Option<IpAddr>) -> Result<(), CaptchaError>;
}

#[async_trait]
impl<T: CaptchaVerifier + ?Sized> CaptchaVerifier for Arc<T> {
    async fn verify(&self, response: &str, remote_ip: Option<IpAddr>) -> Result<(), CaptchaError> {
        (**self).verify(response, remote_ip).await
    }
}

/// A verifier that accepts every response, even an empty one.
///
/// **For development and tests only.** With it, the captcha protects
/// nothing: use `Siteverify` (feature `siteverify`) or your own verifier in
/// production.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoCaptcha;

#[async_trait]
impl CaptchaVerifier for NoCaptcha {
    async fn verify(
        &self,
        _response: &str,
        _remote_ip: Option<IpAddr>,
    ) -> Result<(), CaptchaError> {
        Ok(())
    }
}

/// Why a captcha check did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptchaError {
    /// The token was judged and rejected: the provider said no, or a local
    /// check (hostname, action, score) failed. Answered with
    /// `400 captcha_failed`.
    #[error("captcha verification failed: {reason}{}", CodesSuffix(.error_codes))]
    Failed {
        /// The provider's error codes, such as `invalid-input-response` or
        /// `timeout-or-duplicate`; empty when a local check failed.
        error_codes: Vec<String>,
        /// A short, fixed description, such as `"hostname mismatch"`.
        reason: &'static str,
    },
    /// No verdict could be had: the provider was unreachable, timed out,
    /// answered 5xx or an unparsable body. Answered with
    /// `503 captcha_unavailable`; the request is never let through.
    #[error("captcha provider unavailable: {0}")]
    Unavailable(String),
}

/// Formats `" (error codes: a, b)"`, or nothing when there are none.
struct CodesSuffix<'a>(&'a [String]);

impl fmt::Display for CodesSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" (error codes: ")?;
        for (i, code) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(code)?;
        }
        f.write_str(")")
    }
}

#[cfg(feature = "siteverify")]
mod siteverify;
#[cfg(feature = "siteverify")]
pub use siteverify::Siteverify;
