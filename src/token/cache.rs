//! The verified-token cache.
//!
//! A client sends the same access token with every request until it expires,
//! so a token that passed full verification is remembered, keyed by **all of
//! its bytes**: any other string, one flipped bit included, misses and is
//! verified from scratch. A hit still re-checks `exp` and `nbf`, so the cache
//! never accepts what the full verification
//! would refuse at that moment.
//!
//! The cache is bounded both in entries and in bytes, with `quick_cache`'s
//! CLOCK-Pro eviction, and sharded, so a hit takes one shard's read lock and
//! no global lock. It can be turned off ([`CacheSettings::disabled`](crate::CacheSettings::disabled)).
//!
//! Ending a session drops its cached tokens ([`TokenCache::forget_session`]);
//! the deny list that keeps them out afterwards is
//! [`Revocations`](crate::session::revocations::Revocations).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use super::claims::AccessClaims;
use crate::settings::CacheSettings;

/// A cached token: all of its bytes.
#[derive(PartialEq, Eq)]
struct TokenKey(Box<[u8]>);

/// A token being looked up, compared against [`TokenKey`]s byte for byte.
struct TokenRef<'a>(&'a [u8]);

/// Bucket choice hashes the token's tail only: the signature, which is
/// uniformly random for every genuine token, so the (keyed) hash spreads as
/// well as a hash of the whole token at a tenth of the cost. Equality still
/// compares every byte, so no other string can ever match an entry.
fn hash_tail<H: Hasher>(bytes: &[u8], state: &mut H) {
    state.write_usize(bytes.len());
    state.write(&bytes[bytes.len().saturating_sub(32)..]);
}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_tail(&self.0, state);
    }
}

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_tail(self.0, state);
    }
}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        *key.0 == *self.0
    }
}

/// Weight = bytes, but never under one slot's share of the byte budget, so
/// the byte bound also bounds the entry count.
#[derive(Clone)]
struct ByteWeighter {
    slot: u64,
}

impl<E> Weighter<TokenKey, Arc<AccessClaims<E>>> for ByteWeighter {
    fn weight(&self, key: &TokenKey, claims: &Arc<AccessClaims<E>>) -> u64 {
        let claims_bytes = std::mem::size_of::<AccessClaims<E>>()
            + claims.sub.len()
            + claims.email.len()
            + claims.sid.len()
            + claims.jti.len()
            + claims.iss.len();
        ((key.0.len() + claims_bytes + 64) as u64).max(self.slot)
    }
}

/// Verified tokens by their full text.
pub(crate) struct TokenCache<E> {
    cache: Option<Cache<TokenKey, Arc<AccessClaims<E>>, ByteWeighter>>,
}

impl<E: Clone + Send + Sync + 'static> TokenCache<E> {
    pub(crate) fn new(config: CacheSettings) -> Self {
        let cache = (config.max_entries > 0 && config.max_bytes > 0).then(|| {
            let slot = (config.max_bytes / config.max_entries as u64).max(1);
            Cache::with_weighter(config.max_entries, config.max_bytes, ByteWeighter { slot })
        });
        TokenCache { cache }
    }

    /// The cached claims of `token`, if it was verified before. Time checks
    /// are the caller's (they need the verifier's leeway).
    #[inline]
    pub(crate) fn get(&self, token: &[u8]) -> Option<Arc<AccessClaims<E>>> {
        self.cache.as_ref()?.get(&TokenRef(token))
    }

    /// Remembers a verified token.
    pub(crate) fn insert(&self, token: &str, claims: Arc<AccessClaims<E>>) {
        if let Some(cache) = &self.cache {
            cache.insert(TokenKey(token.as_bytes().into()), claims);
        }
    }

    pub(crate) fn remove(&self, token: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.remove(&TokenRef(token));
        }
    }

    /// Drops every cached token of session `sid`.
    pub(crate) fn forget_session(&self, sid: &str) {
        if let Some(cache) = &self.cache {
            cache.retain(|_, claims| claims.sid != sid);
        }
    }

    /// Drops cached tokens that have expired.
    pub(crate) fn purge(&self, now: i64, leeway: i64) {
        if let Some(cache) = &self.cache {
            cache.retain(|_, claims| claims.exp.saturating_add(leeway) >= now);
        }
    }

    /// Number of cached tokens.
    #[cfg(feature = "testing")]
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }
}
