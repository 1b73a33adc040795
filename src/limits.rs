//! Fixed-window rate limits behind a small, reservation-based trait, so
//! several app instances can share counters (see `RedisStore`).
//!
//! The router counts sign-in failures per login and per client address,
//! sign-ups per address, and verification attempts and resends per user. An
//! exceeded limit answers `429 rate_limited` with `Retry-After`.
//!
//! A guarded action *reserves* its event before it runs (an atomic "count
//! one if below the limit"), so a burst of concurrent requests cannot slip
//! past a limit that every one of them checked before any of them counted.
//! An action that turns out not to need counting (a successful sign-in)
//! [releases](RateLimiter::release) its reservation afterwards.

use std::hash::{BuildHasher, RandomState};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hashbrown::HashTable;

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

/// The answer of [`RateLimiter::reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The event was counted.
    Allowed {
        /// Events left in the current window after this one.
        remaining: u32,
    },
    /// The limit was reached; nothing was counted.
    Limited {
        /// Time until the window ends (at least 1 s).
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the limit was reached.
    pub fn is_limited(&self) -> bool {
        matches!(self, Decision::Limited { .. })
    }

    /// `Limited` with `retry_after` raised to at least one second, the
    /// smallest `Retry-After` a client can be told.
    pub fn limited(retry_after: Duration) -> Self {
        Decision::Limited {
            retry_after: retry_after.max(Duration::from_secs(1)),
        }
    }
}

