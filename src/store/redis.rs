//! Redis backend: refresh-token families ([`RefreshStore`]) and shared
//! fixed-window rate limits ([`RateLimiter`]).
//!
//! Every key starts with a configurable prefix and carries a TTL, so Redis
//! expiry replaces purging. Compare-and-swap steps run as Lua scripts, which
//! makes them atomic across processes. Requires Redis 5 or later (standalone
//! or a primary with replicas; not Redis Cluster).
//!
//! Key layout (`{p}` is the prefix):
//!
//! - `{p}fam:{family_id}`: hash with `user`, `cur` (32 raw bytes), `rot`,
//!   `created`, `exp` (Unix ms) and `revoked` (`0`/`1`); expires at `exp`;
//! - `{p}user:{user_id}`: set of the user's family ids; expires at the latest
//!   `exp` of its families;
//! - `{p}rl:{key}`: rate-limit counter; expires when its window ends.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisResult, Script};
use async_trait::async_trait;

use crate::rate_limit::{Decision, Limit, RateLimiter};
use crate::store::{Family, RefreshStore, Rotation, StoreError, UnixMillis};

/// Longest rate-limit window sent to Redis (about 285 years), far below the
/// point where Redis rejects an expire time as out of range.
const MAX_WINDOW_MS: u64 = 1 << 53;

/// Shared Lua helper: makes `key` live at least until `at` (a Unix-ms string).
const EXTEND_FN: &str = r#"
local function extend(key, at)
  local pttl = redis.call('PTTL', key)
  if pttl == -2 then return end
  if pttl >= 0 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if tonumber(at) <= now + pttl then return end
  end
  redis.call('PEXPIREAT', key, at)
end
"#;

/// KEYS: family, user set. ARGV: id, user, cur, rot, created, exp, revoked,
/// family-key prefix. Returns 0 when the id is taken, else 1.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'cur', ARGV[3], 'rot', ARGV[4],
  'created', ARGV[5], 'exp', ARGV[6], 'revoked', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[1])
-- Drop ids of families that are gone; expire the set with the latest family.
local max_s, max_n = nil, nil
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local exp = redis.call('HGET', ARGV[8] .. id, 'exp')
  if not exp then
    redis.call('SREM', KEYS[2], id)
  else
    local n = tonumber(exp)
    if n and (not max_n or n > max_n) then max_s, max_n = exp, n end
  end
end
if max_s then redis.call('PEXPIREAT', KEYS[2], max_s) end
return 1
"#,
    )
});

/// KEYS: family. ARGV: expected, next, rotated_at, expires_at, user-set
/// prefix, family id. Returns 1 when the swap happened, else 0.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{EXTEND_FN}
local f = redis.call('HMGET', KEYS[1], 'cur', 'revoked', 'user')
if f[1] ~= ARGV[1] or f[2] ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'rot', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if f[3] and redis.call('EXISTS', KEYS[1]) == 1 then
  local set = ARGV[5] .. f[3]
  redis.call('SADD', set, ARGV[6])
  extend(set, ARGV[4])
end
return 1
"#
    ))
});

/// KEYS: family. Returns 1 when the family was live (and is now revoked).
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'revoked') == '0' then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 1
end
return 0
"#,
    )
});

/// KEYS: user set. ARGV: family-key prefix, user id. Returns the ids revoked.
static REVOKE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 'user', 'revoked')
  if not f[1] then
    redis.call('SREM', KEYS[1], id)
  elseif f[1] == ARGV[2] and f[2] == '0' then
    redis.call('HSET', key, 'revoked', '1')
    out[#out + 1] = id
  end
end
return out
"#,
    )
});

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

/// Refresh families and rate limits in Redis, shared by every app instance
/// that uses the same server and prefix.
///
/// Cloning is cheap: clones share one auto-reconnecting connection. Every
/// Redis failure, including a timeout, surfaces as
/// [`StoreError::Unavailable`]; no call waits longer than the
/// [deadline](RedisStore::with_deadline).
#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    deadline: Duration,
}

impl RedisStore {
    /// Default connection timeout and default response timeout (2 s each).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to `url` (for example `redis://127.0.0.1:6379/0`) with
    /// [`RedisStore::default_config`]; every key starts with `prefix` (for
    /// example `authkit:`).
    ///
    /// Fails with [`StoreError::Unavailable`] when the URL is invalid or the
    /// server cannot be reached within a few seconds.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Self::connect_with(url, prefix, Self::default_config()).await
    }

    /// Like [`RedisStore::connect`] with your own connection settings. The
    /// [deadline](RedisStore::with_deadline) becomes the connection timeout
    /// plus the response timeout (each [`RedisStore::DEFAULT_TIMEOUT`] when
    /// unset).
    pub async fn connect_with(
        url: &str,
        prefix: impl Into<String>,
        config: ConnectionManagerConfig,
    ) -> Result<Self, StoreError> {
        let deadline = config
            .connection_timeout()
            .unwrap_or(Self::DEFAULT_TIMEOUT)
            .saturating_add(config.response_timeout().unwrap_or(Self::DEFAULT_TIMEOUT));
        let client = Client::open(url).map_err(StoreError::unavailable)?;
        let conn = within(deadline, ConnectionManager::new_with_config(client, config)).await?;
        Ok(Self {
            conn,
            prefix: prefix.into().into(),
            deadline,
        })
    }

    /// Wraps an existing connection manager; every key starts with `prefix`.
    /// The deadline defaults to twice [`RedisStore::DEFAULT_TIMEOUT`].
    pub fn new(manager: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn: manager,
            prefix: prefix.into().into(),
            deadline: Self::DEFAULT_TIMEOUT.saturating_mul(2),
        }
    }

    /// The settings [`RedisStore::connect`] uses: 2 s connection and response
    /// timeouts, and at most two quick reconnection retries, so a dead
    /// server yields an error in seconds instead of a hang.
    pub fn default_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::DEFAULT_TIMEOUT))
            .set_response_timeout(Some(Self::DEFAULT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500))
    }

    /// Sets the longest time any single call may take, reconnection
    /// included; past it the call fails with [`StoreError::Unavailable`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The prefix of every key this store touches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn family_key(&self, id: &str) -> String {
        format!("{}fam:{id}", self.prefix)
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.prefix)
    }

    fn limit_key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }

    async fn run<T>(&self, fut: impl Future<Output = RedisResult<T>>) -> Result<T, StoreError> {
        within(self.deadline, fut).await
    }
}

