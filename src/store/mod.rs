//! Where state lives: two small async traits, their records, and the stores.
//!
//! - [`UserStore`]: accounts, their password hashes, and the one-time codes
//!   pending for them (one per user and [`CodePurpose`]);
//! - [`SessionStore`]: sessions (one per sign-in) with the compare-and-swap
//!   on their live refresh token that makes rotation safe under races, and
//!   the shared deny list of ended sessions ([`SessionStore::deny`]) with
//!   the channel that announces it ([`SessionStore::subscribe`]).
//!
//! | store | users | sessions | rate limits | feature |
//! |---|---|---|---|---|
//! | [`MemoryStore`] | yes | yes | ([`MemoryRateLimiter`](crate::limits::MemoryRateLimiter)) | |
//! | `SqliteStore` | yes | yes | yes | `sqlite` |
//! | `PostgresStore` | yes | yes | yes | `postgres` |
//! | `RedisStore` | | yes | yes | `redis` |
//!
//! Every store passes one conformance suite, which the crate ships behind
//! the `testing` feature so that a store of your own can run it too (see
//! `axum_authkit::testing`).
//!
//! Times are Unix milliseconds ([`UnixMillis`]) throughout, so every backend
//! stores plain integers. Secrets (refresh tokens, codes) reach a store only
//! as hashes ([`SecretHash`]).

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// A keyed or plain SHA-256 of a secret (refresh token, one-time code):
/// stores never see the secret itself.
pub type SecretHash = [u8; 32];

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was violated (for users: the e-mail is taken).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The record the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// The backend could not be reached, failed, or missed its deadline; the
    /// operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend error as [`StoreError::Unavailable`].
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable(err.into())
    }
}

/// The lookup key of an e-mail address, on which stores enforce uniqueness:
/// the lower-cased local part and the IDNA (punycode) form of the domain, so
/// `Alice@Bücher.example` and `alice@xn--bcher-kva.example` are one account.
pub fn email_key(email: &str) -> String {
    crate::address::key_of(email)
}

/// A user account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Stable identifier (a UUID string); the access token's `sub`.
    pub id: String,
    /// The address as the user typed it (trimmed).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// Whether the address was proven with a mailed code.
    pub email_verified: bool,
    /// A disabled user can neither sign in nor refresh.
    pub disabled: bool,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// What [`UserStore::create_user`] needs.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// The address as typed (trimmed).
    pub email: String,
    /// Its [`email_key`]: the uniqueness and lookup key.
    pub email_key: String,
    /// Trimmed display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// What a one-time code is for. A user has at most one pending code per
/// purpose; a new one replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodePurpose {
    /// Proving the account's address (`verify-email/`).
    VerifyEmail,
    /// Setting a new password without the old one (`password-reset/`).
    ResetPassword,
    /// Proving a new address before it replaces the old one (`change-email/`).
    ChangeEmail,
}

impl CodePurpose {
    /// Every purpose.
    pub const ALL: [CodePurpose; 3] = [
        CodePurpose::VerifyEmail,
        CodePurpose::ResetPassword,
        CodePurpose::ChangeEmail,
    ];

    /// The stored name (`verify_email`, `reset_password`, `change_email`).
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::VerifyEmail => "verify_email",
            CodePurpose::ResetPassword => "reset_password",
            CodePurpose::ChangeEmail => "change_email",
        }
    }

    /// The purpose of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A pending one-time code: only its keyed hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// Keyed hash of the 6-digit code (bound to the user and purpose).
    pub hash: SecretHash,
    /// From this instant the code is refused with `code_expired`.
    pub expires_at: UnixMillis,
    /// Tries counted so far (wrong or right).
    pub attempts: u32,
    /// [`CodePurpose::ChangeEmail`] only: the address the code was sent to.
    pub new_email: Option<String>,
}

