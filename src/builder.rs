//! [`AuthBuilder`]: wires keys, stores, components and [`Settings`] into an
//! [`Auth`]. The only place that knows every part.
//!
//! Required: keys ([`AuthBuilder::secret`], or [`AuthBuilder::keys`] with
//! [`AuthBuilder::refresh_secret`]) and stores ([`AuthBuilder::store`], or
//! [`AuthBuilder::users`] and [`AuthBuilder::sessions`]). Every other step is
//! optional and named `with_*`.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Auth, ClaimsHook, Parts, RemovedHook, UserRemoved};
use crate::captcha::{CaptchaVerifier, NoCaptcha};
use crate::cookies::CookieSettings;
use crate::error::ConfigError;
use crate::keys::KeySet;
use crate::limits::{MemoryRateLimiter, RateLimiter};
use crate::mail::{LogMailer, Mailer, Templates};
use crate::password::PasswordSettings;
use crate::settings::{CacheSettings, CodeSettings, LimitSettings, SessionSettings, Settings};
use crate::store::{SessionStore, StoreError, User, UserStore};
use crate::token::claims::ExtraClaims;

/// Builds an [`Auth`]: keys, stores, components and settings.
///
/// ```
/// # async fn demo() -> Result<(), axum_authkit::ConfigError> {
/// use std::sync::Arc;
/// use axum_authkit::{Auth, store::MemoryStore};
///
/// let auth: Auth = Auth::builder()
///     .secret(b"a long random secret, at least 32 bytes")
///     .store(Arc::new(MemoryStore::new()))
///     .with_issuer("https://example.com")
///     .with_cookie_secure(false) // local plain-HTTP development only
///     .build()?;
/// # Ok(()) }
/// ```
///
/// App claims: [`AuthBuilder::with_claims`] turns an `AuthBuilder<()>` into
/// an `AuthBuilder<E>` whose tokens carry `E`, computed by an async hook
/// whenever a token is minted (sign-in and refresh), so the claims can come
/// from the app's own database:
///
/// ```
/// # async fn demo() -> Result<(), axum_authkit::ConfigError> {
/// use std::sync::Arc;
/// use axum_authkit::{Auth, store::{MemoryStore, StoreError, User}};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, Default, Serialize, Deserialize)]
/// struct Roles {
///     roles: Vec<String>,
/// }
///
/// async fn roles_of(user: User) -> Result<Roles, StoreError> {
///     // Look the user up in your own tables, by `user.id`.
///     Ok(Roles { roles: vec!["reader".into()] })
/// }
///
/// let auth: Auth<Roles> = Auth::builder()
///     .secret(b"a long random secret, at least 32 bytes")
///     .store(Arc::new(MemoryStore::new()))
///     .with_claims(roles_of)
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct AuthBuilder<E = ()> {
    settings: Settings,
    keys: Option<KeySet>,
    master: Option<Vec<u8>>,
    refresh_secret: Option<Vec<u8>>,
    users: Option<Arc<dyn UserStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaVerifier>,
    mailer: Arc<dyn Mailer>,
    templates: Templates,
    claims: ClaimsHook<E>,
    on_removed: Option<RemovedHook>,
}

impl Auth<()> {
    /// A builder with default settings and no app claims.
    pub fn builder() -> AuthBuilder<()> {
        AuthBuilder {
            settings: Settings::default(),
            keys: None,
            master: None,
            refresh_secret: None,
            users: None,
            sessions: None,
            limiter: None,
            captcha: Arc::new(NoCaptcha),
            mailer: Arc::new(LogMailer),
            templates: Templates::default(),
            claims: Arc::new(|_| Box::pin(async { Ok(()) })),
            on_removed: None,
        }
    }
}

impl<E: ExtraClaims> AuthBuilder<E> {
    /// One master secret (at least 32 bytes) from which the HS256 signing
    /// key, the refresh-token key and the one-time-code key are derived.
    /// Every instance sharing stores must use the same secret.
    pub fn secret(mut self, secret: &[u8]) -> Self {
        self.master = Some(secret.to_vec());
        self
    }