/// Runs a Redis call under `deadline`, mapping every failure to
/// [`StoreError::Unavailable`].
async fn within<T>(
    deadline: Duration,
    fut: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(StoreError::unavailable(err)),
        Err(_) => Err(StoreError::unavailable(format!(
            "redis call timed out after {} ms",
            deadline.as_millis()
        ))),
    }
}

fn corrupt(id: &str, what: &str) -> StoreError {
    StoreError::unavailable(format!("corrupt redis record for family {id:?}: {what}"))
}

fn parse_int(id: &str, field: &str, raw: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| corrupt(id, &format!("`{field}` is not an integer")))
}

fn decode_family(id: &str, fields: Vec<Option<Vec<u8>>>) -> Result<Option<Family>, StoreError> {
    if fields.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [user, cur, rot, created, exp, revoked]: [Option<Vec<u8>>; 6] = fields
        .try_into()
        .map_err(|_| corrupt(id, "unexpected HMGET reply"))?;
    let field = |name: &str, value: Option<Vec<u8>>| {
        value.ok_or_else(|| corrupt(id, &format!("missing `{name}`")))
    };
    let user =
        String::from_utf8(field("user", user)?).map_err(|_| corrupt(id, "`user` is not UTF-8"))?;
    let current_hash: [u8; 32] = field("cur", cur)?
        .try_into()
        .map_err(|_| corrupt(id, "`cur` is not 32 bytes"))?;
    let revoked = match field("revoked", revoked)?.as_slice() {
        b"0" => false,
        b"1" => true,
        _ => return Err(corrupt(id, "`revoked` is not 0 or 1")),
    };
    Ok(Some(Family {
        id: id.to_owned(),
        user_id: user,
        current_hash,
        rotated_at: parse_int(id, "rot", &field("rot", rot)?)?,
        created_at: parse_int(id, "created", &field("created", created)?)?,
        expires_at: parse_int(id, "exp", &field("exp", exp)?)?,
        revoked,
    }))
}

fn window_ms(limit: Limit) -> u64 {
    let ms = limit.window.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms)
        .unwrap_or(MAX_WINDOW_MS)
        .min(MAX_WINDOW_MS)
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create_family(&self, family: &Family) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let created: i64 = self
            .run(
                CREATE
                    .key(self.family_key(&family.id))
                    .key(self.user_key(&family.user_id))
                    .arg(&family.id)
                    .arg(&family.user_id)
                    .arg(&family.current_hash[..])
                    .arg(family.rotated_at)
                    .arg(family.created_at)
                    .arg(family.expires_at)
                    .arg(if family.revoked { "1" } else { "0" })
                    .arg(self.family_key(""))
                    .invoke_async(&mut conn),
            )
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("family id already exists"))
        }
    }

    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: Vec<Option<Vec<u8>>> = self
            .run(
                ::redis::cmd("HMGET")
                    .arg(self.family_key(id))
                    .arg(&["user", "cur", "rot", "created", "exp", "revoked"])
                    .query_async(&mut conn),
            )
            .await?;
        decode_family(id, fields)
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let swapped: i64 = self
            .run(
                ROTATE
                    .key(self.family_key(rotation.family_id))
                    .arg(&rotation.expected[..])
                    .arg(&rotation.next[..])
                    .arg(rotation.rotated_at)
                    .arg(rotation.expires_at)
                    .arg(self.user_key(""))
                    .arg(rotation.family_id)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(swapped == 1)
    }

    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let was_live: i64 = self
            .run(REVOKE.key(self.family_key(id)).invoke_async(&mut conn))
            .await?;
        Ok(was_live == 1)
    }

    async fn revoke_user_families(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = self
            .run(
                REVOKE_USER
                    .key(self.user_key(user_id))
                    .arg(self.family_key(""))
                    .arg(user_id)
                    .invoke_async(&mut conn),
            )
            .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn purge_expired(&self, _now: UnixMillis) -> Result<u64, StoreError> {
        // Every key expires with its family: Redis purges on its own.
        Ok(0)
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn reserve(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
        let mut conn = self.conn.clone();
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
        let ttl = if ttl < 0 { limit.window } else { millis(ttl) };
        Ok(Decision::limited(ttl))
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .run(RELEASE.key(self.limit_key(key)).invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            ::redis::cmd("DEL")
                .arg(self.limit_key(key))
                .exec_async(&mut conn),
        )
        .await
    }
}
