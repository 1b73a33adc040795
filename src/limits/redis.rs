//! [`RateLimiter`] for [`RedisStore`]: counters shared by every instance that
//! uses the same Redis (one server or a Redis Cluster) and prefix. Each step
//! is one Lua script on one key, so it is atomic across processes in both
//! modes and needs no hash tag: on a cluster the counters spread over the
//! slots by their own names. Keys are `{prefix}rl:{key}` and expire with
//! their window. Build the limiter with [`RedisStore::connect`], which takes
//! `redis+cluster://` URLs too.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;

use super::{Decision, Limit, RateLimiter};
use crate::store::{RedisStore, StoreError};

/// Longest window sent to Redis (about 285 years), far below the point where
/// Redis rejects an expire time as out of range.
const MAX_WINDOW_MS: u64 = 1 << 53;

/// KEYS: counter. ARGV: max, window ms. Counts one event only while fewer
/// than `max` are counted (one atomic step, so concurrent callers cannot
/// overshoot). Returns {1, remaining, pttl} when counted, else
/// {0, count, pttl} (pttl -2 when there is no counter).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local raw = redis.call('GET', KEYS[1])
local c = 0
if raw then
  c = tonumber(raw)
  if not c then return redis.error_reply('ERR rate-limit counter is not a number') end
end
local max = tonumber(ARGV[1])
local t = redis.call('PTTL', KEYS[1])
if c < max then
  c = redis.call('INCR', KEYS[1])
  -- Only a new counter (or one without TTL) gets a window: a counter given
  -- back to 0 by RELEASE keeps its window.
  if not raw or t < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    t = tonumber(ARGV[2])
  end
  return {1, max - c, t}
end
if t == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  t = tonumber(ARGV[2])
end
return {0, c, t}
"#,
    )
});

/// KEYS: counter. Gives back one event: DECR only when the counter exists and
/// is above 0. The TTL is never touched (DECR keeps it).
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c and c > 0 then redis.call('DECR', KEYS[1]) end
return 0
"#,
    )
});

fn window_ms(limit: Limit) -> u64 {
    let ms = limit.window.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms)
        .unwrap_or(MAX_WINDOW_MS)
        .min(MAX_WINDOW_MS)
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn reserve(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
        let mut conn = self.connection();
        let (counted, n, ttl): (i64, i64, i64) = self
            .run(
                RESERVE
                    .key(self.limit_key(key))
                    .arg(limit.max)
                    .arg(window_ms(limit))
                    .invoke_async(&mut conn),
            )
            .await?;
        if counted == 1 {
            let remaining = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
            return Ok(Decision::Allowed { remaining });
        }
        // No counter (a zero limit): the whole window.
        let ttl = match u64::try_from(ttl) {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => limit.window,
        };
        Ok(Decision::limited(ttl))
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.connection();
        let _: i64 = self
            .run(RELEASE.key(self.limit_key(key)).invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.connection();
        self.run(
            ::redis::cmd("DEL")
                .arg(self.limit_key(key))
                .exec_async(&mut conn),
        )
        .await
    }
}
