//! Mail: what a message is about ([`MailKind`]), its text ([`Templates`]),
//! and who delivers it ([`Mailer`]): [`LogMailer`] for development, and
//! `SmtpMailer` with the `smtp` feature.
//!
//! ```
//! use std::time::Duration;
//! use axum_authkit::mail::{LogMailer, MailFacts, MailKind, Mailer, Templates};
//!
//! # async fn demo() -> Result<(), axum_authkit::mail::MailError> {
//! let facts = MailFacts::new("jo@example.com", "Jo").code("123456", Duration::from_secs(900));
//! let mail = Templates::default().mail(MailKind::Verification, &facts);
//! LogMailer.send(&mail).await?;
//! # Ok(()) }
//! ```

use std::error::Error as StdError;

use async_trait::async_trait;

#[cfg(feature = "smtp")]
mod smtp;
mod templates;

#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfigError, SmtpMailer, SmtpMailerBuilder};
pub use templates::{MailFacts, TemplateError, Templates};

/// What a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MailKind {
    /// A code that verifies a new account's address.
    Verification,
    /// A code that lets the user set a new password.
    PasswordReset,
    /// A code, sent to the new address, that confirms an e-mail change.
    EmailChangeCode,
    /// A notice, sent to the old address, that the address is being changed.
    EmailChangeNotice,
    /// A notice that the password was changed.
    PasswordChanged,
}

impl MailKind {
    /// Every kind.
    pub const ALL: &'static [MailKind] = &[
        MailKind::Verification,
        MailKind::PasswordReset,
        MailKind::EmailChangeCode,
        MailKind::EmailChangeNotice,
        MailKind::PasswordChanged,
    ];

    /// Whether this kind of message carries a code (the notices never do).
    pub fn has_code(self) -> bool {
        matches!(
            self,
            MailKind::Verification | MailKind::PasswordReset | MailKind::EmailChangeCode
        )
    }

    /// A stable snake_case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Verification => "verification",
            MailKind::PasswordReset => "password_reset",
            MailKind::EmailChangeCode => "email_change_code",
            MailKind::EmailChangeNotice => "email_change_notice",
            MailKind::PasswordChanged => "password_changed",
        }
    }
}

/// A message ready to send: the structured facts and the rendered text.
/// Usually made by [`Templates::mail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// What the message is about.
    pub kind: MailKind,
    /// The recipient's address.
    pub to: String,
    /// The recipient's display name (user input: may hold anything).
    pub name: String,
    /// The code the message carries; `None` for the notices.
    pub code: Option<String>,
    /// The subject, one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

/// Why a message could not be sent: a short description and the cause.
#[derive(Debug, thiserror::Error)]
#[error("mail not sent: {reason}: {}", .source.to_string().escape_debug())]
pub struct MailError {
    reason: &'static str,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl MailError {
    /// A failure described by `reason` (e.g. `"timed out"`), caused by
    /// `source` (any error, or a message: `&str` and `String` convert).
    pub fn new(reason: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        MailError {
            reason,
            source: source.into(),
        }
    }

    /// The short description given at construction.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Delivers messages. Implement it over your mail provider.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends `mail` to `mail.to`.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Writes each message to the log as one `INFO` line instead of sending it,
/// e.g. `verification code kind=verification to="jo@example.com"
/// code=123456`: what it is, the address, and the code when it carries one.
/// For development; the example's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let kind = mail.kind.as_str();
        let what = match mail.kind {
            MailKind::Verification => "verification code",
            MailKind::PasswordReset => "password reset code",
            MailKind::EmailChangeCode => "e-mail change code",
            MailKind::EmailChangeNotice => "e-mail change notice",
            MailKind::PasswordChanged => "password change notice",
        };
        match mail.code.as_deref() {
            // Bare, so `code=123456` can be grepped; anything else is escaped.
            Some(code) if code.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                tracing::info!(target: "axum_authkit::mail", kind = %kind, to = ?mail.to, code = tracing::field::display(code), "{what}");
            }
            Some(code) => {
                tracing::info!(target: "axum_authkit::mail", kind = %kind, to = ?mail.to, code = ?code, "{what}");
            }
            None => {
                tracing::info!(target: "axum_authkit::mail", kind = %kind, to = ?mail.to, "{what}")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `LogMailer` writes for `mail`, through the usual fmt subscriber.
    async fn log_of(mail: &Mail) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        LogMailer.send(mail).await.unwrap();
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    fn mail(kind: MailKind, to: &str) -> Mail {
        let facts = MailFacts::new(to, "Jo")
            .code("123456", Duration::from_secs(900))
            .new_email("new@example.com");
        Templates::default().mail(kind, &facts)
    }

    #[tokio::test]
    async fn log_line_has_the_code_only_for_code_kinds() {
        for &kind in MailKind::ALL {
            let log = log_of(&mail(kind, "jo@example.com")).await;
            assert_eq!(log.lines().count(), 1, "{log}");
            assert!(log.contains(" INFO "), "{log}");
            assert!(log.contains(&format!("kind={}", kind.as_str())), "{log}");
            assert!(log.contains(r#"to="jo@example.com""#), "{log}");
            if kind.has_code() {
                assert!(log.contains(" code=123456"), "{log}");
            } else {
                assert!(!log.contains("code="), "{log}");
                assert!(!log.contains("123456"), "{log}");
            }
        }
    }

    #[tokio::test]
    async fn log_line_escapes_the_address() {
        let log = log_of(&mail(
            MailKind::Verification,
            "jo@example.com\nINFO forged code=000000",
        ))
        .await;
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains(r"jo@example.com\nINFO forged"), "{log}");
        assert!(
            log.contains("verification code kind=verification to="),
            "{log}"
        );
        let mut odd = mail(MailKind::Verification, "jo@example.com");
        odd.code = Some("12 34\n".into());
        let log = log_of(&odd).await;
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.contains(r#"code="12 34\n""#), "{log}");
    }

    #[test]
    fn mail_error_names_reason_and_cause() {
        let e = MailError::new("rejected", "550 no such user\r\nX");
        assert_eq!(e.reason(), "rejected");
        assert_eq!(
            e.to_string(),
            r"mail not sent: rejected: 550 no such user\r\nX"
        );
        assert!(StdError::source(&e).is_some());
    }
}
