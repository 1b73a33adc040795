//! [`Settings`]: every tunable of an [`Auth`](crate::Auth), as plain data with
//! safe defaults. [`AuthBuilder`](crate::AuthBuilder) fills it; read it back
//! with [`Auth::settings`](crate::Auth::settings).
//!
//! | setting | default |
//! |---|---|
//! | access-token lifetime | 15 minutes |
//! | refresh-token lifetime (sliding) / session lifetime (absolute) | 7 days / 30 days |
//! | reuse grace window | 10 s |
//! | clock leeway | 30 s |
//! | token size cap | 8 KiB |
//! | cookies | `access_token`, `refresh_token`; HttpOnly, Secure, SameSite=Lax, Path=/ |
//! | password | 12 to 128 characters, common list refused, argon2id m=19 MiB t=2 p=1 |
//! | one-time codes | 6 digits, 15 minutes, 5 tries |
//! | JSON body limit | 16 KiB |
//! | rate limits | see [`LimitSettings`] |

use std::net::IpAddr;
use std::time::Duration;

use crate::cookies::CookieSettings;
use crate::limits::Limit;
use crate::password::PasswordSettings;

/// Default size cap for an access token, in bytes.
pub(crate) const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Lifetimes of a session (one sign-in) and of its refresh tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// Sliding lifetime of one refresh token (default 7 days).
    pub refresh_ttl: Duration,
    /// Absolute lifetime of a session, which refreshing never extends
    /// (default 30 days).
    pub lifetime: Duration,
    /// How long after a rotation the previous refresh token still rotates to
    /// the same successor, for concurrent requests (default 10 s).
    pub reuse_grace: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            lifetime: Duration::from_secs(30 * 24 * 3600),
            reuse_grace: Duration::from_secs(10),
        }
    }
}

/// Bounds of the verified-token cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Most tokens kept (0 turns the cache off).
    pub max_entries: usize,
    /// Most bytes kept (tokens plus an estimate of their claims).
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_entries: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CacheSettings {
    /// No caching: every request verifies its token fully.
    pub fn disabled() -> Self {
        CacheSettings {
            max_entries: 0,
            max_bytes: 0,
        }
    }
}

/// Lifetime and try budget of the one-time codes mailed for e-mail
/// verification, password reset and e-mail change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSettings {
    /// How long a code lives (default 15 minutes).
    pub ttl: Duration,
    /// Tries before the code is burned (default 5).
    pub max_attempts: u32,
}

impl Default for CodeSettings {
    fn default() -> Self {
        CodeSettings {
            ttl: Duration::from_secs(15 * 60),
            max_attempts: 5,
        }
    }
}

/// Rate limits of the auth flows (fixed windows). Failures are *reserved*
/// before the expensive work, so concurrent requests cannot walk past a
/// limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    /// Failed sign-ins (and wrong current passwords) per login (default 5
    /// per 15 minutes).
    pub signin_failures_per_login: Limit,
    /// Failed sign-ins per client network: an IPv4 address or an IPv6 /64
    /// (default 50 per 15 minutes).
    pub signin_failures_per_ip: Limit,
    /// Sign-ups per client network (default 10 per hour).
    pub signups_per_ip: Limit,
    /// Wrong one-time codes per user and client network (an IPv4 address or
    /// an IPv6 /48), all purposes together (default 20 per 24 hours). Keyed
    /// on the network too, so a stranger cannot lock the owner out.
    pub wrong_codes_per_user: Limit,
    /// Code mails a user may ask for (resend, password reset, e-mail
    /// change; default 3 per 15 minutes).
    pub code_requests_per_user: Limit,
    /// Mails to one address, all purposes together (default 5 per hour).
    /// Past it nothing is sent and routes answer as they otherwise would.
    pub mails_per_address: Limit,
    /// Password-reset requests per client network (default 20 per hour).
    pub resets_per_ip: Limit,
}

impl Default for LimitSettings {
    fn default() -> Self {
        let min15 = Duration::from_secs(15 * 60);
        let hour = Duration::from_secs(3600);
        LimitSettings {
            signin_failures_per_login: Limit::new(5, min15),
            signin_failures_per_ip: Limit::new(50, min15),
            signups_per_ip: Limit::new(10, hour),
            wrong_codes_per_user: Limit::new(20, Duration::from_secs(24 * 3600)),
            code_requests_per_user: Limit::new(3, min15),
            mails_per_address: Limit::new(5, hour),
            resets_per_ip: Limit::new(20, hour),
        }
    }
}

/// Every setting of an [`Auth`](crate::Auth).
#[derive(Clone, Debug)]
pub struct Settings {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) access_ttl: Duration,
    pub(crate) session: SessionSettings,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) access_cookie: CookieSettings,
    pub(crate) refresh_cookie: CookieSettings,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) cache: CacheSettings,
    pub(crate) password: PasswordSettings,
    pub(crate) codes: CodeSettings,
    pub(crate) limits: LimitSettings,
    pub(crate) trusted_proxies: Vec<IpAddr>,
    pub(crate) max_body_bytes: usize,
    pub(crate) unverified_ttl: Duration,
    pub(crate) tokens_in_body: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            issuer: "axum-authkit".into(),
            audience: "axum-authkit".into(),
            access_ttl: Duration::from_secs(15 * 60),
            session: SessionSettings::default(),
            leeway: Duration::from_secs(30),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            access_cookie: CookieSettings::new("access_token"),
            refresh_cookie: CookieSettings::new("refresh_token"),
            allowed_origins: Vec::new(),
            cache: CacheSettings::default(),
            password: PasswordSettings::default(),
            codes: CodeSettings::default(),
            limits: LimitSettings::default(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 16 * 1024,
            unverified_ttl: Duration::from_secs(7 * 24 * 3600),
            tokens_in_body: false,
        }
    }
}

impl Settings {
    /// `iss` of minted tokens, required on verified ones.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// `aud` of minted tokens, required on verified ones.
    pub fn audience(&self) -> &str {
        &self.audience
    }
    /// Access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }
    /// Session and refresh-token lifetimes.
    pub fn session(&self) -> &SessionSettings {
        &self.session
    }
    /// Clock leeway for `exp` and `nbf`.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }
    /// The access cookie.
    pub fn access_cookie(&self) -> &CookieSettings {
        &self.access_cookie
    }
    /// The refresh cookie.
    pub fn refresh_cookie(&self) -> &CookieSettings {
        &self.refresh_cookie
    }
    /// Other origins trusted for cookie-authenticated unsafe requests.
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }
    /// Password rules and hashing cost.
    pub fn password(&self) -> &PasswordSettings {
        &self.password
    }
    /// One-time codes.
    pub fn codes(&self) -> &CodeSettings {
        &self.codes
    }
    /// Rate limits.
    pub fn limits(&self) -> &LimitSettings {
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
    /// How long an account may stay unverified before it is purged.
    pub fn unverified_ttl(&self) -> Duration {
        self.unverified_ttl
    }
    /// Whether the routes also hand tokens over in their JSON bodies.
    pub fn tokens_in_body(&self) -> bool {
        self.tokens_in_body
    }
}
