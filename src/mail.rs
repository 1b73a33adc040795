//! Mail (interim shape until the mail module lands).

use async_trait::async_trait;

/// What a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailKind {
    /// A code proving the account's address.
    Verification,
    /// A code for setting a new password.
    PasswordReset,
    /// A code sent to a new address.
    EmailChangeCode,
    /// A notice to the old address.
    EmailChangeNotice,
    /// A notice that the password changed.
    PasswordChanged,
}

/// A message ready to send.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Kind.
    pub kind: MailKind,
    /// Recipient address.
    pub to: String,
    /// Recipient name.
    pub name: String,
    /// The code, for code kinds.
    pub code: Option<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Delivers mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Facts a template may use.
#[derive(Clone, Debug, Default)]
pub struct MailFacts {
    /// Recipient name.
    pub name: String,
    /// Recipient address.
    pub email: String,
    /// Code.
    pub code: Option<String>,
    /// Minutes the code lives.
    pub minutes: u64,
    /// The new address (e-mail change notice).
    pub new_email: Option<String>,
}

/// Templates.
#[derive(Clone, Debug, Default)]
pub struct Templates;

impl Templates {
    /// Renders subject and body.
    pub fn render(&self, kind: MailKind, facts: &MailFacts) -> (String, String) {
        let code = facts.code.clone().unwrap_or_default();
        (format!("{kind:?}"), format!("{kind:?} {code}"))
    }
}

/// Logs mail.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        match &mail.code {
            Some(code) => {
                tracing::info!(target: "axum_authkit::mail", to = ?mail.to, kind = ?mail.kind, "mail code={code}")
            }
            None => tracing::info!(target: "axum_authkit::mail", to = ?mail.to, kind = ?mail.kind, "mail"),
        }
        Ok(())
    }
}