    /// Explicit signing and verification keys (with
    /// [`AuthBuilder::refresh_secret`]): asymmetric keys, or a rolling key
    /// rotation.
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The key behind refresh-token successors and one-time-code hashes (at
    /// least 32 bytes): required with [`AuthBuilder::keys`]; with
    /// [`AuthBuilder::secret`] it replaces the one derived from the secret.
    /// Kept apart from the signing keys, so a key rotation leaves sessions
    /// and codes untouched.
    pub fn refresh_secret(mut self, secret: &[u8]) -> Self {
        self.refresh_secret = Some(secret.to_vec());
        self
    }

    /// One store for users and sessions.
    pub fn store<S: UserStore + SessionStore>(mut self, store: Arc<S>) -> Self {
        self.users = Some(store.clone());
        self.sessions = Some(store);
        self
    }

    /// The user store.
    pub fn users(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// The session store.
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The rate limiter (default: in memory, per process; use a shared one
    /// when several instances serve the app).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The captcha verifier (default: [`NoCaptcha`], which accepts all).
    pub fn with_captcha(mut self, captcha: Arc<dyn CaptchaVerifier>) -> Self {
        self.captcha = captcha;
        self
    }

    /// The mailer (default: [`LogMailer`], which writes each mail to the log).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// The plain-text mail templates (default: [`Templates::default`]).
    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// App claims `C`, computed by `hook` whenever a token is minted (sign-in
    /// and refresh); a hook error answers `503 store_unavailable`. See the
    /// type's docs for an example.
    pub fn with_claims<C, F, Fut>(self, hook: F) -> AuthBuilder<C>
    where
        C: ExtraClaims,
        F: Fn(User) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, StoreError>> + Send + 'static,
    {
        let claims: ClaimsHook<C> = Arc::new(move |user| Box::pin(hook(user)));
        AuthBuilder {
            settings: self.settings,
            keys: self.keys,
            master: self.master,
            refresh_secret: self.refresh_secret,
            users: self.users,
            sessions: self.sessions,
            limiter: self.limiter,
            captcha: self.captcha,
            mailer: self.mailer,
            templates: self.templates,
            claims,
            on_removed: self.on_removed,
        }
    }

    /// Runs `hook` after a user is deleted or purged, so the app can remove
    /// its own rows for that user.
    pub fn with_on_user_removed<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(UserRemoved) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_removed = Some(Arc::new(move |removed| Box::pin(hook(removed))));
        self
    }

    /// `iss` of minted tokens, required on verified ones.
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.settings.issuer = issuer.into();
        self
    }

    /// `aud` of minted tokens, required on verified ones.
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.settings.audience = audience.into();
        self
    }

    /// Access-token lifetime (default 15 minutes).
    pub fn with_access_ttl(mut self, ttl: Duration) -> Self {
        self.settings.access_ttl = ttl;
        self
    }

    /// Session and refresh-token lifetimes, and the reuse grace window.
    pub fn with_session_settings(mut self, session: SessionSettings) -> Self {
        self.settings.session = session;
        self
    }

    /// Refresh-token sliding lifetime (default 7 days).
    pub fn with_refresh_ttl(mut self, ttl: Duration) -> Self {
        self.settings.session.refresh_ttl = ttl;
        self
    }

