//! Opaque refresh tokens, their families, and rotation with reuse detection.
//!
//! A refresh token is 48 random-looking bytes, base64url (64 characters):
//! the 16-byte family id, then a 32-byte secret. Stores keep only the
//! SHA-256 of the live token.
//!
//! Every use rotates the token. The successor is not random but derived:
//! `secret' = HMAC-SHA256(server key, token)`. So every request that rotates
//! the same token computes the *same* successor, and concurrent rotations can
//! all succeed without a lock:
//!
//! 1. The store's compare-and-swap ([`RefreshStore::rotate`]) replaces the
//!    live hash only if it is still the presented token's. One racer wins.
//! 2. A loser re-reads the family; if the live hash is now the successor's and
//!    the swap happened within the grace window (default 10 s), it returns
//!    that same successor. All racers end with one token and one live family.
//! 3. A token that was rotated away longer ago than the grace window (or more
//!    than one generation back) is *reuse*: someone holds a stolen copy, and
//!    the whole family is revoked. Older generations are recognised by walking
//!    the HMAC chain forward from the presented token, up to
//!    [`REUSE_LOOKBACK`] steps; a token that never belonged to the family
//!    (a forgery with a known family id) is just invalid and revokes nothing.
//!
//! A family also has an absolute lifetime (default 30 days) that rotation
//! never extends, and each token a sliding lifetime (default 7 days).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Family, RefreshStore, Rotation, SecretHash, StoreError, UnixMillis};

/// How many generations back a rotated-away token is still recognised as
/// reuse (older ones are merely invalid).
pub const REUSE_LOOKBACK: usize = 64;

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
const TOKEN_LEN: usize = ID_LEN + SECRET_LEN;
const ENCODED_LEN: usize = 64;

/// The raw bytes of a refresh token.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Raw([u8; TOKEN_LEN]);

impl Raw {
    fn parse(token: &str) -> Option<Raw> {
        if token.len() != ENCODED_LEN {
            return None;
        }
        let mut raw = [0u8; TOKEN_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()?;
        (n == TOKEN_LEN).then_some(Raw(raw))
    }

    fn family_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0[..ID_LEN])
    }

    fn hash(&self) -> SecretHash {
        Sha256::digest(self.0).into()
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// Lifetimes and the grace window of refresh tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Sliding lifetime of one token (default 7 days).
    pub token_ttl: std::time::Duration,
    /// Absolute lifetime of a family (default 30 days).
    pub family_lifetime: std::time::Duration,
    /// How long after a rotation the previous token still rotates to the
    /// same successor (default 10 s).
    pub reuse_grace: std::time::Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            token_ttl: std::time::Duration::from_secs(7 * 24 * 3600),
            family_lifetime: std::time::Duration::from_secs(30 * 24 * 3600),
            reuse_grace: std::time::Duration::from_secs(10),
        }
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A refresh token to hand to the client, with its family.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The opaque token (the `refresh_token` cookie value).
    pub token: String,
    /// The family as stored after the operation.
    pub family: Family,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("family", &self.family.id)
            .finish_non_exhaustive()
    }
}

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Unknown, malformed, expired or revoked.
    #[error("invalid refresh token")]
    Invalid,
    /// A rotated-away token came back: the family was revoked.
    #[error("refresh token reuse detected; family {family_id} revoked")]
    Reused {
        /// The revoked family.
        family_id: String,
        /// Its owner.
        user_id: String,
    },
    /// The store failed; nothing was handed out.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a presented token stands in its family's chain.
enum Position {
    /// The live token.
    Current,
    /// The live token's predecessor (its successor is live).
    Previous,
    /// Rotated away two or more generations ago.
    Older,
    /// Never part of this family.
    Unknown,
}

/// A presented refresh token and the family it names (see [`RefreshTokens::present`]).
#[derive(Clone)]
pub struct Presented {
    raw: Raw,
    family: Family,
}

impl Presented {
    /// The family as read (not yet judged: the token may be stale or forged).
    pub fn family(&self) -> &Family {
        &self.family
    }
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("family", &self.family.id)
            .finish_non_exhaustive()
    }
}

/// Mints, rotates and revokes refresh tokens over a [`RefreshStore`].
#[derive(Clone)]
pub struct RefreshTokens {
    mac: Hmac<Sha256>,
    policy: RefreshPolicy,
}

