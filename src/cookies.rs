//! Building and clearing the auth cookies with the `cookie` crate.
//!
//! Defaults follow the [API reference](crate::api): `HttpOnly`, `Secure`, `SameSite=Lax`,
//! `Path=/`, no `Domain`. `Secure` goes off only when asked
//! ([`CookieSettings::secure`]`(false)`, for plain-HTTP development). The
//! `__Host-` prefix (RFC 6265bis) pins a cookie to one host: it requires
//! `Secure`, `Path=/` and no `Domain`, which [`CookieSettings::validate`]
//! checks. Clearing a cookie repeats the name, `Path` and `Domain` it was set
//! with, or the browser would keep it.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::HeaderValue;

use crate::error::ConfigError;

/// A name prefix with browser-enforced rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CookiePrefix {
    /// No prefix.
    #[default]
    None,
    /// `__Host-`: Secure, `Path=/`, no Domain; the strongest binding.
    Host,
    /// `__Secure-`: Secure.
    Secure,
}

impl CookiePrefix {
    fn as_str(self) -> &'static str {
        match self {
            CookiePrefix::None => "",
            CookiePrefix::Host => "__Host-",
            CookiePrefix::Secure => "__Secure-",
        }
    }
}

/// The attributes of one auth cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    name: String,
    prefix: CookiePrefix,
    full_name: String,
    path: String,
    domain: Option<String>,
    same_site: SameSite,
    secure: bool,
    http_only: bool,
}

impl CookieSettings {
    /// Secure defaults for a cookie called `name`.
    pub fn new(name: &str) -> Self {
        CookieSettings {
            name: name.to_owned(),
            prefix: CookiePrefix::None,
            full_name: name.to_owned(),
            path: "/".to_owned(),
            domain: None,
            same_site: SameSite::Lax,
            secure: true,
            http_only: true,
        }
    }

    /// Renames the cookie (before any prefix).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self.full_name = format!("{}{}", self.prefix.as_str(), self.name);
        self
    }

    /// Adds a `__Host-` or `__Secure-` prefix to the name.
    pub fn prefix(mut self, prefix: CookiePrefix) -> Self {
        self.prefix = prefix;
        self.full_name = format!("{}{}", prefix.as_str(), self.name);
        self
    }

    /// Sets `Path`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// Sets `Domain` (`None`: host-only, the default).
    pub fn domain(mut self, domain: Option<&str>) -> Self {
        self.domain = domain.map(str::to_owned);
        self
    }

    /// Sets `SameSite`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets `Secure`; turn it off only for plain-HTTP development.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `HttpOnly`.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The name as sent, prefix included.
    pub fn cookie_name(&self) -> &str {
        &self.full_name
    }

    /// Checks the rules browsers enforce, so a bad setting fails at start-up
    /// instead of silently losing every cookie.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let refuse = |problem| {
            Err(ConfigError::Cookie {
                name: self.full_name.clone(),
                problem,
            })
        };
        let name_ok = !self.full_name.is_empty()
            && self
                .full_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !name_ok {
            return refuse("not a valid cookie name");
        }
        if !self.path.starts_with('/') {
            return refuse("Path must start with '/'");
        }
        if self.same_site == SameSite::None && !self.secure {
            return refuse("SameSite=None requires Secure");
        }
        match self.prefix {
            CookiePrefix::Host if !self.secure || self.path != "/" || self.domain.is_some() => {
                refuse("__Host- requires Secure, Path=/ and no Domain")
            }
            CookiePrefix::Secure if !self.secure => refuse("__Secure- requires Secure"),
            _ => Ok(()),
        }
    }

    fn build(&self, value: &str, max_age: Duration) -> HeaderValue {
        let mut c = Cookie::build((self.full_name.as_str(), value))
            .path(self.path.as_str())
            .same_site(self.same_site)
            .secure(self.secure)
            .http_only(self.http_only)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        if let Some(domain) = &self.domain {
            c.set_domain(domain.as_str());
        }
        // Names are validated and values are base64url or JWTs, so this is a
        // valid header value; an app-chosen odd value degrades to a removal.
        HeaderValue::from_str(&c.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// `Set-Cookie` value that stores `value` for `max_age`.
    pub fn set(&self, value: &str, max_age: Duration) -> HeaderValue {
        self.build(value, max_age)
    }

    /// `Set-Cookie` value that deletes the cookie: same name, `Path` and
    /// `Domain`, empty value, `Max-Age=0`.
    pub fn clear(&self) -> HeaderValue {
        self.build("", Duration::ZERO)
    }

    /// The value of this cookie in a request's `Cookie` headers, if sent.
    /// With duplicates the first wins (the browser sends the most specific
    /// path first).
    pub fn find<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a str> {
        std::str::from_utf8(self.find_bytes(headers)?).ok()
    }

    /// [`CookieSettings::find`] without the UTF-8 check, for the hot path.
    pub(crate) fn find_bytes<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a [u8]> {
        let name = self.full_name.as_bytes();
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
            .find_map(|pair| {
                let eq = pair.iter().position(|&b| b == b'=')?;
                let value = pair[eq + 1..].trim_ascii();
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                (pair[..eq].trim_ascii() == name).then_some(value)
            })
            .filter(|v| !v.is_empty())
    }
}
