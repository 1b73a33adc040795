//! Sending verification codes: the [`Mailer`] trait and [`LogMailer`].

use async_trait::async_trait;

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Delivers verification codes. Implement it over your mail provider.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `code` to `to` (whose display name is `name`).
    async fn send_verification_code(
        &self,
        to: &str,
        name: &str,
        code: &str,
    ) -> Result<(), MailError>;
}

/// Writes each code to the log as one `INFO` line holding the address and the
/// code, instead of sending mail. For development; the example's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send_verification_code(
        &self,
        to: &str,
        _name: &str,
        code: &str,
    ) -> Result<(), MailError> {
        tracing::info!(target: "axum_authkit::mail", email = %to, code = %code, "verification code");
        Ok(())
    }
}
