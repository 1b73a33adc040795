//! [`AuthConfig`] and [`AuthBuilder`]: every setting, with safe defaults, and
//! the components an [`Auth`] is built from.
//!
//! | setting | default |
//! |---|---|
//! | access-token lifetime | 15 minutes |
//! | refresh-token lifetime (sliding) / sign-in lifetime (absolute) | 7 days / 30 days |
//! | reuse grace window | 10 s |
//! | clock leeway | 30 s |
//! | token size cap | 8 KiB |
//! | cookies | `access_token`, `refresh_token`; HttpOnly, Secure, SameSite=Lax, Path=/ |
//! | password | 12 to 128 characters, common list refused, argon2id m=19 MiB t=2 p=1 |
//! | verification code | 15 minutes, 5 attempts |
//! | JSON body limit | 16 KiB |
//! | rate limits | see [`RateLimits`] |

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::auth::{Auth, AuthInner, ClaimsFn};
use crate::cache::{CacheConfig, TokenCache};
use crate::captcha::{CaptchaVerifier, NoCaptcha};
use crate::claims::ExtraClaims;
use crate::cookies::CookieSettings;
use crate::csrf::CsrfGuard;
use crate::keys::{KeyError, KeySet, SigningKey};
use crate::mail::{LogMailer, Mailer};
use crate::password::{PasswordPolicy, Passwords};
use crate::rate_limit::{Limit, MemoryRateLimiter, RateLimiter};
use crate::refresh::{RefreshPolicy, RefreshTokens};
use crate::store::{RefreshStore, UserStore};
use crate::verification::{CodePolicy, Codes};
use crate::verify::{DEFAULT_MAX_TOKEN_BYTES, Verifier};

/// Why an [`Auth`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither `secret` nor `keys` was given.
    #[error("no signing key: call AuthBuilder::secret or AuthBuilder::keys")]
    MissingKeys,
    /// `keys` was given without `refresh_secret`.
    #[error("AuthBuilder::keys needs AuthBuilder::refresh_secret as well (at least 32 bytes)")]
    MissingRefreshSecret,
    /// No user store or no refresh store.
    #[error("no {0}: call AuthBuilder::store (or users / families)")]
    MissingStore(&'static str),
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// An allowed origin could not be parsed.
    #[error("invalid allowed origin: {0}")]
    Origin(#[from] tower_http::csrf::ConfigError),
}

/// Rate limits of the auth routes (fixed windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Failed sign-ins per login (default 5 per 15 minutes).
    pub signin_failures_per_login: Limit,
    /// Failed sign-ins per client address (default 50 per 15 minutes).
    pub signin_failures_per_ip: Limit,
    /// Sign-ups per client address (default 10 per hour).
    pub signups_per_ip: Limit,
    /// Verification attempts per user (default 20 per 15 minutes; each code
    /// also burns after its own attempt budget).
    pub verify_attempts_per_user: Limit,
    /// Verification e-mails per user (default 3 per 15 minutes).
    pub resends_per_user: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let min15 = Duration::from_secs(15 * 60);
        RateLimits {
            signin_failures_per_login: Limit::new(5, min15),
            signin_failures_per_ip: Limit::new(50, min15),
            signups_per_ip: Limit::new(10, Duration::from_secs(3600)),
            verify_attempts_per_user: Limit::new(20, min15),
            resends_per_user: Limit::new(3, min15),
        }
    }
}

/// The settings of an [`Auth`] (read them with [`Auth::config`]).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) access_ttl: Duration,
    pub(crate) refresh: RefreshPolicy,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) access_cookie: CookieSettings,
    pub(crate) refresh_cookie: CookieSettings,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) cache: CacheConfig,
    pub(crate) password: PasswordPolicy,
    pub(crate) codes: CodePolicy,
    pub(crate) limits: RateLimits,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) max_body_bytes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "axum-authkit".into(),
            audience: "axum-authkit".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh: RefreshPolicy::default(),
            leeway: Duration::from_secs(30),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            access_cookie: CookieSettings::new("access_token"),
            refresh_cookie: CookieSettings::new("refresh_token"),
            allowed_origins: Vec::new(),
            cache: CacheConfig::default(),
            password: PasswordPolicy::default(),
            codes: CodePolicy::default(),
            limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 16 * 1024,
        }
    }
}

