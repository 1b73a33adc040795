//! Fixed-window rate limits behind a small trait, so several app instances
//! can share counters (see `RedisStore`).
//!
//! The router counts sign-in failures per login and per client address,
//! sign-ups per address, and verification attempts and resends per user. An
//! exceeded limit answers `429 rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::store::StoreError;

/// At most `max` events per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed in one window.
    pub max: u32,
    /// Window length; the window starts at its first event.
    pub window: Duration,
}

impl Limit {
    /// `max` events per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Limit { max, window }
    }
}

/// The state of one key after a [`RateLimiter`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Under the limit.
    Allowed {
        /// Events left in the current window.
        remaining: u32,
    },
    /// At or over the limit: wait `retry_after`.
    Limited {
        /// Time until the window ends.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the limit was reached.
    pub fn is_limited(&self) -> bool {
        matches!(self, Decision::Limited { .. })
    }

    /// The decision for a key whose window holds `count` events and ends in
    /// `ttl`. After a `hit` the event just counted is refused when `count` is
    /// over `max`; a `peek` reports `Limited` once `count` has reached `max`
    /// (the next event would be refused).
    pub fn from_count(count: u32, limit: Limit, ttl: Duration, peek: bool) -> Self {
        let over = if peek {
            count >= limit.max
        } else {
            count > limit.max
        };
        if over {
            Decision::Limited {
                retry_after: ttl.max(Duration::from_secs(1)),
            }
        } else {
            Decision::Allowed {
                remaining: limit.max.saturating_sub(count),
            }
        }
    }
}

/// Counters keyed by strings such as `signin:login:alice@example.com`.
///
/// At most `limit.max` events pass per window: `hit` counts an event and
/// reports `Limited` when that event was one too many; `peek` counts nothing
/// and reports `Limited` when the next event would be. Windows are fixed and
/// start at their first event.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one event for `key`.
    async fn hit(&self, key: &str, limit: Limit) -> Result<Decision, StoreError>;
    /// Reports the state of `key` without counting.
    async fn peek(&self, key: &str, limit: Limit) -> Result<Decision, StoreError>;
    /// Forgets `key` (for example, after a successful sign-in).
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}

const SHARDS: usize = 16;

/// In-process limiter: sharded maps with a cap on the number of keys.
///
/// Expired windows are swept when a shard fills up; when a shard is full of
/// live windows, the window closest to its end is evicted, so memory stays
/// bounded even under a flood of distinct keys.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    shards: Vec<Mutex<HashMap<String, Window>>>,
    per_shard: usize,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    count: u32,
    ends: Instant,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryRateLimiter {
    /// A limiter that tracks at most about `max_keys` keys.
    pub fn with_capacity(max_keys: usize) -> Self {
        MemoryRateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Window>> {
        use std::hash::{BuildHasher, RandomState};
        // A per-process keyed hash: clients cannot aim keys at one shard.
        static SEED: std::sync::LazyLock<RandomState> = std::sync::LazyLock::new(RandomState::new);
        let h = SEED.hash_one(key) as usize;
        &self.shards[h % SHARDS]
    }

    fn update(&self, key: &str, limit: Limit, add: u32) -> Decision {
        let now = Instant::now();
        let mut map = lock(self.shard(key));
        if let Some(w) = map.get_mut(key) {
            if w.ends > now {
                w.count = w.count.saturating_add(add);
                return Decision::from_count(w.count, limit, w.ends - now, add == 0);
            }
            map.remove(key);
        }
        if add == 0 {
            return Decision::from_count(0, limit, limit.window, true);
        }
        if map.len() >= self.per_shard {
            map.retain(|_, w| w.ends > now);
            if map.len() >= self.per_shard
                && let Some(k) = map
                    .iter()
                    .min_by_key(|(_, w)| w.ends)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        let w = Window {
            count: add,
            ends: now + limit.window,
        };
        map.insert(key.to_owned(), w);
        Decision::from_count(w.count, limit, limit.window, false)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned counter map is still a valid map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
        Ok(self.update(key, limit, 1))
    }

    async fn peek(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
        Ok(self.update(key, limit, 0))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        lock(self.shard(key)).remove(key);
        Ok(())
    }
}
