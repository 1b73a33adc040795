//! The siteverify client: reCAPTCHA, hCaptcha and Turnstile over one protocol.

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{CaptchaError, CaptchaVerifier};

/// The largest siteverify answer read; real ones are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Error codes that mean the server, not the user, is misconfigured.
const CONFIG_ERROR_CODES: &[&str] = &[
    "missing-input-secret",
    "invalid-input-secret",
    "invalid-or-already-seen-secret",
    "sitekey-secret-mismatch",
    "invalid-sitekey",
    "bad-request",
    "internal-error",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Recaptcha,
    Hcaptcha,
    Turnstile,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Recaptcha => "recaptcha",
            Provider::Hcaptcha => "hcaptcha",
            Provider::Turnstile => "turnstile",
        }
    }
}

/// Verifies tokens with a provider's siteverify endpoint: Google
/// reCAPTCHA (v2 and v3), hCaptcha or Cloudflare Turnstile.
///
/// Each check `POST`s an `application/x-www-form-urlencoded` form with
/// `secret`, `response` and, when known, `remoteip`, then reads the JSON
/// answer (`success`, `hostname`, `action`, `score`, `challenge_ts`,
/// `error-codes`). The rules, in order:
///
/// 1. An empty (or all-blank) token fails at once, without a request:
///    [`CaptchaError::Failed`] with `missing-input-response`.
/// 2. A transport error, a timeout (see [`timeout`](Self::timeout)), an
///    HTTP 5xx, a redirect, or a body that is not a siteverify answer
///    gives [`CaptchaError::Unavailable`]. So does an HTTP 4xx, unless its
///    body is a siteverify answer with `success: false`.
/// 3. `success: false` gives [`CaptchaError::Failed`] with the provider's
///    error codes (`invalid-input-response`, `timeout-or-duplicate`, ...).
/// 4. When configured, the [hostname](Self::expected_hostnames),
///    [action](Self::expected_action) and [score](Self::min_score) must
///    match; otherwise [`CaptchaError::Failed`] with an empty error-code
///    list and a reason such as `"hostname mismatch"`.
///
/// Failures are logged with `tracing` (`warn` for unavailability and for
/// error codes that point at a bad secret, `debug` otherwise); neither
/// the secret nor the token is ever logged, and the `Debug` output
/// redacts the secret.
///
/// Cloning is cheap and shares the HTTP connection pool.
#[derive(Clone)]
pub struct Siteverify {
    provider: Provider,
    secret: Arc<str>,
    verify_url: String,
    expected_hostnames: Option<Vec<String>>,
    expected_action: Option<String>,
    min_score: Option<f32>,
    timeout: Duration,
    /// The error text when the default client could not be built; every
    /// check then fails closed with it.
    client: Result<reqwest::Client, String>,
}

