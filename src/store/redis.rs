//! Redis backend: sessions ([`SessionStore`]) and shared fixed-window rate
//! limits (its [`RateLimiter`](crate::limits::RateLimiter) lives in
//! `limits/redis.rs`).
//!
//! Every key starts with a configurable prefix and carries a TTL, so Redis
//! expiry replaces purging. Compare-and-swap steps run as Lua scripts, which
//! makes them atomic across processes. Requires Redis 5 or later (standalone
//! or a primary with replicas; not Redis Cluster).
//!
//! Key layout (`{p}` is the prefix):
//!
//! - `{p}fam:{session_id}`: hash with `user`, `cur` (32 raw bytes), `rot`,
//!   `created`, `used`, `exp` (Unix ms), `revoked` (`0`/`1`), and `ua` and
//!   `ip` when known; expires at `exp`;
//! - `{p}user:{user_id}`: set of the user's session ids; expires at the latest
//!   `exp` of its sessions;
//! - `{p}rl:{key}`: rate-limit counter; expires when its window ends;
//! - `{p}denied`: the deny list of ended sessions, a sorted set of session
//!   ids scored by their `until` (Unix ms), trimmed on every write; expires
//!   with its latest entry. Each write is also published on the channel
//!   `{p}denied` (`"{until} {id}"`), which [`RedisStore::subscribe`]
//!   listens to on a dedicated pub/sub connection.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisResult, Script};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::store::{
    DENIALS_BUFFER, Denial, Denials, Rotation, Session, SessionStore, StoreError, UnixMillis,
};

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

/// KEYS: session, user set. ARGV: id, user, cur, rot, created, exp, revoked,
/// session-key prefix, used, ua, ip ('' when unknown). Returns 0 when the id
/// is taken, else 1.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'cur', ARGV[3], 'rot', ARGV[4],
  'created', ARGV[5], 'exp', ARGV[6], 'revoked', ARGV[7], 'used', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'ua', ARGV[10]) end
if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'ip', ARGV[11]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[1])
-- Drop ids of sessions that are gone; expire the set with the latest session.
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

/// KEYS: session. ARGV: expected, next, rotated_at, expires_at, user-set
/// prefix, session id. Returns 1 when the swap happened, else 0.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{EXTEND_FN}
local f = redis.call('HMGET', KEYS[1], 'cur', 'revoked', 'user')
if f[1] ~= ARGV[1] or f[2] ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'rot', ARGV[3], 'used', ARGV[3], 'exp', ARGV[4])
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

/// KEYS: session. Returns 1 when the session was live (and is now revoked).
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

/// KEYS: user set. ARGV: session-key prefix, user id, id to keep ('' for
/// none). Returns the ids revoked.
static REVOKE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 'user', 'revoked')
  if not f[1] then
    redis.call('SREM', KEYS[1], id)
  elseif f[1] == ARGV[2] and f[2] == '0' and id ~= ARGV[3] then
    redis.call('HSET', key, 'revoked', '1')
    out[#out + 1] = id
  end
end
return out
"#,
    )
});

/// KEYS: deny list. ARGV: now, until, channel, ids... Trims entries that
/// ran out, adds the ids (keeping a later `until`), publishes each.
static DENY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{EXTEND_FN}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 4, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not s or tonumber(s) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
  end
  redis.call('PUBLISH', ARGV[3], ARGV[2] .. ' ' .. ARGV[i])
end
extend(KEYS[1], ARGV[2])
return 1
"#
    ))
});

/// How often a subscription pings its pub/sub connection: a silently dead
/// connection ends the subscription within this (plus the deadline).
const PUBSUB_PING: Duration = Duration::from_secs(5);

