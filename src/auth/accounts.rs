//! Accounts: sign up, sign in, delete, disable, and the purge of accounts
//! that never verified their address.

use super::{Auth, SignedUp, Tokens};
use crate::address::Address;
use crate::client::Client;
use crate::error::{AuthError, FieldErrors};
use crate::limits::Limit;
use crate::store::{CodePurpose, NewUser, StoreError, User};
use crate::time::now_millis;
use crate::token::claims::{AccessClaims, ExtraClaims};

/// Longest display name, in characters.
const MAX_NAME: usize = 150;
/// Accounts looked at per purge round.
const PURGE_BATCH: usize = 500;

/// Why a user was removed (see [`AuthBuilder::with_on_user_removed`](crate::AuthBuilder::with_on_user_removed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// The user deleted the account.
    Deleted,
    /// The address was never verified within the configured time.
    Purged,
}

/// A user is gone: the app's hook removes its own rows.
#[derive(Clone, Debug)]
pub struct UserRemoved {
    /// The account as it was.
    pub user: User,
    /// Why.
    pub removal: Removal,
}

/// Characters refused in names: C0/C1 controls and the bidirectional
/// controls that make text display differently from what it is.
pub(crate) fn has_forbidden_chars(s: &str) -> bool {
    s.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    })
}

fn field_error(errors: &mut FieldErrors, field: &'static str, message: impl Into<String>) {
    errors.entry(field).or_default().push(message.into());
}

impl<E: ExtraClaims> Auth<E> {
    /// Checks a new password against the policy; the messages, if any.
    pub(crate) fn password_problems(&self, password: &str) -> Vec<String> {
        self.inner.passwords.problems(password)
    }