impl fmt::Debug for Siteverify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Siteverify")
            .field("provider", &self.provider.name())
            .field("secret", &"[redacted]")
            .field("verify_url", &self.verify_url)
            .field("expected_hostnames", &self.expected_hostnames)
            .field("expected_action", &self.expected_action)
            .field("min_score", &self.min_score)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Siteverify {
    /// Google reCAPTCHA's documented siteverify endpoint.
    pub const RECAPTCHA_VERIFY_URL: &'static str =
        "https://www.google.com/recaptcha/api/siteverify";
    /// hCaptcha's documented siteverify endpoint.
    pub const HCAPTCHA_VERIFY_URL: &'static str = "https://api.hcaptcha.com/siteverify";
    /// Cloudflare Turnstile's documented siteverify endpoint.
    pub const TURNSTILE_VERIFY_URL: &'static str =
        "https://challenges.cloudflare.com/turnstile/v0/siteverify";
    /// How long a check may take, connection included, unless
    /// [`timeout`](Self::timeout) says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    fn new(provider: Provider, secret: String, verify_url: &str) -> Self {
        Siteverify {
            provider,
            secret: Arc::from(secret),
            verify_url: verify_url.to_owned(),
            expected_hostnames: None,
            expected_action: None,
            min_score: None,
            timeout: Self::DEFAULT_TIMEOUT,
            client: default_client(),
        }
    }

    /// Google reCAPTCHA (v2 or v3) with the site's secret key, checked at
    /// [`RECAPTCHA_VERIFY_URL`](Self::RECAPTCHA_VERIFY_URL).
    ///
    /// For v3, also set [`min_score`](Self::min_score) and usually
    /// [`expected_action`](Self::expected_action).
    pub fn recaptcha(secret: impl Into<String>) -> Self {
        Self::new(
            Provider::Recaptcha,
            secret.into(),
            Self::RECAPTCHA_VERIFY_URL,
        )
    }

    /// hCaptcha with the account's secret key, checked at
    /// [`HCAPTCHA_VERIFY_URL`](Self::HCAPTCHA_VERIFY_URL).
    pub fn hcaptcha(secret: impl Into<String>) -> Self {
        Self::new(Provider::Hcaptcha, secret.into(), Self::HCAPTCHA_VERIFY_URL)
    }

    /// Cloudflare Turnstile with the widget's secret key, checked at
    /// [`TURNSTILE_VERIFY_URL`](Self::TURNSTILE_VERIFY_URL).
    pub fn turnstile(secret: impl Into<String>) -> Self {
        Self::new(
            Provider::Turnstile,
            secret.into(),
            Self::TURNSTILE_VERIFY_URL,
        )
    }

    /// Sends checks to `url` instead of the provider's default endpoint
    /// (a proxy, `https://www.recaptcha.net/recaptcha/api/siteverify`, or
    /// a test server). An invalid URL makes every check
    /// [`Unavailable`](CaptchaError::Unavailable).
    pub fn verify_url(mut self, url: impl Into<String>) -> Self {
        self.verify_url = url.into();
        self
    }

    /// Accepts only answers whose `hostname` is one of `hostnames`
    /// (compared case-insensitively, a trailing dot ignored); a missing
    /// hostname fails too. An empty list accepts no hostname at all.
    ///
    /// Note that the providers' test keys answer with their own
    /// hostname (such as `testkey.google.com` or `example.com`).
    pub fn expected_hostnames<I, S>(mut self, hostnames: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = hostnames
            .into_iter()
            .map(|h| normalize_host(h.as_ref()))
            .collect();
        self.expected_hostnames = Some(list);
        self
    }

    /// Accepts only answers whose `action` is exactly `action` (the
    /// action the page passed to reCAPTCHA v3 `execute`, or a Turnstile
    /// widget's `data-action`); a missing action fails too.
    pub fn expected_action(mut self, action: impl Into<String>) -> Self {
        self.expected_action = Some(action.into());
        self
    }

    /// Accepts only answers whose `score` is at least `min` (reCAPTCHA
    /// v3: 1.0 is very likely a human, 0.0 very likely a bot; Google
    /// suggests 0.5 to start). An answer without a score fails. A `min`
    /// that is not a number (NaN) rejects every answer.
    ///
    /// Do not use it with hCaptcha, whose Enterprise `score` runs the
    /// other way (higher means riskier).
    pub fn min_score(mut self, min: f32) -> Self {
        self.min_score = Some(min);
        self
    }

    /// How long one check may take, from connecting to the last byte of
    /// the answer; past it the check is
    /// [`Unavailable`](CaptchaError::Unavailable). Defaults to
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) (5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses `client` (to share a connection pool, or to set a proxy or
    /// root certificates) instead of the built-in one, which follows no
    /// redirects. The [`timeout`](Self::timeout) still applies per check.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Ok(client);
        self
    }

    async fn check(
        &self,
        response: &str,
        remote_ip: Option<IpAddr>,
    ) -> Result<Answer, CaptchaError> {
        if response.trim().is_empty() {
            return Err(CaptchaError::Failed {
                error_codes: vec!["missing-input-response".to_owned()],
                reason: "missing response token",
            });
        }
        let client = self
            .client
            .as_ref()
            .map_err(|e| CaptchaError::Unavailable(e.clone()))?;

        let remote_ip = remote_ip.map(|ip| ip.to_canonical().to_string());
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(3);
        form.push(("secret", &*self.secret));
        form.push(("response", response));
        if let Some(ip) = &remote_ip {
            form.push(("remoteip", ip));
        }

        let mut answer = client
            .post(&self.verify_url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;

        let status = answer.status();
        if status.is_server_error() {
            return Err(CaptchaError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() && !status.is_client_error() {
            return Err(CaptchaError::Unavailable(format!(
                "unexpected HTTP {status}"
            )));
        }

        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| self.transport_error(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(CaptchaError::Unavailable(format!(
                    "answer larger than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }

        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            Err(e) if status.is_client_error() => {
                return Err(CaptchaError::Unavailable(format!(
                    "HTTP {status} without a siteverify answer ({e})"
                )));
            }
            Err(e) => {
                return Err(CaptchaError::Unavailable(format!(
                    "not a siteverify answer: {e}"
                )));
            }
        };

        if !answer.success {
            return Err(CaptchaError::Failed {
                error_codes: answer.error_codes.unwrap_or_default(),
                reason: "rejected by the provider",
            });
        }
        if status.is_client_error() {
            // `success: true` with a 4xx status is a contradiction.
            return Err(CaptchaError::Unavailable(format!(
                "HTTP {status} with success: true"
            )));
        }
        self.check_claims(&answer)?;
        Ok(answer)
    }

    fn check_claims(&self, answer: &Answer) -> Result<(), CaptchaError> {
        let failed = |reason| CaptchaError::Failed {
            error_codes: Vec::new(),
            reason,
        };
        if let Some(expected) = &self.expected_hostnames {
            let got = answer.hostname.as_deref().map(normalize_host);
            if !got.is_some_and(|got| expected.contains(&got)) {
                tracing::trace!(hostname = ?answer.hostname, ?expected, "captcha hostname mismatch");
                return Err(failed("hostname mismatch"));
            }
        }
        if let Some(expected) = &self.expected_action
            && answer.action.as_deref() != Some(expected.as_str())
        {
            tracing::trace!(action = ?answer.action, %expected, "captcha action mismatch");
            return Err(failed("action mismatch"));
        }
        if let Some(min) = self.min_score {
            let Some(score) = answer.score else {
                return Err(failed("score missing"));
            };
            match score.partial_cmp(&f64::from(min)) {
                Some(Ordering::Greater | Ordering::Equal) => {}
                _ => {
                    tracing::trace!(score, min, "captcha score below minimum");
                    return Err(failed("score below minimum"));
                }
            }
        }
        Ok(())
    }

    fn transport_error(&self, e: &reqwest::Error) -> CaptchaError {
        if e.is_timeout() {
            return CaptchaError::Unavailable(format!("no answer within {:?}", self.timeout));
        }
        let what = if e.is_connect() {
            "could not connect"
        } else if e.is_builder() {
            "could not build the request"
        } else {
            "request failed"
        };
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        CaptchaError::Unavailable(message)
    }
}

#[async_trait]
impl CaptchaVerifier for Siteverify {
    async fn verify(&self, response: &str, remote_ip: Option<IpAddr>) -> Result<(), CaptchaError> {
        let provider = self.provider.name();
        match self.check(response, remote_ip).await {
            Ok(answer) => {
                tracing::debug!(
                    provider,
                    hostname = ?answer.hostname,
                    action = ?answer.action,
                    score = ?answer.score,
                    challenge_ts = ?answer.challenge_ts,
                    "captcha passed"
                );
                Ok(())
            }
            Err(err) => {
                match &err {
                    CaptchaError::Failed {
                        error_codes,
                        reason,
                    } if error_codes
                        .iter()
                        .any(|c| CONFIG_ERROR_CODES.contains(&c.as_str())) =>
                    {
                        tracing::warn!(
                            provider,
                            ?error_codes,
                            reason,
                            "captcha rejected: check the secret key and site configuration"
                        );
                    }
                    CaptchaError::Failed {
                        error_codes,
                        reason,
                    } => {
                        tracing::debug!(provider, ?error_codes, reason, "captcha failed");
                    }
                    CaptchaError::Unavailable(why) => {
                        tracing::warn!(
                            provider,
                            verify_url = %self.verify_url,
                            error = %why,
                            "captcha provider unavailable; failing closed"
                        );
                    }
                }
                Err(err)
            }
        }
    }
}

/// The fields of a siteverify answer that matter here; others (such as
/// Turnstile's `cdata` or hCaptcha's `credit`) are ignored.
#[derive(Debug, Deserialize)]
struct Answer {
    success: bool,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    challenge_ts: Option<String>,
    #[serde(default, rename = "error-codes")]
    error_codes: Option<Vec<String>>,
}

fn normalize_host(host: &str) -> String {
    let host = host.trim();
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn default_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("axum-authkit/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_urls_and_timeout() {
        let r = Siteverify::recaptcha("s");
        assert_eq!(r.provider, Provider::Recaptcha);
        assert_eq!(
            r.verify_url,
            "https://www.google.com/recaptcha/api/siteverify"
        );
        assert_eq!(r.timeout, Duration::from_secs(5));
        let h = Siteverify::hcaptcha("s");
        assert_eq!(h.provider, Provider::Hcaptcha);
        assert_eq!(h.verify_url, "https://api.hcaptcha.com/siteverify");
        let t = Siteverify::turnstile("s");
        assert_eq!(t.provider, Provider::Turnstile);
        assert_eq!(
            t.verify_url,
            "https://challenges.cloudflare.com/turnstile/v0/siteverify"
        );
    }

    #[test]
    fn hostnames_are_normalized() {
        assert_eq!(normalize_host(" Example.COM. "), "example.com");
        let v = Siteverify::hcaptcha("s").expected_hostnames(["WWW.Example.com."]);
        assert_eq!(
            v.expected_hostnames,
            Some(vec!["www.example.com".to_owned()])
        );
    }
}
