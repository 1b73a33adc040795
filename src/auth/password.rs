//! Passwords: reset with a mailed code, and change with the current one.
//! Both end every other session by default and send a notice.

use super::{Auth, Tokens};
use crate::address::Address;
use crate::client::Client;
use crate::error::AuthError;
use crate::mail::MailKind;
use crate::store::CodePurpose;
use crate::token::claims::{AccessClaims, ExtraClaims};

impl<E: ExtraClaims> Auth<E> {
    /// Starts a password reset for `email`. The answer is the same, and
    /// comes as fast, whether or not the address has an account: after the
    /// syntax check, the per-network limit and the captcha, the lookup, the
    /// code and the mail run in a task of their own, off the request path.
    #[tracing::instrument(name = "auth.request_password_reset", skip_all)]
    pub async fn request_password_reset(
        &self,
        client: &Client,
        email: &str,
    ) -> Result<(), AuthError> {
        let address =
            Address::parse(email).map_err(|e| AuthError::field("email", e.to_string()))?;
        if let Some(net) = client.network() {
            let limit = self.inner.settings.limits.resets_per_ip;
            self.reserve(&[(format!("reset:ip:{net}"), limit)]).await?;
        }
        self.check_captcha(client).await?;
        let auth = self.clone();
        tokio::spawn(async move {
            if let Err(e) = auth.mail_reset_code(address.key()).await {
                tracing::warn!(error = %e, "password reset mail not sent");
            }
        });
        Ok(())
    }

    async fn mail_reset_code(&self, key: &str) -> Result<(), AuthError> {
        let Some(user) = self.inner.users.user_by_email(key).await? else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        self.limit_code_requests(&user.id).await?;
        self.send_code(&user, CodePurpose::ResetPassword, None)
            .await?;
        Ok(())
    }

    /// Sets a new password with the mailed code, then: every earlier session
    /// of the user ends, the address counts as verified (the code proved the
    /// mailbox), a notice goes out, and a new session starts. The password
    /// rules are checked before the code, so a bad password costs no try. An
    /// unknown address gets the same `400 invalid_code` as a wrong code.
    #[tracing::instrument(name = "auth.reset_password", skip_all, fields(user = tracing::field::Empty))]
    pub async fn reset_password(
        &self,
        client: &Client,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<Tokens<E>, AuthError> {
        self.check_new_password(new_password)?;
        let key = crate::address::key_of(email);
        let user = match self.inner.users.user_by_email(&key).await? {
            Some(user) if !user.disabled => user,
            _ => return Err(AuthError::InvalidCode),
        };
        tracing::Span::current().record("user", tracing::field::display(&user.id));
        self.take_code(&user, CodePurpose::ResetPassword, client, code)
            .await?;
        let hash = self
            .inner
            .passwords
            .hash(new_password.to_owned(), client.network().as_deref())
            .await?;
        self.inner.users.set_password_hash(&user.id, &hash).await?;
        self.inner.users.mark_email_verified(&user.id).await?;
        self.end_user_sessions(&user.id, None).await?;
        tracing::info!(user = %user.id, "password reset");
        self.send_notice(&user, MailKind::PasswordChanged, None)
            .await;
        let user = self.user(&user.id).await?;
        self.start_session(&user, client).await
    }

    /// Changes the caller's password after checking the current one (wrong
    /// ones are limited like sign-in failures). The caller's session
    /// continues with new tokens; every other session ends; a notice goes
    /// out.
    #[tracing::instrument(name = "auth.change_password", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn change_password(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        current_password: &str,
        new_password: &str,
    ) -> Result<Tokens<E>, AuthError> {
        self.check_new_password(new_password)?;
        let user = self
            .confirm_password(caller, client, current_password, "current_password")
            .await?;
        let hash = self
            .inner
            .passwords
            .hash(new_password.to_owned(), client.network().as_deref())
            .await?;
        self.inner.users.set_password_hash(&user.id, &hash).await?;
        self.end_user_sessions(&user.id, Some(&caller.sid)).await?;
        tracing::info!(user = %user.id, "password changed");
        self.send_notice(&user, MailKind::PasswordChanged, None)
            .await;
        self.renew_session(&user, caller).await
    }

    fn check_new_password(&self, password: &str) -> Result<(), AuthError> {
        let problems = self.password_problems(password);
        if problems.is_empty() {
            return Ok(());
        }
        let mut errors = crate::error::FieldErrors::new();
        errors.insert("new_password", problems);
        Err(AuthError::invalid(errors))
    }
}