    /// Creates an account, signs it in, and mails a code that verifies its
    /// address (a mail that fails is logged; the user can ask again).
    ///
    /// Validation errors name each field (`400 invalid_request`); then the
    /// per-network sign-up limit, the captcha, and `409 email_taken`.
    #[tracing::instrument(name = "auth.sign_up", skip_all, fields(user = tracing::field::Empty))]
    pub async fn sign_up(
        &self,
        client: &Client,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<SignedUp<E>, AuthError> {
        let mut errors = FieldErrors::new();
        let address = Address::parse(email)
            .map_err(|e| field_error(&mut errors, "email", e.to_string()))
            .ok();
        for problem in self.password_problems(password) {
            field_error(&mut errors, "password", problem);
        }
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME {
            field_error(
                &mut errors,
                "name",
                format!("Use 1 to {MAX_NAME} characters."),
            );
        } else if has_forbidden_chars(name) {
            field_error(&mut errors, "name", "Control characters are not allowed.");
        }
        let Some(address) = address.filter(|_| errors.is_empty()) else {
            return Err(AuthError::invalid(errors));
        };

        if let Some(net) = client.network() {
            let limit = self.inner.settings.limits.signups_per_ip;
            self.reserve(&[(format!("signup:ip:{net}"), limit)]).await?;
        }
        self.check_captcha(client).await?;
        let password_hash = self
            .inner
            .passwords
            .hash(password.to_owned(), client.network().as_deref())
            .await?;
        let user = match self
            .inner
            .users
            .create_user(NewUser {
                email: address.as_str().to_owned(),
                email_key: address.key().to_owned(),
                name: name.to_owned(),
                password_hash,
            })
            .await
        {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        tracing::Span::current().record("user", tracing::field::display(&user.id));
        tracing::info!(user = %user.id, "signed up");
        crate::counters::signup();
        self.send_code(&user, CodePurpose::VerifyEmail, None)
            .await?;
        let tokens = self.start_session(&user, client).await?;
        Ok(SignedUp { user, tokens })
    }

    /// Checks a login and password and starts a session.
    ///
    /// An unknown login and a wrong password give the same
    /// `401 invalid_credentials` after the same argon2 work. Each attempt is
    /// *reserved* under the per-login and per-network failure limits before
    /// any hashing, so concurrent guesses cannot walk past them; a success
    /// gives its reservations back. At a limit: `429` with `Retry-After`.
    #[tracing::instrument(name = "auth.sign_in", skip_all, fields(user = tracing::field::Empty))]
    pub async fn sign_in(
        &self,
        client: &Client,
        login: &str,
        password: &str,
    ) -> Result<Tokens<E>, AuthError> {
        let key = crate::address::key_of(login);
        let checked = self.check_password(client, &key, password, true).await;
        crate::counters::signin(match &checked {
            Ok(_) => "success",
            Err(AuthError::RateLimited { .. }) => "rate_limited",
            Err(_) => "failure",
        });
        let user = checked?;
        tracing::Span::current().record("user", tracing::field::display(&user.id));
        self.start_session(&user, client).await
    }

    /// The limits a password check reserves: per login, and per network for
    /// untrusted clients.
    fn password_limits(&self, client: &Client, key: &str) -> Vec<(String, Limit)> {
        let limits = &self.inner.settings.limits;
        let mut keys = vec![(
            format!("signin:login:{key}"),
            limits.signin_failures_per_login,
        )];
        if let Some(net) = client.network() {
            keys.push((format!("signin:ip:{net}"), limits.signin_failures_per_ip));
        }
        keys
    }

    /// The password check of sign-in, change-password and delete-account:
    /// reserve, captcha (when asked), equal-cost argon2, then keep the
    /// reservations on a wrong password and give them back otherwise.
    pub(super) async fn check_password(
        &self,
        client: &Client,
        email_key: &str,
        password: &str,
        captcha: bool,
    ) -> Result<User, AuthError> {
        let limits = self.password_limits(client, email_key);
        self.reserve(&limits).await?;
        let outcome = self
            .evaluate_password(client, email_key, password, captcha)
            .await;
        match &outcome {
            Err(AuthError::InvalidCredentials) => {
                tracing::info!(login = ?email_key, "wrong password");
            }
            Ok(_) => {
                // The login's failures are forgiven; the network's slot is returned.
                if let Err(e) = self.inner.limiter.reset(&limits[0].0).await {
                    tracing::warn!(error = %e, "rate-limit reset failed");
                }
                self.release(&limits[1..]).await;
            }
            Err(_) => self.release(&limits).await,
        }
        outcome
    }

    async fn evaluate_password(
        &self,
        client: &Client,
        email_key: &str,
        password: &str,
        captcha: bool,
    ) -> Result<User, AuthError> {
        if captcha {
            self.check_captcha(client).await?;
        }
        let user = self.inner.users.user_by_email(email_key).await?;
        let verdict = self
            .inner
            .passwords
            .verify(
                password.to_owned(),
                user.as_ref().map(|u| u.password_hash.clone()),
                client.network().as_deref(),
            )
            .await?;
        let user = match user {
            Some(user) if verdict.ok && !user.disabled => user,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if verdict.needs_rehash {
            match self
                .inner
                .passwords
                .hash(password.to_owned(), client.network().as_deref())
                .await
            {
                Ok(hash) => {
                    if let Err(e) = self.inner.users.set_password_hash(&user.id, &hash).await {
                        tracing::warn!(user = %user.id, error = %e, "password rehash not stored");
                    }
                }
                Err(e) => tracing::warn!(user = %user.id, error = %e, "password rehash failed"),
            }
        }
        Ok(user)
    }

    /// The caller's password, checked like a sign-in (limits included);
    /// a wrong one is `400 invalid_password` on `field`.
    pub(super) async fn confirm_password(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        password: &str,
        field: &'static str,
    ) -> Result<User, AuthError> {
        let user = self.user(&caller.sub).await?;
        let key = crate::address::key_of(&user.email);
        match self.check_password(client, &key, password, false).await {
            Err(AuthError::InvalidCredentials) => Err(AuthError::InvalidPassword(field)),
            other => other,
        }
    }

    /// Deletes the caller's account after checking its password: the user,
    /// its codes and its sessions go (every session ends at once, through
    /// the same path as a logout), the app's removal hook runs, and the
    /// address can sign up again.
    #[tracing::instrument(name = "auth.delete_account", skip_all, fields(user = %caller.sub, sid = %caller.sid))]
    pub async fn delete_account(
        &self,
        caller: &AccessClaims<E>,
        client: &Client,
        password: &str,
    ) -> Result<(), AuthError> {
        let user = self
            .confirm_password(caller, client, password, "password")
            .await?;
        self.sign_out_everywhere(&user.id).await?;
        if self.inner.users.delete_user(&user.id).await? {
            tracing::info!(user = %user.id, "account deleted");
            self.removed(user, Removal::Deleted).await;
        }
        Ok(())
    }

    /// Disables (or enables) a user. Disabling ends every session at once;
    /// a disabled user can neither sign in nor refresh.
    #[tracing::instrument(name = "auth.set_disabled", skip_all, fields(user = %user_id))]
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<(), AuthError> {
        self.inner.users.set_disabled(user_id, disabled).await?;
        if disabled {
            self.sign_out_everywhere(user_id).await?;
        }
        tracing::info!(user = %user_id, disabled, "user disabled flag set");
        Ok(())
    }

    /// Deletes accounts whose address was not verified within
    /// [`Settings::unverified_ttl`](crate::Settings::unverified_ttl) (so an
    /// address cannot be squatted forever), except those with a live
    /// session. Returns how many went. [`Auth::purge_expired`] calls it.
    pub async fn purge_unverified(&self) -> Result<usize, AuthError> {
        let now = now_millis();
        let ttl = i64::try_from(self.inner.settings.unverified_ttl.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(ttl);
        let mut purged = 0;
        for user in self
            .inner
            .users
            .unverified_users(cutoff, PURGE_BATCH)
            .await?
        {
            if !self
                .inner
                .sessions
                .user_sessions(&user.id, now)
                .await?
                .is_empty()
            {
                continue;
            }
            if self
                .inner
                .users
                .delete_unverified_user(&user.id, cutoff)
                .await?
            {
                tracing::info!(user = %user.id, "unverified account purged");
                purged += 1;
                self.removed(user, Removal::Purged).await;
            }
        }
        Ok(purged)
    }

    async fn removed(&self, user: User, removal: Removal) {
        if let Some(hook) = &self.inner.on_removed {
            hook(UserRemoved { user, removal }).await;
        }
    }
}
