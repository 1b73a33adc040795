//! The verified-token cache, and the sign-ins revoked through this process.
//!
//! A client sends the same access token with every request until it expires,
//! so a token that passed full verification is remembered, keyed by **all of
//! its bytes**: any other string, one flipped bit included, misses and is
//! verified from scratch. A hit still re-checks `exp` and `nbf`, so the cache
//! never accepts what [`Verifier::verify`](crate::verify::Verifier::verify)
//! would refuse at that moment.
//!
//! The cache is bounded both in entries and in bytes, with `quick_cache`'s
//! CLOCK-Pro eviction, and sharded, so a hit takes one shard's read lock and
//! no global lock. It can be turned off ([`CacheConfig::disabled`]).
//!
//! Revoking a sign-in here (logout, logout-all, refresh-token reuse) adds its
//! `sid` to a short-lived deny list and drops its cached tokens at once, so
//! this process refuses that sign-in's access tokens immediately; other
//! processes accept them until they expire (one access-token lifetime).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use crate::claims::AccessClaims;

/// Bounds of the verified-token cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most tokens kept (0 turns the cache off).
    pub max_entries: usize,
    /// Most bytes kept (tokens plus an estimate of their claims).
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 100_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CacheConfig {
    /// No caching: every request verifies its token fully.
    pub fn disabled() -> Self {
        CacheConfig {
            max_entries: 0,
            max_bytes: 0,
        }
    }
}

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

/// Verified tokens by their full text, plus the local deny list.
pub(crate) struct TokenCache<E> {
    cache: Option<Cache<TokenKey, Arc<AccessClaims<E>>, ByteWeighter>>,
    revoked: RwLock<HashMap<Box<str>, i64>>,
    any_revoked: AtomicBool,
}

impl<E: Clone + Send + Sync + 'static> TokenCache<E> {
    pub(crate) fn new(config: CacheConfig) -> Self {
        let cache = (config.max_entries > 0 && config.max_bytes > 0).then(|| {
            let slot = (config.max_bytes / config.max_entries as u64).max(1);
            Cache::with_weighter(config.max_entries, config.max_bytes, ByteWeighter { slot })
        });
        TokenCache {
            cache,
            revoked: RwLock::new(HashMap::new()),
            any_revoked: AtomicBool::new(false),
        }
    }

    /// The cached claims of `token`, if it was verified before. Time checks
    /// are the caller's (they need the verifier's leeway).
    #[inline]
    pub(crate) fn get(&self, token: &[u8]) -> Option<Arc<AccessClaims<E>>> {
        self.cache.as_ref()?.get(&TokenRef(token))
    }

    /// Remembers a verified token; refuses (and forgets) it when its sign-in
    /// was revoked here. The insert comes before the deny-list check, and
    /// [`TokenCache::revoke`] writes the deny list before purging, so a
    /// racing revocation can never leave a revoked token cached.
    pub(crate) fn insert(&self, token: &str, claims: Arc<AccessClaims<E>>) -> bool {
        if let Some(cache) = &self.cache {
            cache.insert(TokenKey(token.as_bytes().into()), claims.clone());
        }
        if self.is_revoked(&claims.sid) {
            self.remove(token.as_bytes());
            return false;
        }
        true
    }

    pub(crate) fn remove(&self, token: &[u8]) {
        if let Some(cache) = &self.cache {
            cache.remove(&TokenRef(token));
        }
    }

    pub(crate) fn is_revoked(&self, sid: &str) -> bool {
        self.any_revoked.load(Ordering::Acquire)
            && self
                .revoked
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(sid)
    }

    /// Denies `sid` until `until` (seconds; the last possible `exp` of its
    /// tokens) and drops its cached tokens.
    pub(crate) fn revoke(&self, sid: &str, until: i64, now: i64) {
        {
            let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            revoked.retain(|_, until| *until >= now);
            revoked.insert(sid.into(), until);
            self.any_revoked.store(true, Ordering::Release);
        }
        if let Some(cache) = &self.cache {
            cache.retain(|_, claims| claims.sid != sid);
        }
    }

    /// Drops cached tokens that have expired and deny-list entries that no
    /// longer matter.
    pub(crate) fn purge(&self, now: i64, leeway: i64) {
        if let Some(cache) = &self.cache {
            cache.retain(|_, claims| claims.exp.saturating_add(leeway) >= now);
        }
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, until| *until >= now);
        self.any_revoked
            .store(!revoked.is_empty(), Ordering::Release);
    }

    /// Number of cached tokens.
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }
}
