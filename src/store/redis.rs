//! Redis backend: sessions ([`SessionStore`]) and shared fixed-window rate
//! limits (its [`RateLimiter`](crate::limits::RateLimiter) lives in
//! `limits/redis.rs`), on a single Redis server or on a Redis Cluster.
//!
//! Every key starts with a configurable prefix and carries a TTL, so Redis
//! expiry replaces purging. Compare-and-swap steps run as Lua scripts, which
//! makes them atomic across processes. Requires Redis 5 or later: a single
//! server, a primary with replicas, or a Redis Cluster (Redis 7 is tested).
//!
//! # One store, two connections
//!
//! A [`RedisStore`] talks through a connection that is either a
//! [`ConnectionManager`] (one server) or a [`ClusterConnection`] (a cluster,
//! routing each command by the slot of its first key and following `MOVED`
//! / `ASK`). Every command and script is the same in both modes, and so is
//! the key layout: a store can move from one server to a cluster by copying
//! its keys. [`RedisStore::connect`] picks the mode from the URL:
//! `redis://host:port/db` is a single server, `redis+cluster://host:port,host:port`
//! (any number of seed nodes, comma-separated; `rediss+cluster://` for TLS,
//! `user:password@` before the first seed applies to all) is a cluster.
//!
//! # Key layout and hash tags
//!
//! A Lua script may only touch keys of one cluster slot, and Redis decides a
//! key's slot by its *hash tag*, the text between the first `{` and the next
//! `}`. The session scripts touch a session and the index of its user's
//! sessions (creating a session adds it to the index, rotating extends the
//! index's TTL, revoking all of a user's sessions walks the index), so both
//! carry the **user id** as their tag. Tagging by session id instead would
//! spread one user's sessions over the cluster, and "sign out everywhere"
//! (revoking every session of a user) could then no longer be one atomic
//! script. The price is that a session id alone does not name its key, hence
//! a small owner lookup per session, tagged by the session id.
//!
//! `{p}` is the prefix, which must not contain `{` or `}` (it would change
//! the tags):
//!
//! - `{p}{u:<user_id>}:fam:<session_id>`: hash with `user`, `cur` (32 raw
//!   bytes), `rot`, `created`, `used`, `exp` (Unix ms), `revoked` (`0`/`1`),
//!   and `ua` and `ip` when known; expires at `exp`;
//! - `{p}{u:<user_id>}:sessions`: set of the user's session ids; expires at
//!   the latest `exp` of its sessions;
//! - `{p}sid:{<session_id>}`: the owner lookup, the session's user id;
//!   expires no earlier than the session;
//! - `{p}rl:<key>`: rate-limit counter (one key per script: no tag needed);
//!   expires when its window ends;
//! - `{p}{denied}`: the deny list of ended sessions, a sorted set of session
//!   ids scored by their `until` (Unix ms), trimmed on every write; expires
//!   with its latest entry. Each write is also published on the channel
//!   `{p}{denied}` (`"{until} {id}"`), which [`RedisStore::subscribe`]
//!   listens to on a dedicated pub/sub connection. Its own tag keeps it in
//!   one slot whatever the prefix.
//!
//! # The revocation channel on a cluster
//!
//! The deny list is one key, written by one script on the node that owns
//! its slot; the script `PUBLISH`es each entry. Classic `PUBLISH` (not the
//! sharded `SPUBLISH`) is cluster-wide: the node forwards the message over
//! the cluster bus to every other node, and each delivers it to its own
//! subscribers. So [`RedisStore::subscribe`] opens a plain pub/sub
//! connection to a single node, the first seed of the URL that answers, and
//! hears the writes of every instance whichever node they ran on. When that
//! node goes away the subscription ends; the reader reloads the list
//! ([`SessionStore::denied`], served by the cluster connection) and
//! subscribes again, trying the seeds in order. Sharded pub/sub would scale
//! better but binds subscribers to the slot owner and needs resubscribing
//! on resharding; one small channel does not need it.
//!
//! # What is not atomic on a cluster
//!
//! The owner lookup and the user's keys live in different slots, so three
//! operations take two steps (also on a single server, where the layout is
//! the same). Each writes in an order that leaves a safe state if the
//! process dies between the steps:
//!
//! - **create**: 1. the lookup (`SET NX`, which also enforces a unique
//!   session id), 2. the session and the index (one script). A crash in
//!   between leaves a lookup that points at no session: the id reads as
//!   absent and the lookup expires with the would-be session.
//! - **rotate**: 1. read the owner, extending the lookup to the new expiry,
//!   2. the compare-and-swap on the session and the index (one script). The
//!   swap itself stays atomic; a crash in between only leaves a lookup that
//!   outlives its session, which is harmless.
//! - **revoke one session** and **read one session**: 1. read the owner,
//!   2. act on the session. Nothing is written before step 2.
//!
//! Revoking every session of a user, listing them, and the rate-limit
//! scripts are single-slot and atomic in both modes. The session scripts
//! read the session keys of the user they were handed in the same slot (the
//! index names them); Redis Cluster allows this because they share the
//! slot of a declared key.
//!
//! Sessions written by releases before this layout (`{p}fam:<id>`) are not
//! read: their users sign in again.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterClientBuilder};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, Cmd, Pipeline, RedisFuture, RedisResult, Script, Value};
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