    /// Clock leeway for `exp` and `nbf` (default 30 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = leeway;
        self
    }

    /// Token size cap in bytes (default 8 KiB).
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_token_bytes = bytes;
        self
    }

    /// The access cookie.
    pub fn with_access_cookie(mut self, cookie: CookieSettings) -> Self {
        self.settings.access_cookie = cookie;
        self
    }

    /// The refresh cookie.
    pub fn with_refresh_cookie(mut self, cookie: CookieSettings) -> Self {
        self.settings.refresh_cookie = cookie;
        self
    }

    /// Sets `Secure` on both cookies; `false` only for plain-HTTP development.
    pub fn with_cookie_secure(mut self, secure: bool) -> Self {
        self.settings.access_cookie = self.settings.access_cookie.secure(secure);
        self.settings.refresh_cookie = self.settings.refresh_cookie.secure(secure);
        self
    }

    /// Origins of browser apps on other origins (`https://app.example.com`)
    /// trusted for cookie-authenticated unsafe requests.
    pub fn with_allowed_origins<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        origins: I,
    ) -> Self {
        self.settings.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Verified-token cache bounds ([`CacheSettings::disabled`] turns it off).
    pub fn with_token_cache(mut self, cache: CacheSettings) -> Self {
        self.settings.cache = cache;
        self
    }

    /// Password rules and hashing cost.
    pub fn with_password_settings(mut self, policy: PasswordSettings) -> Self {
        self.settings.password = policy;
        self
    }

    /// One-time code lifetime and tries.
    pub fn with_code_settings(mut self, codes: CodeSettings) -> Self {
        self.settings.codes = codes;
        self
    }

    /// Rate limits of the flows.
    pub fn with_limits(mut self, limits: LimitSettings) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` names the client (default:
    /// none; the connection's address is used).
    pub fn with_trusted_proxies<I: IntoIterator<Item = IpAddr>>(mut self, proxies: I) -> Self {
        self.settings.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Largest JSON body the routes accept (default 16 KiB).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_body_bytes = bytes;
        self
    }

    /// How long an account may stay unverified before
    /// [`Auth::purge_unverified`] removes it (default 7 days).
    pub fn with_unverified_ttl(mut self, ttl: Duration) -> Self {
        self.settings.unverified_ttl = ttl;
        self
    }

    /// Hands tokens over in the JSON bodies of the routes that start or renew
    /// a session, besides the cookies, and accepts a refresh token in the
    /// body of refresh and logout (default off). For native clients and
    /// browser apps on another site, which cannot use HttpOnly cookies; a
    /// request that carries its token in the body rides on no cookie, so
    /// the cross-site rule does not apply to it.
    pub fn with_tokens_in_body(mut self, on: bool) -> Self {
        self.settings.tokens_in_body = on;
        self
    }

    /// Checks everything and builds the [`Auth`].
    pub fn build(self) -> Result<Auth<E>, ConfigError> {
        let settings = self.settings;
        let invalid = |m: String| ConfigError::Invalid(m);
        settings.access_cookie.validate()?;
        settings.refresh_cookie.validate()?;
        if settings.access_cookie.cookie_name() == settings.refresh_cookie.cookie_name() {
            return Err(invalid("the two cookies need different names".into()));
        }
        if settings.access_ttl.is_zero() || settings.session.refresh_ttl.is_zero() {
            return Err(invalid("lifetimes must be positive".into()));
        }
        let (keys, refresh_secret) = match (self.keys, self.master) {
            (Some(keys), _) => {
                let secret = self
                    .refresh_secret
                    .ok_or(ConfigError::MissingRefreshSecret)?;
                if secret.len() < 32 {
                    return Err(ConfigError::RefreshSecretTooShort(secret.len()));
                }
                (keys, secret)
            }
            (None, Some(master)) => {
                let (keys, derived) = crate::keys::from_master(&master)?;
                let secret = self.refresh_secret.unwrap_or_else(|| derived.to_vec());
                if secret.len() < 32 {
                    return Err(ConfigError::RefreshSecretTooShort(secret.len()));
                }
                (keys, secret)
            }
            (None, None) => return Err(ConfigError::MissingKeys),
        };
        Auth::from_parts(Parts {
            keys,
            refresh_secret,
            users: self.users.ok_or(ConfigError::MissingStore("user store"))?,
            sessions: self
                .sessions
                .ok_or(ConfigError::MissingStore("session store"))?,
            limiter: self
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::default())),
            captcha: self.captcha,
            mailer: self.mailer,
            templates: self.templates,
            claims: self.claims,
            on_removed: self.on_removed,
            settings,
        })
    }
}