/// Sessions and rate limits in Redis, shared by every app instance
/// that uses the same server and prefix.
///
/// Cloning is cheap: clones share one auto-reconnecting connection. Every
/// Redis failure, including a timeout, surfaces as
/// [`StoreError::Unavailable`]; no call waits longer than the
/// [deadline](RedisStore::with_deadline).
#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// Opens the pub/sub connection of [`SessionStore::subscribe`]; `None`
    /// (a store from [`RedisStore::new`]): no channel, instances poll.
    pubsub: Option<Client>,
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
        let conn = within(
            deadline,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        Ok(Self {
            conn,
            pubsub: Some(client),
            prefix: prefix.into().into(),
            deadline,
        })
    }

    /// Wraps an existing connection manager; every key starts with `prefix`.
    /// The deadline defaults to twice [`RedisStore::DEFAULT_TIMEOUT`]. Such
    /// a store has no revocation channel (it cannot open a pub/sub
    /// connection): instances poll its deny list.
    pub fn new(manager: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn: manager,
            pubsub: None,
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

    fn session_key(&self, id: &str) -> String {
        format!("{}fam:{id}", self.prefix)
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}user:{user_id}", self.prefix)
    }

    /// The deny list's key, which is also its channel.
    fn denied_key(&self) -> String {
        format!("{}denied", self.prefix)
    }

    pub(crate) fn limit_key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }

    /// A handle on the shared connection.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one call under the store's deadline.
    pub(crate) async fn run<T>(
        &self,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
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
    StoreError::unavailable(format!("corrupt redis record for session {id:?}: {what}"))
}

/// The fields [`decode_session`] reads, in its order.
const SESSION_FIELDS: [&str; 9] = [
    "user", "cur", "rot", "created", "exp", "revoked", "used", "ua", "ip",
];

fn parse_int(id: &str, field: &str, raw: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| corrupt(id, &format!("`{field}` is not an integer")))
}