impl AuthConfig {
    /// Access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }
    /// Refresh lifetimes and grace window.
    pub fn refresh(&self) -> &RefreshPolicy {
        &self.refresh
    }
    /// The access cookie's settings.
    pub fn access_cookie(&self) -> &CookieSettings {
        &self.access_cookie
    }
    /// The refresh cookie's settings.
    pub fn refresh_cookie(&self) -> &CookieSettings {
        &self.refresh_cookie
    }
    /// The rate limits.
    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }
    /// Proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[IpAddr] {
        &self.trusted_proxies
    }
    /// Largest JSON body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

/// Derives an independent 32-byte key for `label` from a master secret.
fn derive(master: &[u8], label: &str) -> [u8; 32] {
    match Hmac::<Sha256>::new_from_slice(master) {
        Ok(mut mac) => {
            mac.update(label.as_bytes());
            mac.finalize().into_bytes().into()
        }
        Err(_) => Sha256::digest([master, label.as_bytes()].concat()).into(),
    }
}

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
///     .issuer("https://example.com")
///     .cookie_secure(false) // local plain-HTTP development only
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct AuthBuilder<E = ()> {
    config: AuthConfig,
    keys: Option<KeySet>,
    master: Option<Vec<u8>>,
    refresh_secret: Option<Vec<u8>>,
    users: Option<Arc<dyn UserStore>>,
    families: Option<Arc<dyn RefreshStore>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaVerifier>,
    mailer: Arc<dyn Mailer>,
    extra: Option<ClaimsFn<E>>,
}

impl<E: ExtraClaims> Default for AuthBuilder<E> {
    fn default() -> Self {
        AuthBuilder {
            config: AuthConfig::default(),
            keys: None,
            master: None,
            refresh_secret: None,
            users: None,
            families: None,
            limiter: None,
            captcha: Arc::new(NoCaptcha),
            mailer: Arc::new(LogMailer),
            extra: None,
        }
    }
}

impl<E: ExtraClaims> AuthBuilder<E> {
    /// One master secret (at least 32 bytes) from which the HS256 signing key,
    /// the refresh-token key and the verification-code key are derived.
    /// Every instance sharing stores must use the same secret.
    pub fn secret(mut self, secret: &[u8]) -> Self {
        self.master = Some(secret.to_vec());
        self
    }

    /// Explicit signing and verification keys (with [`AuthBuilder::refresh_secret`]).
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The key that derives refresh-token successors and hashes verification
    /// codes (at least 32 bytes), when keys are set with [`AuthBuilder::keys`].
    pub fn refresh_secret(mut self, secret: &[u8]) -> Self {
        self.refresh_secret = Some(secret.to_vec());
        self
    }

    /// One store for users and refresh families.
    pub fn store<S: UserStore + RefreshStore>(mut self, store: Arc<S>) -> Self {
        self.users = Some(store.clone());
        self.families = Some(store);
        self
    }

    /// The user store.
    pub fn users(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// The refresh-family store.
    pub fn families(mut self, families: Arc<dyn RefreshStore>) -> Self {
        self.families = Some(families);
        self
    }

    /// The rate limiter (default: in memory).
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The captcha verifier (default: [`NoCaptcha`]).
    pub fn captcha(mut self, captcha: Arc<dyn CaptchaVerifier>) -> Self {
        self.captcha = captcha;
        self
    }

    /// The mailer (default: [`LogMailer`]).
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// Computes the app's own claims for a user at sign-in and refresh
    /// (default: `E::default()`).
    pub fn extra_claims(
        mut self,
        f: impl Fn(&crate::store::User) -> E + Send + Sync + 'static,
    ) -> Self {
        self.extra = Some(Arc::new(f));
        self
    }

    /// `iss` of minted tokens, required on verified ones.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.config.issuer = issuer.into();
        self
    }

    /// `aud` of minted tokens, required on verified ones.
    pub fn audience(mut self, audience: &str) -> Self {
        self.config.audience = audience.into();
        self
    }