/// Accounts and their pending codes: the pluggable user store.
///
/// Implement it over your own tables to keep users where your app keeps them,
/// and run the shipped conformance suite against it. Every method maps
/// backend failures to [`StoreError::Unavailable`].
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates a user with a fresh id. Fails with [`StoreError::Conflict`]
    /// when another user has the same `email_key`.
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError>;

    /// Finds a user by [`email_key`].
    async fn user_by_email(&self, key: &str) -> Result<Option<User>, StoreError>;

    /// Finds a user by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;

    /// Replaces the password hash.
    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<(), StoreError>;

    /// Marks the address verified.
    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError>;

    /// Enables or disables a user.
    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError>;

    /// Replaces the address (and its key) and marks it verified. Fails with
    /// [`StoreError::Conflict`] when another user has `key`, atomically with
    /// respect to [`UserStore::create_user`].
    async fn change_email(&self, id: &str, email: &str, key: &str) -> Result<(), StoreError>;

    /// Deletes the user and its codes (and, in a store that also holds
    /// sessions, its sessions), in one transaction where the backend has
    /// them. Returns whether the user existed.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;

    /// Up to `limit` users whose address is still unverified and who were
    /// created before `created_before`, oldest first.
    async fn unverified_users(
        &self,
        created_before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<User>, StoreError>;

    /// [`UserStore::delete_user`], but only while the user is still
    /// unverified and was created before `created_before` (checked in the
    /// same statement, so a verification in between wins).
    async fn delete_unverified_user(
        &self,
        id: &str,
        created_before: UnixMillis,
    ) -> Result<bool, StoreError>;

    /// Stores the user's pending code for `purpose`, replacing any previous
    /// one. [`StoreError::NotFound`] when the user does not exist.
    async fn put_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        code: &Code,
    ) -> Result<(), StoreError>;

    /// The pending code for `purpose`, if any.
    async fn code(&self, user_id: &str, purpose: CodePurpose) -> Result<Option<Code>, StoreError>;

    /// Atomically adds one try to the pending code and returns it as
    /// updated; `None` when no code is pending. Under concurrent calls every
    /// caller sees a different count.
    async fn count_code_attempt(
        &self,
        user_id: &str,
        purpose: CodePurpose,
    ) -> Result<Option<Code>, StoreError>;

    /// Atomically deletes the pending code if its hash is `hash`, and returns
    /// it: of concurrent callers with the right code, exactly one gets it.
    async fn take_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        hash: &SecretHash,
    ) -> Result<Option<Code>, StoreError>;
}

/// One sign-in, as stored: the live refresh token's hash and what the
/// session list shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Public identifier: the access token's `sid`.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Hash of the one live refresh token.
    pub current_hash: SecretHash,
    /// When the live token replaced its predecessor (0: never rotated).
    pub rotated_at: UnixMillis,
    /// The sign-in; bounds the absolute lifetime.
    pub created_at: UnixMillis,
    /// The last refresh (the sign-in until the first one).
    pub last_used_at: UnixMillis,
    /// The live token is refused from this instant; stores may delete the
    /// session once it has passed.
    pub expires_at: UnixMillis,
    /// Revoked sessions refuse every token.
    pub revoked: bool,
    /// The client's `User-Agent` at sign-in (truncated, controls removed).
    pub user_agent: Option<String>,
    /// The client address at sign-in.
    pub ip: Option<String>,
}

impl Session {
    /// Whether the session can still refresh at `now`.
    pub fn is_live(&self, now: UnixMillis) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// A compare-and-swap on a session's live refresh token.
#[derive(Clone, Copy, Debug)]
pub struct Rotation<'a> {
    /// The session to rotate.
    pub session_id: &'a str,
    /// The hash that must still be live for the swap to happen.
    pub expected: &'a SecretHash,
    /// The successor's hash.
    pub next: &'a SecretHash,
    /// Now; becomes `rotated_at` and `last_used_at`.
    pub rotated_at: UnixMillis,
    /// New `expires_at`.
    pub expires_at: UnixMillis,
}

/// An ended session on the shared deny list: every access token of session
/// `id` is refused until `until` (the last possible `exp` of its tokens).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Denial {
    /// The session id (the access token's `sid`).
    pub id: String,
    /// When the entry may go: no token of the session is valid after it.
    pub until: UnixMillis,
}

