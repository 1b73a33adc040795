//! Access tokens: verification (the RFC 8725 checks, with no HTTP in sight),
//! minting, and the verified-token cache.
//!
//! The steps of a check, each a distinct [`TokenError`]:
//!
//! 1. size cap (default 8 KiB), then exactly three base64url segments;
//! 2. the header: `crit`, `jku`, `jwk`, `x5u` and `x5c` are refused (nothing
//!    is ever fetched or trusted from a token), `typ` must be `at+jwt`
//!    (RFC 9068; a refresh or ID token never passes), `kid` must name a key;
//! 3. the header's `alg` must equal the algorithm *of that key*: the key
//!    decides, so `none` and algorithm-confusion tokens fail;
//! 4. the signature, checked by `jsonwebtoken`'s crypto before the payload is
//!    even decoded;
//! 5. the claims, parsed once with strict types (a string `exp` or `nbf` is
//!    refused), then `iss`, `aud`, `exp` (required) and `nbf`, with leeway.

pub(crate) mod cache;
pub(crate) mod claims;

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use self::claims::AccessClaims;
use crate::keys::{KeySet, alg_name};

/// Header `typ` of access tokens (RFC 9068).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Over the size cap.
    #[error("{}", self.description())]
    TooLarge,
    /// Not three base64url segments of JSON.
    #[error("{}", self.description())]
    Malformed,
    /// A header this crate never honours (`crit`, `jku`, `jwk`, `x5u`, `x5c`).
    #[error("{}", self.description())]
    ForbiddenHeader,
    /// `typ` is not `at+jwt`: some other kind of token.
    #[error("{}", self.description())]
    WrongType,
    /// No `kid`, or one that names no key.
    #[error("{}", self.description())]
    UnknownKey,
    /// `alg` differs from the key's algorithm (including `none`).
    #[error("{}", self.description())]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("{}", self.description())]
    BadSignature,
    /// Missing or ill-typed claims.
    #[error("{}", self.description())]
    InvalidClaims,
    /// Wrong `iss`.
    #[error("{}", self.description())]
    WrongIssuer,
    /// Wrong `aud`.
    #[error("{}", self.description())]
    WrongAudience,
    /// `exp` has passed.
    #[error("{}", self.description())]
    Expired,
    /// `nbf` is in the future.
    #[error("{}", self.description())]
    NotYetValid,
    /// The sign-in was revoked through this process.
    #[error("{}", self.description())]
    Revoked,
}

impl TokenError {
    /// A short ASCII description, also used as RFC 6750 `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "the token is too large",
            TokenError::Malformed => "the token is malformed",
            TokenError::ForbiddenHeader => "the token header has a forbidden parameter",
            TokenError::WrongType => "the token is not an access token",
            TokenError::UnknownKey => "the token names an unknown key",
            TokenError::AlgorithmMismatch => "the token algorithm does not match its key",
            TokenError::BadSignature => "the token signature is invalid",
            TokenError::InvalidClaims => "the token claims are missing or malformed",
            TokenError::WrongIssuer => "the token issuer is not accepted",
            TokenError::WrongAudience => "the token audience is not accepted",
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::Revoked => "the token has been revoked",
        }
    }
}

/// Borrowed from the decoded header; owned only when the JSON escapes a character.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
}

/// A header parameter counts as present whatever its value, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// Largest encoded header accepted (ours are about 60 bytes).
const MAX_HEADER_B64: usize = 512;
/// Payloads up to this size are decoded on the stack.
const MAX_STACK_PAYLOAD: usize = 1536;

/// Verifies and mints access tokens for one issuer and audience.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    keys: Arc<KeySet>,
    issuer: Box<str>,
    audience: Box<str>,
    leeway: i64,
    max_len: usize,
}

impl Verifier {
    /// A verifier with a 30 s leeway and the default size cap.
    pub(crate) fn new(keys: Arc<KeySet>, issuer: &str, audience: &str) -> Self {
        Verifier {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: 30,
            max_len: crate::settings::DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Sets the clock leeway for `exp` and `nbf`, in seconds.
    pub(crate) fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway = i64::try_from(seconds).unwrap_or(i64::MAX / 4);
        self
    }

    /// Sets the size cap, in bytes.
    pub(crate) fn with_max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// The key set.
    pub(crate) fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The clock leeway in seconds.
    pub(crate) fn leeway(&self) -> i64 {
        self.leeway
    }

    /// Checks `token` at time `now` (seconds since the epoch).
    pub(crate) fn verify<E: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<AccessClaims<E>, TokenError> {
        if token.len() > self.max_len {
            return Err(TokenError::TooLarge);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header_b64, payload_b64) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        if payload_b64.contains('.') || header_b64.len() > MAX_HEADER_B64 {
            return Err(TokenError::Malformed);
        }

        let mut buf = [0u8; MAX_HEADER_B64];
        let n = URL_SAFE_NO_PAD
            .decode_slice(header_b64, &mut buf)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&buf[..n]).map_err(|_| TokenError::Malformed)?;
        if header.crit || header.jku || header.jwk || header.x5u || header.x5c {
            return Err(TokenError::ForbiddenHeader);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        if header.alg != alg_name(key.algorithm()) {
            return Err(TokenError::AlgorithmMismatch);
        }
        if !key.verify_signature(signed.as_bytes(), signature) {
            return Err(TokenError::BadSignature);
        }

        let mut stack = [0u8; MAX_STACK_PAYLOAD];
        let heap;
        let payload: &[u8] = if payload_b64.len() <= MAX_STACK_PAYLOAD / 3 * 4 {
            let n = URL_SAFE_NO_PAD
                .decode_slice(payload_b64, &mut stack)
                .map_err(|_| TokenError::Malformed)?;
            &stack[..n]
        } else {
            heap = URL_SAFE_NO_PAD
                .decode(payload_b64)
                .map_err(|_| TokenError::Malformed)?;
            &heap
        };
        let claims: AccessClaims<E> =
            serde_json::from_slice(payload).map_err(|_| TokenError::InvalidClaims)?;
        if *claims.iss != *self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(TokenError::WrongAudience);
        }
        self.check_times(claims.exp, claims.nbf, now)?;
        Ok(claims)
    }

    /// The time checks alone, shared with the verified-token cache.
    pub(crate) fn check_times(
        &self,
        exp: i64,
        nbf: Option<i64>,
        now: i64,
    ) -> Result<(), TokenError> {
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// Signs `claims` with the active key (`typ: at+jwt`, `kid` set).
    pub(crate) fn sign<E: serde::Serialize>(
        &self,
        claims: &AccessClaims<E>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let (key, alg, kid) = self.keys.encoding();
        let mut header = jsonwebtoken::Header::new(alg);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key)
    }

    /// The configured issuer.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience.
    pub(crate) fn audience(&self) -> &str {
        &self.audience
    }
}