    /// Access-token lifetime (default 15 minutes).
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.config.access_ttl = ttl;
        self
    }

    /// Refresh-token sliding lifetime (default 7 days).
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.config.refresh.token_ttl = ttl;
        self
    }

    /// Absolute lifetime of a sign-in (default 30 days).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.refresh.family_lifetime = lifetime;
        self
    }

    /// Grace window for concurrent refreshes (default 10 s).
    pub fn reuse_grace(mut self, grace: Duration) -> Self {
        self.config.refresh.reuse_grace = grace;
        self
    }

    /// Clock leeway for `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway = leeway;
        self
    }

    /// Token size cap in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.config.max_token_bytes = bytes;
        self
    }

    /// The access cookie's settings.
    pub fn access_cookie(mut self, cookie: CookieSettings) -> Self {
        self.config.access_cookie = cookie;
        self
    }

    /// The refresh cookie's settings.
    pub fn refresh_cookie(mut self, cookie: CookieSettings) -> Self {
        self.config.refresh_cookie = cookie;
        self
    }

    /// Sets `Secure` on both cookies; `false` only for plain-HTTP development.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.config.access_cookie = self.config.access_cookie.secure(secure);
        self.config.refresh_cookie = self.config.refresh_cookie.secure(secure);
        self
    }

    /// Other origins allowed to make cookie-authenticated unsafe requests
    /// (`https://app.example.com`).
    pub fn allowed_origins<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        origins: I,
    ) -> Self {
        self.config.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Verified-token cache bounds ([`CacheConfig::disabled`] turns it off).
    pub fn token_cache(mut self, cache: CacheConfig) -> Self {
        self.config.cache = cache;
        self
    }

    /// Password rules and hashing cost.
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.config.password = policy;
        self
    }

    /// Verification-code lifetime and attempts.
    pub fn code_policy(mut self, policy: CodePolicy) -> Self {
        self.config.codes = policy;
        self
    }

    /// Rate limits of the auth routes.
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` names the client (default:
    /// none; the connection's address is used).
    pub fn trusted_proxies<I: IntoIterator<Item = IpAddr>>(mut self, proxies: I) -> Self {
        self.config.trusted_proxies = proxies.into_iter().collect();
        self
    }

    /// Largest JSON body the routes accept (default 16 KiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    /// Checks everything and builds the [`Auth`].
    pub fn build(self) -> Result<Auth<E>, ConfigError> {
        let config = self.config;
        let invalid = |m: String| ConfigError::Invalid(m);
        config.access_cookie.validate().map_err(invalid)?;
        config.refresh_cookie.validate().map_err(invalid)?;
        if config.access_cookie.cookie_name() == config.refresh_cookie.cookie_name() {
            return Err(invalid("the two cookies need different names".into()));
        }
        if config.access_ttl.is_zero() || config.refresh.token_ttl.is_zero() {
            return Err(invalid("lifetimes must be positive".into()));
        }

        let (keys, refresh_secret) = match (self.keys, self.master) {
            (Some(keys), _) => (
                keys,
                self.refresh_secret
                    .ok_or(ConfigError::MissingRefreshSecret)?,
            ),
            (None, Some(master)) => {
                if master.len() < crate::keys::MIN_HS256_SECRET {
                    return Err(KeyError::SecretTooShort {
                        kid: "default".into(),
                        len: master.len(),
                    }
                    .into());
                }
                let signing = derive(&master, "axum-authkit/hs256");
                // The kid names the key without revealing it, and changes with it.
                let kid = format!("hs-{}", &hex(&Sha256::digest(signing))[..12]);
                let keys = KeySet::new(SigningKey::hs256(&kid, &signing)?);
                (keys, derive(&master, "axum-authkit/refresh").to_vec())
            }
            (None, None) => return Err(ConfigError::MissingKeys),
        };
        let refresh = RefreshTokens::new(&refresh_secret, config.refresh).map_err(invalid)?;
        let codes = Codes::new(
            &derive(&refresh_secret, "axum-authkit/verification-code"),
            config.codes,
        )
        .map_err(invalid)?;
        let verifier = Verifier::new(Arc::new(keys), &config.issuer, &config.audience)
            .with_leeway(config.leeway.as_secs())
            .with_max_len(config.max_token_bytes);
        let csrf = CsrfGuard::new(&config.allowed_origins)?;
        let passwords = Passwords::new(config.password.clone()).map_err(invalid)?;
        let users = self.users.ok_or(ConfigError::MissingStore("user store"))?;
        let families = self
            .families
            .ok_or(ConfigError::MissingStore("refresh store"))?;
        let limiter = self
            .limiter
            .unwrap_or_else(|| Arc::new(MemoryRateLimiter::default()));
        let extra = self.extra.unwrap_or_else(|| Arc::new(|_| E::default()));

        Ok(Auth::from_inner(AuthInner {
            cache: TokenCache::new(config.cache),
            config,
            verifier,
            refresh,
            codes,
            families,
            users,
            csrf,
            passwords,
            limiter,
            captcha: self.captcha,
            mailer: self.mailer,
            extra,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
