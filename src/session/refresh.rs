//! Opaque refresh tokens and their rotation with reuse detection.
//!
//! A refresh token is 48 random-looking bytes, base64url (64 characters):
//! the 16-byte session id, then a 32-byte secret. Stores keep only the
//! SHA-256 of the live token.
//!
//! Every use rotates the token. The successor is not random but derived:
//! `secret' = HMAC-SHA256(server key, token)`. So every request that rotates
//! the same token computes the *same* successor, and concurrent rotations can
//! all succeed without a lock:
//!
//! 1. The store's compare-and-swap ([`SessionStore::rotate`]) replaces the
//!    live hash only if it is still the presented token's. One racer wins.
//! 2. A loser re-reads the session; if the live hash is now the successor's and
//!    the swap happened within the grace window (default 10 s), it returns
//!    that same successor. All racers end with one token and one live session.
//! 3. A token that was rotated away longer ago than the grace window (or more
//!    than one generation back) is *reuse*: someone holds a stolen copy, and
//!    the whole session is revoked. Older generations are recognised by walking
//!    the HMAC chain forward from the presented token, up to
//!    [`REUSE_LOOKBACK`] steps; a token that never belonged to the session
//!    (a forgery with a known session id) is just invalid and revokes nothing.
//!
//! A session also has an absolute lifetime (default 30 days) that rotation
//! never extends, and each token a sliding lifetime (default 7 days).
//!
//! # A lost answer
//!
//! A rotation is one compare-and-swap in the store, so it either happened or
//! did not: no session is ever half-rotated. But the store can commit a swap
//! whose answer never comes back (a stalled network: the call misses its
//! deadline, the client is told `503`, and the write lands later). The client
//! still holds the old token, now the *previous* one. Within the grace window
//! that is harmless: presenting it again returns the successor the lost
//! answer carried. After the grace window it cannot be told apart from theft:
//! a rotated-away token came back, and the whole session is revoked (the
//! user signs in again). Nothing on the server distinguishes the two cases;
//! a longer grace window narrows the first at the cost of a longer window for
//! a stolen token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::SessionSettings;
use crate::store::{Rotation, SecretHash, Session, SessionStore, StoreError, UnixMillis};

/// How many generations back a rotated-away token is still recognised as
/// reuse (older ones are merely invalid).
pub(crate) const REUSE_LOOKBACK: usize = 64;

const ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
const TOKEN_LEN: usize = ID_LEN + SECRET_LEN;
const ENCODED_LEN: usize = 64;

/// The raw bytes of a refresh token: session id, then secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raw(pub(crate) [u8; TOKEN_LEN]);

impl Raw {
    pub(crate) fn parse(token: &str) -> Option<Raw> {
        if token.len() != ENCODED_LEN {
            return None;
        }
        let mut raw = [0u8; TOKEN_LEN];
        let n = URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()?;
        (n == TOKEN_LEN).then_some(Raw(raw))
    }

    pub(crate) fn session_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0[..ID_LEN])
    }

    fn hash(&self) -> SecretHash {
        Sha256::digest(self.0).into()
    }

    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A refresh token to hand to the client, with its session.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    /// The opaque token (the `refresh_token` cookie value).
    pub(crate) token: String,
    /// The session as stored after the operation.
    pub(crate) session: Session,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

/// Why a refresh token was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    /// Unknown, malformed, expired or revoked.
    #[error("invalid refresh token")]
    Invalid,
    /// A rotated-away token came back: the session was revoked.
    #[error("refresh token reuse detected; session revoked")]
    Reused {
        /// The revoked session.
        session_id: String,
    },
    /// The store failed; nothing was handed out.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a presented token stands in its session's chain.
enum Position {
    /// The live token.
    Current,
    /// The live token's predecessor (its successor is live).
    Previous,
    /// Rotated away two or more generations ago.
    Older,
    /// Never part of this session.
    Unknown,
}

/// A presented refresh token and the session it names (see [`RefreshTokens::present`]).
#[derive(Clone)]
pub(crate) struct Presented {
    raw: Raw,
    session: Session,
}