fn decode_session(id: &str, fields: Vec<Option<Vec<u8>>>) -> Result<Option<Session>, StoreError> {
    if fields.iter().all(Option::is_none) {
        return Ok(None);
    }
    let [user, cur, rot, created, exp, revoked, used, ua, ip]: [Option<Vec<u8>>; 9] = fields
        .try_into()
        .map_err(|_| corrupt(id, "unexpected HMGET reply"))?;
    let field = |name: &str, value: Option<Vec<u8>>| {
        value.ok_or_else(|| corrupt(id, &format!("missing `{name}`")))
    };
    let text = |name: &str, value: Vec<u8>| {
        String::from_utf8(value).map_err(|_| corrupt(id, &format!("`{name}` is not UTF-8")))
    };
    let current_hash: [u8; 32] = field("cur", cur)?
        .try_into()
        .map_err(|_| corrupt(id, "`cur` is not 32 bytes"))?;
    let revoked = match field("revoked", revoked)?.as_slice() {
        b"0" => false,
        b"1" => true,
        _ => return Err(corrupt(id, "`revoked` is not 0 or 1")),
    };
    let rotated_at = parse_int(id, "rot", &field("rot", rot)?)?;
    let created_at = parse_int(id, "created", &field("created", created)?)?;
    // Sessions written before `used` existed: their last rotation or start.
    let last_used_at = match used {
        Some(raw) => parse_int(id, "used", &raw)?,
        None => created_at.max(rotated_at),
    };
    Ok(Some(Session {
        id: id.to_owned(),
        user_id: text("user", field("user", user)?)?,
        current_hash,
        rotated_at,
        created_at,
        last_used_at,
        expires_at: parse_int(id, "exp", &field("exp", exp)?)?,
        revoked,
        user_agent: ua.map(|v| text("ua", v)).transpose()?,
        ip: ip.map(|v| text("ip", v)).transpose()?,
    }))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let created: i64 = self
            .run(
                CREATE
                    .key(self.session_key(&session.id))
                    .key(self.user_key(&session.user_id))
                    .arg(&session.id)
                    .arg(&session.user_id)
                    .arg(&session.current_hash[..])
                    .arg(session.rotated_at)
                    .arg(session.created_at)
                    .arg(session.expires_at)
                    .arg(if session.revoked { "1" } else { "0" })
                    .arg(self.session_key(""))
                    .arg(session.last_used_at)
                    .arg(session.user_agent.as_deref().unwrap_or(""))
                    .arg(session.ip.as_deref().unwrap_or(""))
                    .invoke_async(&mut conn),
            )
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("session id"))
        }
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: Vec<Option<Vec<u8>>> = self
            .run(
                ::redis::cmd("HMGET")
                    .arg(self.session_key(id))
                    .arg(&SESSION_FIELDS)
                    .query_async(&mut conn),
            )
            .await?;
        decode_session(id, fields)
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let swapped: i64 = self
            .run(
                ROTATE
                    .key(self.session_key(rotation.session_id))
                    .arg(&rotation.expected[..])
                    .arg(&rotation.next[..])
                    .arg(rotation.rotated_at)
                    .arg(rotation.expires_at)
                    .arg(self.user_key(""))
                    .arg(rotation.session_id)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(swapped == 1)
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let was_live: i64 = self
            .run(REVOKE.key(self.session_key(id)).invoke_async(&mut conn))
            .await?;
        Ok(was_live == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut ids: Vec<String> = self
            .run(
                REVOKE_USER
                    .key(self.user_key(user_id))
                    .arg(self.session_key(""))
                    .arg(user_id)
                    .arg(except.unwrap_or(""))
                    .invoke_async(&mut conn),
            )
            .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn.clone();
        // Two round trips under one deadline: the ids, then every session.
        let (ids, rows) = self
            .run(async {
                let ids: Vec<String> = ::redis::cmd("SMEMBERS")
                    .arg(self.user_key(user_id))
                    .query_async(&mut conn)
                    .await?;
                let mut pipe = ::redis::pipe();
                for id in &ids {
                    pipe.cmd("HMGET")
                        .arg(self.session_key(id))
                        .arg(&SESSION_FIELDS);
                }
                let rows: Vec<Vec<Option<Vec<u8>>>> = if ids.is_empty() {
                    Vec::new()
                } else {
                    pipe.query_async(&mut conn).await?
                };
                Ok((ids, rows))
            })
            .await?;
        let mut found = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(rows) {
            if let Some(session) = decode_session(id, fields)?
                && session.user_id == user_id
                && session.is_live(now)
            {
                found.push(session);
            }
        }
        crate::store::newest_first(&mut found);
        Ok(found)
    }

    async fn purge_expired(&self, _now: UnixMillis) -> Result<u64, StoreError> {
        // Every key expires with its session: Redis purges on its own.
        Ok(0)
    }

    async fn deny(&self, ids: &[String], until: UnixMillis) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let key = self.denied_key();
        let _: i64 = self
            .run(
                DENY.key(&key)
                    .arg(crate::time::now_millis())
                    .arg(until)
                    .arg(&key)
                    .arg(ids)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    async fn denied(&self, after: UnixMillis) -> Result<Vec<Denial>, StoreError> {
        let mut conn = self.conn.clone();
        let rows: Vec<(String, f64)> = self
            .run(
                ::redis::cmd("ZRANGEBYSCORE")
                    .arg(self.denied_key())
                    .arg(format!("({after}"))
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .query_async(&mut conn),
            )
            .await?;
        // Scores are whole milliseconds, exact in an f64.
        #[allow(clippy::cast_possible_truncation)]
        Ok(rows
            .into_iter()
            .map(|(id, until)| Denial {
                id,
                until: until as i64,
            })
            .collect())
    }

    async fn subscribe(&self) -> Result<Option<Denials>, StoreError> {
        let Some(client) = &self.pubsub else {
            return Ok(None);
        };
        let pubsub = within(self.deadline, client.get_async_pubsub()).await?;
        let (mut sink, mut messages) = pubsub.split();
        within(self.deadline, sink.subscribe(self.denied_key())).await?;
        let (to, rx) = mpsc::channel(DENIALS_BUFFER);
        let deadline = self.deadline;
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + PUBSUB_PING;
            let mut ping = tokio::time::interval_at(start, PUBSUB_PING);
            loop {
                tokio::select! {
                    // The reader went away.
                    () = to.closed() => return,
                    msg = messages.next() => {
                        // `None`: the connection is gone.
                        let Some(msg) = msg else { return };
                        let denial = msg
                            .get_payload::<String>()
                            .ok()
                            .and_then(|m| crate::store::parse_denial(&m));
                        // A full reader: end, so that it reloads.
                        if let Some(denial) = denial
                            && to.try_send(denial).is_err()
                        {
                            return;
                        }
                    }
                    _ = ping.tick() => {
                        // In subscribed mode the reply is not a plain PONG.
                        if within(deadline, sink.ping::<::redis::Value>()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Some(rx))
    }
}