impl fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokens")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RefreshTokens {
    /// Derives successors with `secret` (at least 32 bytes; every instance
    /// sharing a store must use the same one).
    pub fn new(secret: &[u8], policy: RefreshPolicy) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!(
                "the refresh secret has {} bytes; at least 32 are required",
                secret.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
        Ok(RefreshTokens { mac, policy })
    }

    /// The policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    fn successor(&self, token: &Raw) -> Raw {
        let mut mac = self.mac.clone();
        mac.update(&token.0);
        let mut next = token.0;
        next[ID_LEN..].copy_from_slice(&mac.finalize().into_bytes());
        Raw(next)
    }

    fn position(&self, family: &Family, token: &Raw) -> Position {
        let eq = |h: SecretHash| bool::from(h.ct_eq(&family.current_hash));
        if eq(token.hash()) {
            return Position::Current;
        }
        let mut t = self.successor(token);
        if eq(t.hash()) {
            return Position::Previous;
        }
        for _ in 1..REUSE_LOOKBACK {
            t = self.successor(&t);
            if eq(t.hash()) {
                return Position::Older;
            }
        }
        Position::Unknown
    }

    /// Starts a family for `user_id` (a sign-in) and returns its first token.
    pub async fn start(
        &self,
        store: &dyn RefreshStore,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Issued, StoreError> {
        let mut raw = [0u8; TOKEN_LEN];
        rand::rng().fill_bytes(&mut raw);
        let raw = Raw(raw);
        let family = Family {
            id: raw.family_id(),
            user_id: user_id.to_owned(),
            current_hash: raw.hash(),
            rotated_at: 0,
            created_at: now,
            expires_at: now
                .saturating_add(ms(self.policy.token_ttl).min(ms(self.policy.family_lifetime))),
            revoked: false,
        };
        store.create_family(&family).await?;
        Ok(Issued {
            token: raw.encode(),
            family,
        })
    }

    /// The family a token claims to belong to, without checking it.
    pub fn family_id(token: &str) -> Option<String> {
        Raw::parse(token).map(|r| r.family_id())
    }

    /// Reads the family `token` claims to belong to, without judging the
    /// token yet: callers check the family's owner before [`RefreshTokens::rotate_presented`],
    /// so that a failed check never leaves a rotation behind.
    pub async fn present(
        &self,
        store: &dyn RefreshStore,
        token: &str,
    ) -> Result<Presented, RefreshError> {
        let raw = Raw::parse(token).ok_or(RefreshError::Invalid)?;
        let family = store
            .family(&raw.family_id())
            .await?
            .ok_or(RefreshError::Invalid)?;
        Ok(Presented { raw, family })
    }

    /// Rotates `token`: returns its successor, or refuses it (revoking the
    /// family on reuse). Correct under concurrent calls, in one process or
    /// many, as long as the store's `rotate` is a compare-and-swap.
    pub async fn rotate(
        &self,
        store: &dyn RefreshStore,
        token: &str,
        now: UnixMillis,
    ) -> Result<Issued, RefreshError> {
        let presented = self.present(store, token).await?;
        self.rotate_presented(store, presented, now).await
    }

    /// [`RefreshTokens::rotate`] for a token already [`present`](RefreshTokens::present)ed.
    pub async fn rotate_presented(
        &self,
        store: &dyn RefreshStore,
        presented: Presented,
        now: UnixMillis,
    ) -> Result<Issued, RefreshError> {
        let Presented { raw, mut family } = presented;
        let next = self.successor(&raw);
        // Three reads are plenty: a lost swap means a racer installed our successor.
        for attempt in 0..3 {
            if attempt > 0 {
                family = store
                    .family(&family.id)
                    .await?
                    .ok_or(RefreshError::Invalid)?;
            }
            if family.revoked || now >= family.expires_at {
                return Err(RefreshError::Invalid);
            }
            match self.position(&family, &raw) {
                Position::Current => {
                    let expires_at = now.saturating_add(ms(self.policy.token_ttl)).min(
                        family
                            .created_at
                            .saturating_add(ms(self.policy.family_lifetime)),
                    );
                    let rotation = Rotation {
                        family_id: &family.id,
                        expected: &family.current_hash,
                        next: &next.hash(),
                        rotated_at: now,
                        expires_at,
                    };
                    if store.rotate(rotation).await? {
                        family.current_hash = next.hash();
                        family.rotated_at = now;
                        family.expires_at = expires_at;
                        return Ok(Issued {
                            token: next.encode(),
                            family,
                        });
                    }
                }
                Position::Previous
                    if now.saturating_sub(family.rotated_at) <= ms(self.policy.reuse_grace) =>
                {
                    return Ok(Issued {
                        token: next.encode(),
                        family,
                    });
                }
                Position::Previous | Position::Older => {
                    store.revoke_family(&family.id).await?;
                    tracing::warn!(family = %family.id, user = %family.user_id, "refresh token reuse detected; family revoked");
                    return Err(RefreshError::Reused {
                        family_id: family.id,
                        user_id: family.user_id,
                    });
                }
                Position::Unknown => return Err(RefreshError::Invalid),
            }
        }
        Err(RefreshError::Invalid)
    }

    /// Revokes the family of `token` if the token really belongs to it (any
    /// generation within the look-back); returns the revoked family.
    pub async fn revoke(
        &self,
        store: &dyn RefreshStore,
        token: &str,
    ) -> Result<Option<Family>, StoreError> {
        let Some(raw) = Raw::parse(token) else {
            return Ok(None);
        };
        let Some(family) = store.family(&raw.family_id()).await? else {
            return Ok(None);
        };
        if family.revoked || matches!(self.position(&family, &raw), Position::Unknown) {
            return Ok(None);
        }
        store.revoke_family(&family.id).await?;
        Ok(Some(family))
    }
}