impl Presented {
    /// The session as read (not yet judged: the token may be stale or forged).
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

/// Mints, rotates and revokes refresh tokens over a [`SessionStore`].
#[derive(Clone)]
pub(crate) struct RefreshTokens {
    mac: Hmac<Sha256>,
    policy: SessionSettings,
}

impl fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokens")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RefreshTokens {
    /// Derives successors with `key` (every instance sharing a store must
    /// use the same one).
    pub(crate) fn new(key: &[u8], policy: SessionSettings) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        RefreshTokens { mac, policy }
    }

    fn successor(&self, token: &Raw) -> Raw {
        let mut mac = self.mac.clone();
        mac.update(&token.0);
        let mut next = token.0;
        next[ID_LEN..].copy_from_slice(&mac.finalize().into_bytes());
        Raw(next)
    }

    fn position(&self, session: &Session, token: &Raw) -> Position {
        let eq = |h: SecretHash| bool::from(h.ct_eq(&session.current_hash));
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

    /// Starts a session for `user_id` (a sign-in) and returns its first token.
    pub(crate) async fn start(
        &self,
        store: &dyn SessionStore,
        user_id: &str,
        client: &crate::Client,
        now: UnixMillis,
    ) -> Result<Issued, StoreError> {
        let mut raw = [0u8; TOKEN_LEN];
        rand::rng().fill_bytes(&mut raw);
        let raw = Raw(raw);
        let session = Session {
            id: raw.session_id(),
            user_id: user_id.to_owned(),
            current_hash: raw.hash(),
            rotated_at: 0,
            created_at: now,
            last_used_at: now,
            expires_at: now
                .saturating_add(ms(self.policy.refresh_ttl).min(ms(self.policy.lifetime))),
            revoked: false,
            user_agent: client.user_agent().map(str::to_owned),
            ip: client.ip().map(|ip| ip.to_string()),
        };
        store.create_session(&session).await?;
        Ok(Issued {
            token: raw.encode(),
            session,
        })
    }

    /// Reads the session `token` claims to belong to, without judging the
    /// token yet: callers check the session's owner before
    /// [`RefreshTokens::rotate`], so that a failed check never leaves a
    /// rotation behind.
    pub(crate) async fn present(
        &self,
        store: &dyn SessionStore,
        token: &str,
    ) -> Result<Presented, RefreshError> {
        let raw = Raw::parse(token).ok_or(RefreshError::Invalid)?;
        let session = store
            .session(&raw.session_id())
            .await?
            .ok_or(RefreshError::Invalid)?;
        Ok(Presented { raw, session })
    }

    /// Rotates a presented token: returns its successor, or refuses it
    /// (revoking the session on reuse). Correct under concurrent calls, in
    /// one process or many, as long as the store's `rotate` is a
    /// compare-and-swap.
    pub(crate) async fn rotate(
        &self,
        store: &dyn SessionStore,
        presented: Presented,
        now: UnixMillis,
    ) -> Result<Issued, RefreshError> {
        let Presented { raw, mut session } = presented;
        let next = self.successor(&raw);
        // Three reads are plenty: a lost swap means a racer installed our successor.
        for attempt in 0..3 {
            if attempt > 0 {
                session = store
                    .session(&session.id)
                    .await?
                    .ok_or(RefreshError::Invalid)?;
            }
            if session.revoked || now >= session.expires_at {
                return Err(RefreshError::Invalid);
            }
            match self.position(&session, &raw) {
                Position::Current => {
                    let expires_at = now
                        .saturating_add(ms(self.policy.refresh_ttl))
                        .min(session.created_at.saturating_add(ms(self.policy.lifetime)));
                    let rotation = Rotation {
                        session_id: &session.id,
                        expected: &session.current_hash,
                        next: &next.hash(),
                        rotated_at: now,
                        expires_at,
                    };
                    if store.rotate(rotation).await? {
                        session.current_hash = next.hash();
                        session.rotated_at = now;
                        session.last_used_at = now;
                        session.expires_at = expires_at;
                        return Ok(Issued {
                            token: next.encode(),
                            session,
                        });
                    }
                }
                Position::Previous
                    if now.saturating_sub(session.rotated_at) <= ms(self.policy.reuse_grace) =>
                {
                    return Ok(Issued {
                        token: next.encode(),
                        session,
                    });
                }
                Position::Previous | Position::Older => {
                    store.revoke_session(&session.id).await?;
                    tracing::warn!(sid = %session.id, user = %session.user_id, "refresh token reuse detected; session revoked");
                    return Err(RefreshError::Reused {
                        session_id: session.id,
                    });
                }
                Position::Unknown => return Err(RefreshError::Invalid),
            }
        }
        Err(RefreshError::Invalid)
    }

    /// Replaces the live token of session `sid` with a fresh random one,
    /// whatever it was: after the session's credentials changed, the client
    /// that changed them gets the new token and every copy of the old one
    /// stops working.
    pub(crate) async fn reissue(
        &self,
        store: &dyn SessionStore,
        sid: &str,
        now: UnixMillis,
    ) -> Result<Issued, RefreshError> {
        let mut session = store.session(sid).await?.ok_or(RefreshError::Invalid)?;
        if !session.is_live(now) {
            return Err(RefreshError::Invalid);
        }
        let id = URL_SAFE_NO_PAD
            .decode(sid)
            .ok()
            .filter(|id| id.len() == ID_LEN)
            .ok_or(RefreshError::Invalid)?;
        let mut raw = [0u8; TOKEN_LEN];
        raw[..ID_LEN].copy_from_slice(&id);
        rand::rng().fill_bytes(&mut raw[ID_LEN..]);
        let next = Raw(raw);
        let expires_at = now
            .saturating_add(ms(self.policy.refresh_ttl))
            .min(session.created_at.saturating_add(ms(self.policy.lifetime)));
        let rotation = Rotation {
            session_id: sid,
            expected: &session.current_hash,
            next: &next.hash(),
            rotated_at: now,
            expires_at,
        };
        if !store.rotate(rotation).await? {
            return Err(RefreshError::Invalid);
        }
        session.current_hash = next.hash();
        session.rotated_at = now;
        session.last_used_at = now;
        session.expires_at = expires_at;
        Ok(Issued {
            token: next.encode(),
            session,
        })
    }

    /// The session `token` really belongs to (any generation within the
    /// look-back), if it is still live: what a logout ends.
    pub(crate) async fn owner(
        &self,
        store: &dyn SessionStore,
        token: &str,
    ) -> Result<Option<Session>, StoreError> {
        let Some(raw) = Raw::parse(token) else {
            return Ok(None);
        };
        let Some(session) = store.session(&raw.session_id()).await? else {
            return Ok(None);
        };
        if session.revoked || matches!(self.position(&session, &raw), Position::Unknown) {
            return Ok(None);
        }
        Ok(Some(session))
    }
}
