//! Storage traits and the records they hold.
//!
//! Two small async traits decouple the crate from where state lives:
//!
//! - [`UserStore`]: accounts, their password hashes and pending e-mail
//!   verification codes;
//! - [`RefreshStore`]: refresh-token families, with the compare-and-swap that
//!   makes rotation safe under races (see [`crate::refresh`]).
//!
//! Implementations: [`MemoryStore`] (both traits, for tests and single
//! processes), `SqliteStore` and `PostgresStore` (both traits, behind the
//! `sqlite` / `postgres` features) and `RedisStore` (refresh families and rate
//! limits, behind `redis`). Every store passes the same conformance suite in
//! `tests/store_conformance.rs`.
//!
//! Times are Unix milliseconds ([`UnixMillis`]) throughout, so every backend
//! stores plain integers.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
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

/// SHA-256 of a secret (refresh token, verification code): stores never see
/// the secret itself.
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
    /// The backend could not be reached or failed; the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend error as [`StoreError::Unavailable`].
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable(err.into())
    }
}

/// The lookup key of an e-mail address: trimmed and lower-cased.
///
/// Stores enforce uniqueness on this key and look users up by it, so
/// `Alice@Example.com` and `alice@example.com` are one account.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
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
    /// Whether the address was confirmed with a verification code.
    pub email_verified: bool,
    /// A disabled user can neither sign in nor refresh.
    pub disabled: bool,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// What [`UserStore::create_user`] needs.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Trimmed address; uniqueness is on [`email_key`] of it.
    pub email: String,
    /// Trimmed display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// A pending e-mail verification code: only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationCode {
    /// Keyed hash of the 6-digit code.
    pub hash: SecretHash,
    /// After this instant the code is refused with `code_expired`.
    pub expires_at: UnixMillis,
    /// Attempts counted so far (wrong or right).
    pub attempts: u32,
}

/// Accounts: the pluggable user store behind the auth router.
///
/// Implement it over your own tables to keep users where your app keeps them.
/// Every method maps backend failures to [`StoreError::Unavailable`].
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates a user with a fresh id. Fails with [`StoreError::Conflict`]
    /// when another user has the same [`email_key`].
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError>;

    /// Finds a user by e-mail, case-insensitively (by [`email_key`]).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    /// Finds a user by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;

    /// Replaces the password hash (used to upgrade Argon2 parameters).
    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<(), StoreError>;

    /// Marks the e-mail verified and deletes any pending code.
    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError>;

    /// Stores a verification code, replacing any previous one (attempts
    /// start at `code.attempts`, normally 0).
    async fn set_verification_code(
        &self,
        id: &str,
        code: &VerificationCode,
    ) -> Result<(), StoreError>;

    /// The pending verification code, if any.
    async fn verification_code(&self, id: &str) -> Result<Option<VerificationCode>, StoreError>;

    /// Atomically adds one attempt to the pending code and returns the new
    /// count; [`StoreError::NotFound`] when no code is pending.
    async fn count_verification_attempt(&self, id: &str) -> Result<u32, StoreError>;

    /// Enables or disables a user.
    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError>;
}

/// One sign-in: the chain of refresh tokens that rotation produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    /// Public identifier, also the access token's `sid` claim.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Hash of the one live refresh token.
    pub current_hash: SecretHash,
    /// When the live token replaced its predecessor (0: never rotated).
    pub rotated_at: UnixMillis,
    /// Start of the sign-in; bounds the absolute lifetime.
    pub created_at: UnixMillis,
    /// The live token is refused from this instant; stores may delete the
    /// family once it has passed.
    pub expires_at: UnixMillis,
    /// Revoked families refuse every token.
    pub revoked: bool,
}

/// A compare-and-swap on a family's live token.
#[derive(Clone, Copy, Debug)]
pub struct Rotation<'a> {
    /// Family to rotate.
    pub family_id: &'a str,
    /// The hash that must still be live for the swap to happen.
    pub expected: &'a SecretHash,
    /// The successor's hash.
    pub next: &'a SecretHash,
    /// Now; becomes `rotated_at`.
    pub rotated_at: UnixMillis,
    /// New `expires_at`.
    pub expires_at: UnixMillis,
}

/// Refresh-token families: sign-ins and their rotation.
///
/// The whole reuse-detection protocol lives in [`crate::refresh`]; a store
/// only has to make [`RefreshStore::rotate`] an atomic compare-and-swap.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Stores a new family.
    async fn create_family(&self, family: &Family) -> Result<(), StoreError>;

    /// Loads a family by id (revoked and expired ones included, until purged).
    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError>;

    /// Atomically replaces the live hash when it still equals
    /// `rotation.expected` and the family is not revoked; returns whether the
    /// swap happened. Under any interleaving at most one caller wins.
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError>;

    /// Revokes one family; returns whether it was live.
    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError>;

    /// Revokes every live family of a user; returns their ids.
    async fn revoke_user_families(&self, user_id: &str) -> Result<Vec<String>, StoreError>;

    /// Deletes families whose `expires_at` is at or before `now`; returns how
    /// many went. (Stores with native expiry may return 0.)
    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError>;
}