/// Counters keyed by strings such as `signin:login:alice@example.com`.
///
/// Each key has fixed windows: a window starts at the first event reserved
/// while the key has none, and lasts `limit.window`. Implementations must
/// keep this contract, which the auth routes rely on:
///
/// - [`reserve`](RateLimiter::reserve) is one atomic step: when fewer than
///   `limit.max` events are counted in the key's window it counts one and
///   answers `Allowed { remaining }` (`max` minus the new count); otherwise
///   it counts nothing and answers `Limited { retry_after }` (the time until
///   the window ends, at least 1 s). Under any interleaving of concurrent
///   calls, from any number of tasks or processes sharing the limiter, at
///   most `max` calls per key and window are `Allowed`, releases aside.
/// - [`release`](RateLimiter::release) gives one counted event back,
///   saturating at zero. It never starts, extends or shortens a window; on a
///   key without a live window it does nothing.
/// - [`reset`](RateLimiter::reset) forgets the key: its next reservation
///   starts a new window.
///
/// An implementation may drop a key it can no longer keep (memory pressure)
/// only if that key was far from its limit; forgetting a key near its limit
/// would let an attacker reset it. A call that cannot reach the shared
/// counters returns an error; the routes then refuse the request (`503`).
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one event for `key` if the window holds fewer than
    /// `limit.max`; see the trait docs.
    async fn reserve(&self, key: &str, limit: Limit) -> Result<Decision, StoreError>;
    /// Gives back one event reserved for `key` (for example, after a
    /// successful sign-in); see the trait docs.
    async fn release(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets `key` (for example, the failures of a login that just signed
    /// in).
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}

const SHARDS: usize = 16;

/// Longest window kept in memory (about 136 years); longer ones are cut to it
/// so the end time cannot overflow.
const MAX_WINDOW: Duration = Duration::from_secs(1 << 32);

/// In-process limiter: sharded maps with a cap on the number of keys.
///
/// Memory stays bounded under a flood of distinct keys without forgetting the
/// keys under attack. When a shard reaches its share of the capacity, it
/// drops expired windows, then the live windows with the fewest events
/// (soonest-ending first among equals) until it is a quarter below its
/// share. A window whose count has reached half its `max` is never dropped:
/// it belongs to a key that is being attacked, and dropping it would hand
/// the attacker a fresh allowance.
///
/// When only such windows are left, a shard grows past its share, up to
/// twice it (about `2 x max_keys` keys in all). Past that, a key the shard
/// does not know yet is answered `Limited` (until a window there ends)
/// rather than an attacked key being forgotten: an attacker who got there
/// could otherwise reset any key. Through the auth routes that point is out
/// of reach: every event they count costs the attacker a password hash
/// (sign-in, sign-up) or an account of its own (verification), and filling
/// 200,000 keys (twice the default capacity) to half their limit within one
/// window takes hundreds of thousands of them.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

#[derive(Debug, Default)]
struct Shard {
    /// Keyed by the key's hash, computed once per call for both the shard
    /// and the table.
    windows: HashTable<Entry>,
    /// Size at which the next new key sweeps: sweeps are batched, so a flood
    /// costs amortized O(1) per key.
    sweep_at: usize,
}

#[derive(Debug)]
struct Entry {
    key: Box<str>,
    hash: u64,
    window: Window,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    count: u32,
    /// The `max` of the latest reservation, to tell how close the key is to
    /// its limit.
    max: u32,
    ends: Instant,
}

impl Window {
    fn reserve(&mut self, max: u32, now: Instant) -> Decision {
        self.max = max;
        if self.count < max {
            self.count += 1;
            Decision::Allowed {
                remaining: max - self.count,
            }
        } else {
            Decision::limited(self.ends.saturating_duration_since(now))
        }
    }

    /// Whether the key has reached half its limit (never evicted).
    fn attacked(&self) -> bool {
        u64::from(self.count) * 2 >= u64::from(self.max)
    }
}

impl Shard {
    fn reserve(
        &mut self,
        key: &str,
        hash: u64,
        limit: Limit,
        now: Instant,
        per_shard: usize,
    ) -> Decision {
        if let Some(e) = self.windows.find_mut(hash, |e| &*e.key == key) {
            if e.window.ends > now {
                return e.window.reserve(limit.max, now);
            }
            self.remove(key, hash);
        }
        if limit.max == 0 {
            return Decision::limited(limit.window);
        }
        if !self.make_room(now, per_shard) {
            tracing::warn!("rate-limit shard full of attacked keys; refusing a new key");
            let soonest = self.windows.iter().map(|e| e.window.ends).min();
            return Decision::limited(
                soonest.map_or(limit.window, |t| t.saturating_duration_since(now)),
            );
        }
        let mut window = Window {
            count: 0,
            max: limit.max,
            ends: now.checked_add(limit.window.min(MAX_WINDOW)).unwrap_or(now),
        };
        let decision = window.reserve(limit.max, now);
        let entry = Entry {
            key: key.into(),
            hash,
            window,
        };
        self.windows.insert_unique(hash, entry, |e| e.hash);
        decision
    }

    fn release(&mut self, key: &str, hash: u64, now: Instant) {
        if let Some(e) = self.windows.find_mut(hash, |e| &*e.key == key)
            && e.window.ends > now
        {
            e.window.count = e.window.count.saturating_sub(1);
        }
    }

    fn remove(&mut self, key: &str, hash: u64) {
        if let Ok(e) = self.windows.find_entry(hash, |e| &*e.key == key) {
            e.remove();
        }
    }

    /// Makes room for one new key; false when the shard is at its hard cap
    /// (twice its share) with nothing it may evict.
    fn make_room(&mut self, now: Instant, per_shard: usize) -> bool {
        if self.windows.len() < self.sweep_at.max(per_shard) {
            return true;
        }
        let slack = (per_shard / 4).max(1);
        let target = per_shard.saturating_sub(slack);
        self.sweep(now, target);
        // Whatever is left above `target` is attacked: sweep again only after
        // `slack` more keys, not on every new key.
        let hard_cap = 2 * per_shard;
        self.sweep_at = (self.windows.len() + slack).clamp(per_shard, hard_cap);
        self.windows.len() < hard_cap
    }

    /// Drops the expired windows, then, while more than `target` are left,
    /// windows that are not attacked, fewest events first, then
    /// soonest-ending (at least enough of them, or all there are).
    fn sweep(&mut self, now: Instant, target: usize) {
        self.windows.retain(|e| e.window.ends > now);
        let excess = self.windows.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut candidates: Vec<(u32, Instant)> = self
            .windows
            .iter()
            .map(|e| &e.window)
            .filter(|w| !w.attacked())
            .map(|w| (w.count, w.ends))
            .collect();
        // The last (count, end) to go.
        let threshold = if excess >= candidates.len() {
            candidates.iter().max().copied()
        } else {
            Some(*candidates.select_nth_unstable(excess - 1).1)
        };
        if let Some(t) = threshold {
            self.windows
                .retain(|e| e.window.attacked() || (e.window.count, e.window.ends) > t);
        }
    }
}

/// A per-process keyed hash: clients cannot aim keys at one shard, nor
/// collide them in a table.
fn key_hash(key: &str) -> u64 {
    static SEED: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    SEED.hash_one(key)
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryRateLimiter {
    /// A limiter that tracks about `max_keys` keys, and up to twice that
    /// many while attacked keys fill it (see the type's docs).
    pub fn with_capacity(max_keys: usize) -> Self {
        MemoryRateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).windows.len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key's hash and its shard. The shard takes bits the table does not
    /// use for its buckets (low bits) or tags (top 7).
    fn shard(&self, key: &str) -> (u64, &Mutex<Shard>) {
        let hash = key_hash(key);
        (hash, &self.shards[(hash >> 32) as usize % SHARDS])
    }

    fn reserve_now(&self, key: &str, limit: Limit) -> Decision {
        let (hash, shard) = self.shard(key);
        let now = Instant::now();
        lock(shard).reserve(key, hash, limit, now, self.per_shard)
    }

    fn release_now(&self, key: &str) {
        let (hash, shard) = self.shard(key);
        let now = Instant::now();
        lock(shard).release(key, hash, now);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned counter map is still a valid map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn reserve(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
        Ok(self.reserve_now(key, limit))
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.release_now(key);
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let (hash, shard) = self.shard(key);
        lock(shard).remove(key, hash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn allowed(remaining: u32) -> Decision {
        Decision::Allowed { remaining }
    }

    /// Shard calls with a nominal capacity of 8 keys.
    fn reserve(shard: &mut Shard, key: &str, limit: Limit, now: Instant) -> Decision {
        shard.reserve(key, key_hash(key), limit, now, 8)
    }

    fn release(shard: &mut Shard, key: &str, now: Instant) {
        shard.release(key, key_hash(key), now);
    }

    fn get<'a>(shard: &'a Shard, key: &str) -> Option<&'a Window> {
        let hash = key_hash(key);
        shard
            .windows
            .find(hash, |e| &*e.key == key)
            .map(|e| &e.window)
    }

    /// The scenario: a million fresh keys through a default limiter
    /// neither reset a key under attack nor lock out a newcomer.
    #[test]
    fn a_flood_of_fresh_keys_keeps_attacked_keys_and_admits_new_ones() {
        let limiter = MemoryRateLimiter::default();
        let window = Duration::from_secs(15 * 60);
        let login = Limit::new(5, window);
        let pair = Limit::new(2, window);
        // A login with three failures, and a key at 1 of 2: as few events as
        // any flood key and the soonest end, so first to go but for its
        // protection.
        let victim = "signin:login:victim@example.com";
        for remaining in [4, 3, 2] {
            assert_eq!(limiter.reserve_now(victim, login), allowed(remaining));
        }
        assert_eq!(limiter.reserve_now("pair", pair), allowed(1));
        for i in 0..1_000_000 {
            let key = format!("signin:login:flood{i}@example.com");
            assert_eq!(
                limiter.reserve_now(&key, login),
                allowed(4),
                "flood key {i}"
            );
        }
        assert!(
            limiter.len() <= 100_000,
            "memory stays at the nominal capacity: {} keys",
            limiter.len()
        );
        // (a) The attacked keys kept their counts.
        assert_eq!(limiter.reserve_now(victim, login), allowed(1));
        assert_eq!(limiter.reserve_now(victim, login), allowed(0));
        assert!(limiter.reserve_now(victim, login).is_limited());
        assert_eq!(limiter.reserve_now("pair", pair), allowed(0));
        assert!(limiter.reserve_now("pair", pair).is_limited());
        // (b) A newcomer is still let in.
        assert_eq!(
            limiter.reserve_now("signin:login:fresh@example.com", login),
            allowed(4)
        );
    }

    #[test]
    fn a_full_shard_evicts_expired_windows_before_live_ones() {
        let now = Instant::now();
        let mut shard = Shard::default();
        let short = Limit::new(10, Duration::from_secs(1));
        let long = Limit::new(10, HOUR);
        for i in 0..4 {
            reserve(&mut shard, &format!("old{i}"), short, now);
            reserve(&mut shard, &format!("live{i}"), long, now);
        }
        let later = now + Duration::from_secs(2);
        reserve(&mut shard, "new", long, later);
        assert!(
            (0..4).all(|i| get(&shard, &format!("live{i}")).is_some()),
            "live windows stay while expired ones can go"
        );
        assert!((0..4).all(|i| get(&shard, &format!("old{i}")).is_none()));
    }

    #[test]
    fn a_full_shard_evicts_the_fewest_hits_and_never_an_attacked_key() {
        let now = Instant::now();
        let mut shard = Shard::default();
        let limit = Limit::new(10, HOUR);
        // Eight keys with 1..=8 events; from 5 on they are at half the limit.
        for i in 1..=8u32 {
            for _ in 0..i {
                reserve(&mut shard, &format!("k{i}"), limit, now);
            }
        }
        reserve(&mut shard, "new", limit, now);
        // Down to 6 (8 - 8/4) before the insert: the two keys with the
        // fewest events went.
        assert!(get(&shard, "k1").is_none() && get(&shard, "k2").is_none());
        assert_eq!(shard.windows.len(), 7);
        for i in 3..=8u32 {
            assert_eq!(get(&shard, &format!("k{i}")).unwrap().count, i);
        }
        // Fill with more keys: the attacked ones (k5..k8) stay throughout.
        for j in 0..100 {
            reserve(&mut shard, &format!("flood{j}"), limit, now);
        }
        for i in 5..=8u32 {
            assert_eq!(get(&shard, &format!("k{i}")).unwrap().count, i, "k{i}");
        }
        assert!(shard.windows.len() <= 8);
    }

    #[test]
    fn a_shard_full_of_attacked_keys_grows_to_twice_then_refuses_new_keys() {
        let now = Instant::now();
        let mut shard = Shard::default();
        let limit = Limit::new(2, HOUR);
        // Each key at half its limit (1 of 2).
        for i in 0..16 {
            assert_eq!(
                reserve(&mut shard, &format!("a{i}"), limit, now),
                allowed(1)
            );
        }
        assert_eq!(shard.windows.len(), 16, "past the nominal 8, up to 16");
        let refused = reserve(&mut shard, "new", limit, now);
        assert!(refused.is_limited(), "{refused:?}");
        assert!(get(&shard, "new").is_none());
        // Known keys keep working and keep their counts.
        assert_eq!(reserve(&mut shard, "a0", limit, now), allowed(0));
        assert!(reserve(&mut shard, "a0", limit, now).is_limited());
        // A released key drops below half and becomes evictable again.
        release(&mut shard, "a1", now);
        assert_eq!(reserve(&mut shard, "new", limit, now), allowed(1));
        assert!(get(&shard, "a1").is_none());
        // Once the windows end, new keys get in again.
        let later = now + HOUR + Duration::from_secs(1);
        assert_eq!(reserve(&mut shard, "newer", limit, later), allowed(1));
        assert_eq!(shard.windows.len(), 1);
    }

    #[test]
    fn release_frees_exactly_one_slot_and_never_creates_or_extends_a_window() {
        let now = Instant::now();
        let mut shard = Shard::default();
        let limit = Limit::new(3, Duration::from_secs(60));
        release(&mut shard, "unknown", now);
        assert!(shard.windows.is_empty(), "release creates nothing");
        for remaining in [2, 1, 0] {
            assert_eq!(reserve(&mut shard, "k", limit, now), allowed(remaining));
        }
        assert!(reserve(&mut shard, "k", limit, now).is_limited());
        release(&mut shard, "k", now);
        assert_eq!(reserve(&mut shard, "k", limit, now), allowed(0));
        assert!(reserve(&mut shard, "k", limit, now).is_limited());
        let ends = get(&shard, "k").unwrap().ends;
        for _ in 0..10 {
            release(&mut shard, "k", now + Duration::from_secs(30));
        }
        assert_eq!(get(&shard, "k").unwrap().count, 0, "saturates at zero");
        assert_eq!(
            get(&shard, "k").unwrap().ends,
            ends,
            "the window is not moved"
        );
        for remaining in [2, 1, 0] {
            assert_eq!(reserve(&mut shard, "k", limit, now), allowed(remaining));
        }
        assert!(reserve(&mut shard, "k", limit, now).is_limited());
    }

    #[test]
    fn huge_windows_and_zero_limits_do_not_panic() {
        let limiter = MemoryRateLimiter::with_capacity(4);
        let huge = Limit::new(1, Duration::MAX);
        assert_eq!(limiter.reserve_now("huge", huge), allowed(0));
        assert!(limiter.reserve_now("huge", huge).is_limited());
        assert!(
            limiter
                .reserve_now("zero", Limit::new(0, Duration::from_secs(5)))
                .is_limited()
        );
        assert_eq!(limiter.len(), 1, "a refused new key is not stored");
    }

    /// N tasks on several threads race for one key: exactly `max` win, and
    /// each `remaining` is handed out once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_allow_exactly_max() {
        let limiter = Arc::new(MemoryRateLimiter::default());
        let limit = Limit::new(7, HOUR);
        for round in 0..20 {
            let key = format!("race{round}");
            let barrier = Arc::new(tokio::sync::Barrier::new(64));
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (limiter, barrier, key) = (limiter.clone(), barrier.clone(), key.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        limiter.reserve(&key, limit).await.unwrap()
                    })
                })
                .collect();
            let mut remaining = Vec::new();
            for t in tasks {
                if let Decision::Allowed { remaining: r } = t.await.unwrap() {
                    remaining.push(r);
                }
            }
            remaining.sort_unstable();
            assert_eq!(remaining, (0..7).collect::<Vec<_>>(), "round {round}");
            // A release after a success frees exactly one slot.
            limiter.release(&key).await.unwrap();
            assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(0));
            assert!(limiter.reserve(&key, limit).await.unwrap().is_limited());
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Reserve(usize),
        Release(usize),
        Reset(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..3usize).prop_map(Op::Reserve),
            1 => (0..3usize).prop_map(Op::Release),
            1 => (0..3usize).prop_map(Op::Reset),
        ]
    }

    proptest! {
        /// Any sequence of calls matches a plain counter per key that counts
        /// up to `max`, gives back down to zero, and is cleared by a reset.
        #[test]
        fn calls_match_a_saturating_counter(
            max in 0..5u32,
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let limiter = MemoryRateLimiter::default();
            let limit = Limit::new(max, HOUR);
            let mut model = [0u32; 3];
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                for op in ops {
                    match op {
                        Op::Reserve(k) => {
                            let got = limiter.reserve(&k.to_string(), limit).await.unwrap();
                            if model[k] < max {
                                model[k] += 1;
                                prop_assert_eq!(got, allowed(max - model[k]));
                            } else {
                                prop_assert!(got.is_limited());
                            }
                        }
                        Op::Release(k) => {
                            limiter.release(&k.to_string()).await.unwrap();
                            model[k] = model[k].saturating_sub(1);
                        }
                        Op::Reset(k) => {
                            limiter.reset(&k.to_string()).await.unwrap();
                            model[k] = 0;
                        }
                    }
                }
                Ok::<(), TestCaseError>(())
            })?;
        }
    }
}

#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
