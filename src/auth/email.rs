//! E-mail: verify the address, resend the code, change the address — and
//! the mail and code steps the other flows share.

use super::{AccessToken, Auth};
use crate::address::Address;
use crate::client::Client;
use crate::codes::Wrong;
use crate::error::AuthError;
use crate::mail::{MailFacts, MailKind};
use crate::store::{Code, CodePurpose, StoreError, User};
use crate::time::now_millis;
use crate::token::claims::{AccessClaims, ExtraClaims};

/// What became of a mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// The mailer took it.
    Yes,
    /// Not sent: the address reached its hourly cap. Routes answer as if it
    /// had gone, so the cap reveals nothing.
    Capped,
    /// The mailer failed (logged).
    Failed,
}

/// The outcome of a flow that changes the address the tokens carry.
#[derive(Clone, Debug)]
pub struct EmailConfirmed<E = ()> {
    /// The account as stored now.
    pub user: User,
    /// A fresh access token for the caller's session, carrying the address.
    pub access: AccessToken<E>,
}

impl<E: ExtraClaims> Auth<E> {
    /// Checks the code mailed to the caller's address and marks the address
    /// verified; answers with a fresh access token whose claims say so. An
    /// already verified caller gets the same answer without a code check.
    #[tracing::instrument(name = "auth.verify_email", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn verify_email(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        code: &str,
    ) -> Result<EmailConfirmed<E>, AuthError> {
        let mut user = self.user(&caller.sub).await?;
        if !user.email_verified {
            self.take_code(&user, CodePurpose::VerifyEmail, client, code)
                .await?;
            self.inner.users.mark_email_verified(&user.id).await?;
            user.email_verified = true;
            tracing::info!(user = %user.id, "e-mail verified");
        }
        let access = self.access_token(&user, &caller.sid).await?;
        Ok(EmailConfirmed { user, access })
    }

    /// Mails the caller a new verification code (replacing the pending one),
    /// within the per-user limit; `503 mail_unavailable` when the mailer
    /// fails. Nothing happens for a verified address.
    #[tracing::instrument(name = "auth.resend_verification", skip_all, fields(user = %caller.sub))]
    pub async fn resend_verification(&self, caller: &AccessClaims<E>) -> Result<(), AuthError> {
        let user = self.user(&caller.sub).await?;
        if user.email_verified {
            return Ok(());
        }
        self.limit_code_requests(&user.id).await?;
        match self
            .send_code(&user, CodePurpose::VerifyEmail, None)
            .await?
        {
            Sent::Failed => Err(AuthError::MailUnavailable),
            Sent::Yes | Sent::Capped => Ok(()),
        }
    }

    /// First step of an address change: checks the caller's password (limited
    /// like sign-in failures), then mails a code to `new_email` and a notice
    /// (no code) to the current address. Nothing changes until
    /// [`Auth::confirm_email_change`].
    #[tracing::instrument(name = "auth.request_email_change", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn request_email_change(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        new_email: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let address =
            Address::parse(new_email).map_err(|e| AuthError::field("new_email", e.to_string()))?;
        let user = self
            .confirm_password(caller, client, password, "password")
            .await?;
        if self
            .inner
            .users
            .user_by_email(address.key())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        self.limit_code_requests(&user.id).await?;
        let sent = self
            .send_code(
                &user,
                CodePurpose::ChangeEmail,
                Some(address.as_str().to_owned()),
            )
            .await?;
        self.send_notice(
            &user,
            MailKind::EmailChangeNotice,
            Some(address.as_str().to_owned()),
        )
        .await;
        match sent {
            Sent::Failed => Err(AuthError::MailUnavailable),
            Sent::Yes | Sent::Capped => Ok(()),
        }
    }

    /// Second step of an address change: the code that went to the new
    /// address. The address must still be free (`409 email_taken`); it
    /// becomes the account's, verified. Answers with a fresh access token
    /// carrying it; other sessions continue and get it at their next refresh.
    #[tracing::instrument(name = "auth.confirm_email_change", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn confirm_email_change(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        code: &str,
    ) -> Result<EmailConfirmed<E>, AuthError> {
        let mut user = self.user(&caller.sub).await?;
        let taken = self
            .take_code(&user, CodePurpose::ChangeEmail, client, code)
            .await?;
        let address = taken
            .new_email
            .as_deref()
            .and_then(|e| Address::parse(e).ok())
            .ok_or(AuthError::InvalidCode)?;
        match self
            .inner
            .users
            .change_email(&user.id, address.as_str(), address.key())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user = %user.id, "e-mail changed");
        user.email = address.as_str().to_owned();
        user.email_verified = true;
        let access = self.access_token(&user, &caller.sid).await?;
        Ok(EmailConfirmed { user, access })
    }

    /// The code steps every confirm shares: the daily cap on wrong codes per
    /// user and client network (reserved before the check, given back on
    /// success), then [`Codes::check`](crate::codes::Codes::check).
    pub(super) async fn take_code(
        &self,
        user: &User,
        purpose: CodePurpose,
        client: &Client,
        code: &str,
    ) -> Result<Code, AuthError> {
        let site = client.site().unwrap_or_else(|| "local".to_owned());
        let cap = [(
            format!("codes:wrong:{}:{site}", user.id),
            self.inner.settings.limits.wrong_codes_per_user,
        )];
        self.reserve(&cap).await?;
        let checked = self
            .inner
            .codes
            .check(&*self.inner.users, &user.id, purpose, code, now_millis())
            .await;
        match checked {
            Ok(Ok(taken)) => {
                self.release(&cap).await;
                Ok(taken)
            }
            Ok(Err(Wrong::Invalid)) => Err(AuthError::InvalidCode),
            Ok(Err(Wrong::Burned)) => Err(AuthError::TooManyAttempts),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn limit_code_requests(&self, user_id: &str) -> Result<(), AuthError> {
        let limit = self.inner.settings.limits.code_requests_per_user;
        self.reserve(&[(format!("codes:sent:{user_id}"), limit)])
            .await
    }

    /// Replaces `user`'s code for `purpose` with a fresh one and mails it
    /// (to `new_email` for an address change). The stored code stands
    /// whatever the mail does.
    pub(super) async fn send_code(
        &self,
        user: &User,
        purpose: CodePurpose,
        new_email: Option<String>,
    ) -> Result<Sent, AuthError> {
        let (digits, record) =
            self.inner
                .codes
                .generate(&user.id, purpose, new_email.clone(), now_millis());
        self.inner
            .users
            .put_code(&user.id, purpose, &record)
            .await?;
        let kind = match purpose {
            CodePurpose::VerifyEmail => MailKind::Verification,
            CodePurpose::ResetPassword => MailKind::PasswordReset,
            _ => MailKind::EmailChangeCode,
        };
        let to = new_email.as_deref().unwrap_or(&user.email);
        Ok(self
            .mail(user, kind, to, Some(digits), new_email.clone())
            .await)
    }

    /// Mails a notice without a code to the account's address.
    pub(super) async fn send_notice(&self, user: &User, kind: MailKind, new_email: Option<String>) {
        self.mail(user, kind, &user.email, None, new_email).await;
    }

    /// Renders and sends one mail, within the per-address hourly cap.
    async fn mail(
        &self,
        user: &User,
        kind: MailKind,
        to: &str,
        code: Option<String>,
        new_email: Option<String>,
    ) -> Sent {
        let cap = [(
            format!("mail:to:{}", crate::address::key_of(to)),
            self.inner.settings.limits.mails_per_address,
        )];
        match self.reserve(&cap).await {
            Ok(()) => {}
            Err(AuthError::RateLimited { .. }) => {
                tracing::warn!(user = %user.id, kind = ?kind, "mail cap reached for the address; not sent");
                crate::counters::mail(kind.as_str(), "capped");
                return Sent::Capped;
            }
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "mail cap unavailable; not sent");
                crate::counters::mail(kind.as_str(), "failed");
                return Sent::Failed;
            }
        }
        let mut facts = MailFacts::new(to, &user.name);
        if let Some(code) = &code {
            facts = facts.code(code, self.inner.codes.ttl());
        }
        if let Some(new_email) = &new_email {
            facts = facts.new_email(new_email);
        }
        let mail = self.inner.templates.mail(kind, &facts);
        match self.inner.mailer.send(&mail).await {
            Ok(()) => {
                crate::counters::mail(kind.as_str(), "sent");
                Sent::Yes
            }
            Err(e) => {
                crate::counters::mail(kind.as_str(), "failed");
                tracing::warn!(user = %user.id, kind = ?kind, error = %e, "mail not sent");
                Sent::Failed
            }
        }
    }
}