/// KEYS: owner lookup. ARGV: expiry to extend it to (Unix ms). Returns the
/// owner's user id, or nil.
static OWNER_EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{EXTEND_FN}
local user = redis.call('GET', KEYS[1])
if user then extend(KEYS[1], ARGV[1]) end
return user
"#
    ))
});

/// KEYS: session, user set. ARGV: id, user, cur, rot, created, exp, revoked,
/// the user's session-key prefix, used, ua, ip ('' when unknown). Returns 0
/// when the id is taken, else 1.
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

/// KEYS: session, user set. ARGV: expected, next, rotated_at, expires_at,
/// session id. Returns 1 when the swap happened, else 0.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{EXTEND_FN}
local f = redis.call('HMGET', KEYS[1], 'cur', 'revoked')
if f[1] ~= ARGV[1] or f[2] ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'rot', ARGV[3], 'used', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[5])
  extend(KEYS[2], ARGV[4])
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

/// KEYS: user set. ARGV: the user's session-key prefix, user id, id to keep
/// ('' for none). Returns the ids revoked.
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

/// The connection under a [`RedisStore`]: one server or a cluster. Both
/// speak [`ConnectionLike`], so every command is written once.
#[derive(Clone)]
pub(crate) enum Conn {
    /// A single server (or a primary), auto-reconnecting.
    Single(ConnectionManager),
    /// A Redis Cluster: commands go to the node that owns their first key's
    /// slot.
    Cluster(ClusterConnection),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither connection says anything useful (or safe) about itself.
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The seed nodes of a `redis+cluster://` or `rediss+cluster://` URL, each
/// as a plain `redis://` / `rediss://` URL; `None` for any other URL.
fn cluster_seeds(url: &str) -> Result<Option<Vec<String>>, StoreError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
        ("rediss", rest)
    } else {
        return Ok(None);
    };
    let invalid = |why: &str| StoreError::unavailable(format!("invalid cluster URL: {why}"));
    // A cluster has database 0 only; a trailing `/` or `/0` is tolerated.
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(path, "" | "0") {
        return Err(invalid("a cluster has no database other than 0"));
    }
    let (auth, hosts) = match authority.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), authority),
    };
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{auth}{h}"))
        .collect();
    if seeds.is_empty() {
        return Err(invalid("no seed node"));
    }
    Ok(Some(seeds))
}

/// Sessions and rate limits in Redis (one server or a cluster), shared by
/// every app instance that uses the same Redis and prefix.
///
/// Cloning is cheap: clones share one auto-reconnecting connection. Every
/// Redis failure, including a timeout, surfaces as
/// [`StoreError::Unavailable`]; no call waits longer than the
/// [deadline](RedisStore::with_deadline), on a cluster as on one server.
#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: Conn,
    /// What opens the pub/sub connection of [`SessionStore::subscribe`]:
    /// the server, or each seed of a cluster (tried in order). Empty (a
    /// store from [`RedisStore::new`], [`RedisStore::new_cluster`] or
    /// [`RedisStore::connect_cluster_with`]): no channel, instances poll.
    pubsub: Vec<Client>,
    prefix: Arc<str>,
    deadline: Duration,
}

