//! [`Auth`]: the one API of the crate. The layer, the extractors and the
//! router work through it, and an app calls the same methods from its own
//! code (a GraphQL resolver, a CLI, a test) and gets the same behaviour:
//! limits, captcha, equal-cost failures, revocation.
//!
//! | flow | method | file |
//! |---|---|---|
//! | sign up, sign in, delete, disable, purge | [`Auth::sign_up`], [`Auth::sign_in`], [`Auth::delete_account`], [`Auth::set_disabled`], [`Auth::purge_unverified`] | `auth/accounts.rs` |
//! | sessions: start, refresh, sign out, list, revoke | [`Auth::start_session`], [`Auth::refresh`], [`Auth::sign_out`], [`Auth::sign_out_everywhere`], [`Auth::sessions`], [`Auth::revoke_session`] | `auth/sessions.rs` |
//! | e-mail: verify, resend, change | [`Auth::verify_email`], [`Auth::resend_verification`], [`Auth::request_email_change`], [`Auth::confirm_email_change`] | `auth/email.rs` |
//! | password: reset, change | [`Auth::request_password_reset`], [`Auth::reset_password`], [`Auth::change_password`] | `auth/password.rs` |
//!
//! `Auth` is cheap to clone (one `Arc`).

mod accounts;
mod email;
mod password;
mod sessions;
mod sync;

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

pub use self::accounts::{Removal, UserRemoved};
pub use self::email::EmailConfirmed;
pub use self::sessions::SessionInfo;
use crate::captcha::{CaptchaError, CaptchaVerifier};
use crate::client::Client;
use crate::codes::Codes;
use crate::cross_site::CrossSite;
use crate::error::AuthError;
use crate::keys::KeySet;
use crate::limits::{Decision, Limit, RateLimiter};
use crate::mail::{Mailer, Templates};
use crate::password::Passwords;
use crate::session::refresh::RefreshTokens;
use crate::session::revocations::Revocations;
use crate::settings::Settings;
use crate::store::{Session, SessionStore, StoreError, User, UserStore};
use crate::time::{now_millis, now_secs};
use crate::token::cache::TokenCache;
use crate::token::claims::{AccessClaims, Audience, ExtraClaims};
use crate::token::{TokenError, Verifier};

/// A boxed future, as the hooks return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Computes the app's claims of a user when a token is minted.
pub(crate) type ClaimsHook<E> = Arc<dyn Fn(User) -> BoxFuture<Result<E, StoreError>> + Send + Sync>;

/// Hears that a user was removed.
pub(crate) type RemovedHook = Arc<dyn Fn(UserRemoved) -> BoxFuture<()> + Send + Sync>;

/// Everything an [`Auth`] is made of; filled by the builder.
pub(crate) struct Parts<E> {
    pub(crate) settings: Settings,
    pub(crate) keys: KeySet,
    pub(crate) refresh_secret: Vec<u8>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) limiter: Arc<dyn RateLimiter>,
    pub(crate) captcha: Arc<dyn CaptchaVerifier>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) templates: Templates,
    pub(crate) claims: ClaimsHook<E>,
    pub(crate) on_removed: Option<RemovedHook>,
}

struct Inner<E> {
    settings: Settings,
    verifier: Verifier,
    cache: TokenCache<E>,
    revocations: Revocations,
    refresh: RefreshTokens,
    codes: Codes,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    cross_site: CrossSite,
    passwords: Passwords,
    limiter: Arc<dyn RateLimiter>,
    captcha: Arc<dyn CaptchaVerifier>,
    mailer: Arc<dyn Mailer>,
    templates: Templates,
    claims: ClaimsHook<E>,
    on_removed: Option<RemovedHook>,
    /// The revocation sync task (`auth/sync.rs`), aborted with the last
    /// clone; set right after the `Arc` exists (the task holds a weak
    /// reference, which must be upgradable when it first runs).
    sync: std::sync::OnceLock<sync::SyncTask>,
}

/// Authentication for one app: keys, stores, settings, and every flow.
///
/// Build one with [`Auth::builder`]; mount [`Auth::router`] and
/// [`Auth::layer`]; call the flows directly where HTTP is not involved:
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use axum_authkit::{Auth, Client, store::MemoryStore};
///
/// let auth: Auth = Auth::builder()
///     .secret(b"a long random secret, at least 32 bytes")
///     .store(Arc::new(MemoryStore::new()))
///     .build()?;
///
/// let client = Client::trusted(); // the app's own code: no captcha, no per-address limits
/// let signed_up = auth
///     .sign_up(&client, "ada@example.com", "correct horse battery staple", "Ada")
///     .await?;
/// let tokens = auth
///     .sign_in(&client, "ada@example.com", "correct horse battery staple")
///     .await?;
/// assert_eq!(tokens.access.claims.sub, signed_up.user.id);
/// assert!(auth.verify(&tokens.access.token).is_ok());
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Auth<E = ()> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for Auth<E> {
    fn clone(&self) -> Self {
        Auth {
            inner: self.inner.clone(),
        }
    }
}