/// The announcements of a store's revocation channel, from
/// [`SessionStore::subscribe`]: every [`Denial`] written by any instance
/// after the subscription started. The receiver closes (`recv` returns
/// `None`) when the channel is lost; announcements may then have been
/// missed, and the reader reloads the list ([`SessionStore::denied`]).
pub type Denials = tokio::sync::mpsc::Receiver<Denial>;

/// How many announcements a [`Denials`] receiver buffers. A store's
/// forwarding task that finds it full drops the subscription (the reader
/// reloads) rather than block the channel.
pub const DENIALS_BUFFER: usize = 1024;

/// Sessions and the rotation of their refresh tokens.
///
/// The reuse-detection protocol lives in the crate; a store only has to make
/// [`SessionStore::rotate`] an atomic compare-and-swap.
///
/// The deny list ([`SessionStore::deny`], [`SessionStore::denied`],
/// [`SessionStore::subscribe`]) is how the access tokens of an ended session
/// are refused by every instance that shares the store, and after a
/// restart. Its default methods keep nothing: a store that does not
/// implement them still works, but its revocations reach other instances
/// only when the access tokens expire.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. [`StoreError::Conflict`] when the id is taken.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// Loads a session by id (revoked and expired ones included, until purged).
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;

    /// Atomically replaces the live hash when it still equals
    /// `rotation.expected` and the session is not revoked; returns whether
    /// the swap happened. Under any interleaving at most one caller wins.
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError>;

    /// Revokes one session; returns whether it was live.
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError>;

    /// Revokes every live session of a user except `except`; returns the ids
    /// revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError>;

    /// The user's live sessions at `now` (not revoked, not expired), newest
    /// first.
    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deletes sessions whose `expires_at` is at or before `now`; returns
    /// how many went. (Stores with native expiry may return 0.)
    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError>;

    /// Puts `ids` on the shared deny list until `until` (an entry already
    /// there keeps the later time), and announces each on the store's
    /// channel, if it has one. Returns once the list is written: the caller
    /// answers only after that. Entries past their `until` may be dropped
    /// at any time.
    ///
    /// The default keeps nothing (see the trait docs).
    async fn deny(&self, ids: &[String], until: UnixMillis) -> Result<(), StoreError> {
        let _ = (ids, until);
        Ok(())
    }

    /// The entries of the deny list whose `until` is after `after`, in any
    /// order. With `after` = now this is the whole live list, which an
    /// instance loads at start and after a lost channel; a later `after`
    /// gives only the recent entries, for polling.
    ///
    /// The default returns nothing.
    async fn denied(&self, after: UnixMillis) -> Result<Vec<Denial>, StoreError> {
        let _ = after;
        Ok(Vec::new())
    }

    /// Opens a subscription to the announcements of [`SessionStore::deny`]
    /// (from every instance, this one included). `Ok(None)`: the store has
    /// no channel, and readers poll [`SessionStore::denied`]. An error: the
    /// channel is unreachable for now; readers poll and try again.
    ///
    /// The default has no channel.
    async fn subscribe(&self) -> Result<Option<Denials>, StoreError> {
        Ok(None)
    }
}

/// `until` and `id` as one channel message (`"{until} {id}"`), for stores
/// whose channel carries strings (Redis builds the same in Lua).
#[cfg(feature = "postgres")]
pub(crate) fn denial_message(id: &str, until: UnixMillis) -> String {
    format!("{until} {id}")
}

/// The [`Denial`] of a [`denial_message`]; `None` for anything else.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) fn parse_denial(message: &str) -> Option<Denial> {
    let (until, id) = message.split_once(' ')?;
    Some(Denial {
        id: id.to_owned(),
        until: until.parse().ok()?,
    })
}

/// The order of [`SessionStore::user_sessions`]: newest sign-in first, ties
/// by id.
pub(crate) fn newest_first(sessions: &mut [Session]) {
    sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
}