impl RedisStore {
    /// Default connection timeout and default response timeout (2 s each).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to `url` with [`RedisStore::default_config`]; every key
    /// starts with `prefix` (for example `authkit:`; no `{` or `}`).
    ///
    /// `url` is either one server, `redis://127.0.0.1:6379/0`, or a Redis
    /// Cluster, `redis+cluster://10.0.0.1:6379,10.0.0.2:6379` (seed nodes,
    /// comma-separated; the rest of the cluster is discovered from them).
    ///
    /// Fails with [`StoreError::Unavailable`] when the URL is invalid or the
    /// server (every seed, for a cluster) cannot be reached within a few
    /// seconds.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, StoreError> {
        Self::connect_with(url, prefix, Self::default_config()).await
    }

    /// Like [`RedisStore::connect`] with your own connection settings. The
    /// [deadline](RedisStore::with_deadline) becomes the connection timeout
    /// plus the response timeout (each [`RedisStore::DEFAULT_TIMEOUT`] when
    /// unset). For a cluster URL the two timeouts and the number of retries
    /// carry over to the cluster client; use
    /// [`RedisStore::connect_cluster_with`] for every cluster setting.
    pub async fn connect_with(
        url: &str,
        prefix: impl Into<String>,
        config: ConnectionManagerConfig,
    ) -> Result<Self, StoreError> {
        let connection_timeout = config.connection_timeout().unwrap_or(Self::DEFAULT_TIMEOUT);
        let response_timeout = config.response_timeout().unwrap_or(Self::DEFAULT_TIMEOUT);
        let deadline = connection_timeout.saturating_add(response_timeout);
        if let Some(seeds) = cluster_seeds(url)? {
            let pubsub = seeds
                .iter()
                .map(|seed| Client::open(seed.as_str()))
                .collect::<RedisResult<Vec<_>>>()
                .map_err(StoreError::unavailable)?;
            let retries = u32::try_from(config.number_of_retries()).unwrap_or(u32::MAX);
            let builder = ClusterClient::builder(seeds)
                .connection_timeout(connection_timeout)
                .response_timeout(response_timeout)
                .retries(retries)
                .max_retry_wait(500);
            let mut store = Self::cluster(builder, prefix, deadline).await?;
            store.pubsub = pubsub;
            return Ok(store);
        }
        let client = Client::open(url).map_err(StoreError::unavailable)?;
        let conn = within(
            deadline,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        Ok(Self {
            conn: Conn::Single(conn),
            pubsub: vec![client],
            prefix: prefix.into().into(),
            deadline,
        })
    }

    /// Connects to a Redis Cluster configured by `builder` (seed nodes,
    /// timeouts, retries, TLS, credentials), without a revocation channel
    /// (the builder does not tell its seeds; [`RedisStore::connect`] with a
    /// `redis+cluster://` URL has one). The deadline defaults to twice
    /// [`RedisStore::DEFAULT_TIMEOUT`]; match it to the builder's timeouts
    /// with [`RedisStore::with_deadline`].
    pub async fn connect_cluster_with(
        builder: ClusterClientBuilder,
        prefix: impl Into<String>,
    ) -> Result<Self, StoreError> {
        // The builder hides its timeouts: assume the defaults.
        Self::cluster(builder, prefix, Self::DEFAULT_TIMEOUT.saturating_mul(2)).await
    }

    async fn cluster(
        builder: ClusterClientBuilder,
        prefix: impl Into<String>,
        deadline: Duration,
    ) -> Result<Self, StoreError> {
        let client = builder.build().map_err(StoreError::unavailable)?;
        let conn = within(deadline, client.get_async_connection()).await?;
        Ok(Self::new_cluster(conn, prefix).with_deadline(deadline))
    }

    /// Wraps an existing connection manager (one server); every key starts
    /// with `prefix`. The deadline defaults to twice
    /// [`RedisStore::DEFAULT_TIMEOUT`]. Such a store has no revocation
    /// channel (it cannot open a pub/sub connection): instances poll its
    /// deny list.
    pub fn new(manager: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn: Conn::Single(manager),
            pubsub: Vec::new(),
            prefix: prefix.into().into(),
            deadline: Self::DEFAULT_TIMEOUT.saturating_mul(2),
        }
    }

    /// Wraps an existing Redis Cluster connection; every key starts with
    /// `prefix`. The deadline defaults to twice
    /// [`RedisStore::DEFAULT_TIMEOUT`]. Like [`RedisStore::new`], such a
    /// store has no revocation channel.
    pub fn new_cluster(conn: ClusterConnection, prefix: impl Into<String>) -> Self {
        Self {
            conn: Conn::Cluster(conn),
            pubsub: Vec::new(),
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

    /// Sets the longest time any single call may take, reconnection (and,
    /// on a cluster, redirection) included; past it the call fails with
    /// [`StoreError::Unavailable`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The prefix of every key this store touches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// `{p}{u:<user>}:`, the start of every key of one user: the hash tag
    /// puts them all in one slot.
    fn user_tag(&self, user_id: &str) -> String {
        format!("{}{{u:{user_id}}}:", self.prefix)
    }

    fn session_key(&self, user_id: &str, id: &str) -> String {
        format!("{}fam:{id}", self.user_tag(user_id))
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}sessions", self.user_tag(user_id))
    }

    fn owner_key(&self, id: &str) -> String {
        format!("{}sid:{{{id}}}", self.prefix)
    }

    /// The deny list's key, which is also its channel.
    fn denied_key(&self) -> String {
        format!("{}{{denied}}", self.prefix)
    }

    pub(crate) fn limit_key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }

    /// A handle on the shared connection.
    pub(crate) fn connection(&self) -> Conn {
        self.conn.clone()
    }

    /// Runs one call under the store's deadline.
    pub(crate) async fn run<T>(
        &self,
        fut: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        within(self.deadline, fut).await
    }

    /// The user id owning session `id`, if the session (or its lookup)
    /// still exists; with `extend_to`, the lookup lives at least that long.
    async fn owner(
        &self,
        conn: &mut Conn,
        id: &str,
        extend_to: Option<UnixMillis>,
    ) -> RedisResult<Option<String>> {
        match extend_to {
            Some(at) => {
                OWNER_EXTEND
                    .key(self.owner_key(id))
                    .arg(at)
                    .invoke_async(conn)
                    .await
            }
            None => {
                ::redis::cmd("GET")
                    .arg(self.owner_key(id))
                    .query_async(conn)
                    .await
            }
        }
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
        let user = &session.user_id;
        // Step 1, the owner lookup: `SET NX` claims the id cluster-wide. A
        // crash before step 2 leaves a lookup to no session (reads as absent).
        let claimed: Option<String> = self
            .run(
                ::redis::cmd("SET")
                    .arg(self.owner_key(&session.id))
                    .arg(user)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(session.expires_at)
                    .query_async(&mut conn),
            )
            .await?;
        if claimed.is_none() {
            return Err(StoreError::Conflict("session id"));
        }
        // Step 2, the session and its user's index: one slot, one script.
        let created: i64 = self
            .run(
                CREATE
                    .key(self.session_key(user, &session.id))
                    .key(self.user_key(user))
                    .arg(&session.id)
                    .arg(user)
                    .arg(&session.current_hash[..])
                    .arg(session.rotated_at)
                    .arg(session.created_at)
                    .arg(session.expires_at)
                    .arg(if session.revoked { "1" } else { "0" })
                    .arg(self.session_key(user, ""))
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
        // Two round trips (owner, then the session) under one deadline.
        let fields = self
            .run(async {
                let Some(user) = self.owner(&mut conn, id, None).await? else {
                    return Ok(None);
                };
                ::redis::cmd("HMGET")
                    .arg(self.session_key(&user, id))
                    .arg(&SESSION_FIELDS)
                    .query_async::<Vec<Option<Vec<u8>>>>(&mut conn)
                    .await
                    .map(Some)
            })
            .await?;
        match fields {
            Some(fields) => decode_session(id, fields),
            None => Ok(None),
        }
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let id = rotation.session_id;
        let swapped: i64 = self
            .run(async {
                // Extending the lookup first: if the swap then fails or never
                // runs, the lookup merely outlives its session.
                let Some(user) = self.owner(&mut conn, id, Some(rotation.expires_at)).await? else {
                    return Ok(0);
                };
                ROTATE
                    .key(self.session_key(&user, id))
                    .key(self.user_key(&user))
                    .arg(&rotation.expected[..])
                    .arg(&rotation.next[..])
                    .arg(rotation.rotated_at)
                    .arg(rotation.expires_at)
                    .arg(id)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(swapped == 1)
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let was_live: i64 = self
            .run(async {
                let Some(user) = self.owner(&mut conn, id, None).await? else {
                    return Ok(0);
                };
                REVOKE
                    .key(self.session_key(&user, id))
                    .invoke_async(&mut conn)
                    .await
            })
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
                    .arg(self.session_key(user_id, ""))
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
        // Two round trips under one deadline: the ids, then every session
        // (one pipeline: all in the user's slot).
        let (ids, rows) = self
            .run(async {
                let ids: Vec<String> = ::redis::cmd("SMEMBERS")
                    .arg(self.user_key(user_id))
                    .query_async(&mut conn)
                    .await?;
                let mut pipe = ::redis::pipe();
                for id in &ids {
                    pipe.cmd("HMGET")
                        .arg(self.session_key(user_id, id))
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
        // On a cluster any node hears every classic PUBLISH: the first seed
        // that answers will do.
        let mut failure = None;
        let mut opened = None;
        for client in &self.pubsub {
            match within(self.deadline, client.get_async_pubsub()).await {
                Ok(pubsub) => {
                    opened = Some(pubsub);
                    break;
                }
                Err(err) => failure = Some(err),
            }
        }
        let pubsub = match (opened, failure) {
            (Some(pubsub), _) => pubsub,
            (None, Some(err)) => return Err(err),
            (None, None) => return Ok(None),
        };
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

#[cfg(test)]
mod tests {
    use super::cluster_seeds;

    #[test]
    fn cluster_urls_become_seed_lists() {
        assert_eq!(cluster_seeds("redis://127.0.0.1:6379/0").unwrap(), None);
        assert_eq!(
            cluster_seeds("redis+cluster://a:7000, b:7001,").unwrap(),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://u:p@a:7000,b:7001/").unwrap(),
            Some(vec![
                "rediss://u:p@a:7000".to_owned(),
                "rediss://u:p@b:7001".to_owned()
            ])
        );
        assert!(cluster_seeds("redis+cluster://a:7000/2").is_err());
        assert!(cluster_seeds("redis+cluster://").is_err());
    }
}