/// The parts the fuzz targets drive directly (see `crate::fuzzing`).
#[cfg(feature = "fuzzing")]
impl<E> Auth<E> {
    pub(crate) fn fuzz_parts(&self) -> (&Verifier, &RefreshTokens, &dyn SessionStore) {
        let inner = &*self.inner;
        (&inner.verifier, &inner.refresh, &*inner.sessions)
    }
}

impl<E> std::fmt::Debug for Auth<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("issuer", &self.inner.settings.issuer)
            .field("kid", &self.inner.verifier.keys().active_kid())
            .finish_non_exhaustive()
    }
}

/// An access token and its claims.
#[derive(Clone, Debug)]
pub struct AccessToken<E = ()> {
    /// The JWT (the `access_token` cookie, or a Bearer credential).
    pub token: String,
    /// What it says.
    pub claims: Arc<AccessClaims<E>>,
}

/// What a client holds for one session: an access token and the refresh
/// token that renews it.
#[derive(Clone)]
pub struct Tokens<E = ()> {
    /// The access token.
    pub access: AccessToken<E>,
    /// The opaque refresh token (the `refresh_token` cookie).
    pub refresh_token: String,
    /// The session, as stored.
    pub session: Session,
}

impl<E> std::fmt::Debug for Tokens<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`Auth::sign_up`]: the new user, signed in.
#[derive(Clone, Debug)]
pub struct SignedUp<E = ()> {
    /// The account as stored.
    pub user: User,
    /// Its first session.
    pub tokens: Tokens<E>,
}

impl<E: ExtraClaims> Auth<E> {
    pub(crate) fn from_parts(parts: Parts<E>) -> Result<Self, crate::error::ConfigError> {
        let Parts {
            settings,
            keys,
            refresh_secret,
            users,
            sessions,
            limiter,
            captcha,
            mailer,
            templates,
            claims,
            on_removed,
        } = parts;
        let verifier = Verifier::new(Arc::new(keys), &settings.issuer, &settings.audience)
            .with_leeway(settings.leeway.as_secs())
            .with_max_len(settings.max_token_bytes);
        let passwords = Passwords::new(settings.password.clone())
            .map_err(|e| crate::error::ConfigError::Invalid(e.to_string()))?;
        let inner = Arc::new(Inner {
            sync: std::sync::OnceLock::new(),
            cache: TokenCache::new(settings.cache),
            revocations: Revocations::default(),
            refresh: RefreshTokens::new(&refresh_secret, settings.session),
            codes: Codes::new(&crate::keys::code_key(&refresh_secret), settings.codes),
            cross_site: CrossSite::new(&settings.allowed_origins)?,
            settings,
            verifier,
            users,
            sessions,
            passwords,
            limiter,
            captcha,
            mailer,
            templates,
            claims,
            on_removed,
        });
        // A weak reference: the task must not keep the `Auth` alive.
        if let Some(task) = sync::spawn(Arc::downgrade(&inner), inner.sessions.clone()) {
            let _ = inner.sync.set(task);
        }
        Ok(Auth { inner })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The user store.
    pub fn users(&self) -> &dyn UserStore {
        &*self.inner.users
    }

    /// Verifies an access token as the layer does: through the verified-token
    /// cache, against the deny list of ended sessions.
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims<E>>, TokenError> {
        self.verify_at(token.as_bytes(), now_secs())
    }

    /// Takes bytes: a cache hit needs no UTF-8 check, the bytes are the key.
    #[inline]
    pub(crate) fn verify_at(
        &self,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<AccessClaims<E>>, TokenError> {
        let inner = &*self.inner;
        if let Some(claims) = inner.cache.get(token) {
            match inner.verifier.check_times(claims.exp, claims.nbf, now) {
                Ok(()) => return Ok(claims),
                Err(_) => inner.cache.remove(token),
            }
        }
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Malformed)?;
        let claims = Arc::new(inner.verifier.verify::<E>(token, now)?);
        // Insert first, then check: `end_sessions` writes the deny list before
        // it purges the cache, so a racing revocation never leaves this
        // token cached.
        inner.cache.insert(token, claims.clone());
        if inner.revocations.contains(&claims.sid) {
            inner.cache.remove(token.as_bytes());
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Mints an access token for `user` in session `sid`, with the app's
    /// claims from the hook.
    pub async fn access_token(&self, user: &User, sid: &str) -> Result<AccessToken<E>, AuthError> {
        let extra = (self.inner.claims)(user.clone()).await?;
        let now = now_secs();
        let ttl = i64::try_from(self.inner.settings.access_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let claims = AccessClaims {
            sub: user.id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            sid: sid.to_owned(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now,
            exp: now.saturating_add(ttl),
            nbf: None,
            iss: self.inner.verifier.issuer().to_owned(),
            aud: Audience::One(self.inner.verifier.audience().to_owned()),
            extra,
        };
        let token = self
            .inner
            .verifier
            .sign(&claims)
            .map_err(|_| AuthError::Internal("token signing failed"))?;
        Ok(AccessToken {
            token,
            claims: Arc::new(claims),
        })
    }

    /// `Set-Cookie` values that store a session's two tokens.
    pub fn session_cookies(&self, tokens: &Tokens<E>) -> [HeaderValue; 2] {
        let settings = &self.inner.settings;
        let refresh_left = tokens
            .session
            .expires_at
            .saturating_sub(now_millis())
            .max(0);
        [
            self.access_cookie(&tokens.access),
            settings.refresh_cookie.set(
                &tokens.refresh_token,
                Duration::from_millis(u64::try_from(refresh_left).unwrap_or(0)),
            ),
        ]
    }

    /// `Set-Cookie` value that stores an access token.
    pub fn access_cookie(&self, access: &AccessToken<E>) -> HeaderValue {
        let settings = &self.inner.settings;
        settings
            .access_cookie
            .set(&access.token, settings.access_ttl)
    }

    /// `Set-Cookie` values that clear both cookies.
    pub fn clear_cookies(&self) -> [HeaderValue; 2] {
        let settings = &self.inner.settings;
        [
            settings.access_cookie.clear(),
            settings.refresh_cookie.clear(),
        ]
    }

    /// The public verification keys as a JWKS document; HMAC secrets are
    /// never included.
    pub fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.inner.verifier.keys().jwks()
    }

    /// Deletes expired sessions, stale cache and deny-list entries, and
    /// unverified accounts past their time ([`Auth::purge_unverified`]).
    /// Run it periodically ([`Auth::spawn_purger`]).
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let now = now_secs();
        self.inner.cache.purge(now, self.inner.verifier.leeway());
        self.inner.revocations.purge(now);
        let sessions = self.inner.sessions.purge_expired(now_millis()).await?;
        let users = self.purge_unverified().await?;
        Ok(sessions.saturating_add(users as u64))
    }

    /// Loads the shared deny list now: every session ended on any instance
    /// whose access tokens may still be live. The background sync task does
    /// the same when the `Auth` is built, without blocking; await this once
    /// before serving so that a restarted instance refuses those tokens
    /// from its very first request. Returns how many entries are live.
    pub async fn load_revocations(&self) -> Result<usize, AuthError> {
        let denials = self.inner.sessions.denied(now_millis()).await?;
        self.inner.apply_denials(&denials);
        Ok(denials.len())
    }

    /// Runs [`Auth::purge_expired`] every `period` on the current runtime.
    pub fn spawn_purger(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match auth.purge_expired().await {
                    Ok(n) if n > 0 => tracing::debug!(purged = n, "expired records purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
                }
            }
        })
    }

    /// Number of tokens in the verified-token cache (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }

    // Shared steps of the flows.

    pub(crate) fn cross_site(&self) -> &CrossSite {
        &self.inner.cross_site
    }

    /// Asks the captcha verifier (skipped for trusted clients); fails closed.
    async fn check_captcha(&self, client: &Client) -> Result<(), AuthError> {
        if client.is_trusted() {
            return Ok(());
        }
        match self
            .inner
            .captcha
            .verify(client.captcha(), client.ip())
            .await
        {
            Ok(()) => Ok(()),
            Err(CaptchaError::Unavailable(_)) => Err(AuthError::CaptchaUnavailable),
            Err(_) => Err(AuthError::CaptchaFailed),
        }
    }

    /// Reserves one event under each `(key, limit)`, atomically per key; on
    /// the first refusal gives back what it took and answers `429`.
    async fn reserve(&self, keys: &[(String, Limit)]) -> Result<(), AuthError> {
        for (i, (key, limit)) in keys.iter().enumerate() {
            match self.inner.limiter.reserve(key, *limit).await {
                Ok(Decision::Allowed { .. }) => {}
                refused => {
                    self.release(&keys[..i]).await;
                    return match refused {
                        Ok(Decision::Limited { retry_after }) => {
                            tracing::info!(key = ?key, "rate limited");
                            crate::counters::rate_limited(key);
                            Err(AuthError::RateLimited { retry_after })
                        }
                        Err(e) => Err(e.into()),
                        Ok(Decision::Allowed { .. }) => Ok(()),
                    };
                }
            }
        }
        Ok(())
    }

    /// Gives reserved events back (after a success, or a failure that was
    /// not the client's); a store error only costs the client a slot.
    async fn release(&self, keys: &[(String, Limit)]) {
        for (key, _) in keys {
            if let Err(e) = self.inner.limiter.release(key).await {
                tracing::warn!(key = ?key, error = %e, "rate-limit release failed");
            }
        }
    }

    async fn user(&self, id: &str) -> Result<User, AuthError> {
        match self.inner.users.user_by_id(id).await? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(AuthError::MissingCredentials),
        }
    }
}

/// The claims type an [`Auth`] was built for, so an extractor of another type
/// can name the mismatch.
pub(crate) fn claims_type<E: Any>() -> (TypeId, &'static str) {
    (TypeId::of::<E>(), std::any::type_name::<E>())
}
