//! What the SQLite and PostgreSQL stores share: the SQL (written once, with
//! `$N` parameters, which both drivers take), the row types, and the trait
//! implementations, generated for each store by [`sql_store!`].
//!
//! Every write is one statement or one transaction, so atomicity comes from
//! the database: a rotation is one conditional `UPDATE`; a code try is one
//! `UPDATE ... RETURNING`; taking a code is one `DELETE ... RETURNING`.
//! Every call runs under the store's deadline, so a stalled connection
//! answers [`StoreError::Unavailable`] instead of hanging a request.

use std::time::Duration;

use super::{Code, SecretHash, Session, StoreError, User};

/// The column lists of the row types below, as literals for `concat!`.
macro_rules! columns {
    (user) => {
        "id, email, name, password_hash, email_verified, disabled, created_at"
    };
    (session) => {
        "id, user_id, current_hash, rotated_at, created_at, last_used_at, expires_at, revoked, \
         user_agent, ip"
    };
    (code) => {
        "hash, expires_at, attempts, new_email"
    };
}

pub(super) use columns;

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    email_verified: bool,
    disabled: bool,
    created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            email_verified: row.email_verified,
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CodeRow {
    hash: Vec<u8>,
    expires_at: i64,
    attempts: i64,
    new_email: Option<String>,
}

impl TryFrom<CodeRow> for Code {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> Result<Self, StoreError> {
        Ok(Code {
            hash: to_hash(row.hash)?,
            expires_at: row.expires_at,
            attempts: u32::try_from(row.attempts).map_err(|_| {
                StoreError::unavailable(format!("corrupt attempt count: {}", row.attempts))
            })?,
            new_email: row.new_email,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id: String,
    user_id: String,
    current_hash: Vec<u8>,
    rotated_at: i64,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked: bool,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: row.id,
            user_id: row.user_id,
            current_hash: to_hash(row.current_hash)?,
            rotated_at: row.rotated_at,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked: row.revoked,
            user_agent: row.user_agent,
            ip: row.ip,
        })
    }
}

fn to_hash(bytes: Vec<u8>) -> Result<SecretHash, StoreError> {
    SecretHash::try_from(bytes).map_err(|bytes| {
        StoreError::unavailable(format!(
            "corrupt stored hash: {} bytes, expected 32",
            bytes.len()
        ))
    })
}

/// A unique violation becomes [`StoreError::Conflict`], anything else
/// [`StoreError::Unavailable`].
pub(super) fn conflict_or_unavailable(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::unavailable(err),
    }
}

pub(super) fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Runs a database call under `deadline`, mapping every failure to
/// [`StoreError::Unavailable`] (or what `map` makes of it).
#[cfg(feature = "postgres")]
pub(super) async fn within<T>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
    map: impl FnOnce(sqlx::Error) -> StoreError,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(result) => result.map_err(map),
        Err(_) => Err(timed_out(deadline)),
    }
}

fn timed_out(deadline: Duration) -> StoreError {
    StoreError::unavailable(format!(
        "database call timed out after {} ms",
        deadline.as_millis()
    ))
}

/// Runs `call` on a pooled connection under one `deadline` that covers the
/// wait for the connection, every statement and the commit.
///
/// With `close_late`, a connection whose call missed the deadline is closed
/// instead of going back to the pool: its statement may still be in flight
/// (a stalled network), and the pool would wait for that answer, holding a
/// slot, before reusing it. Closing frees the slot at once. (What this cannot
/// bound: sqlx's own check of a connection given back after a call that
/// succeeded, one round trip without a deadline. A connection that goes
/// silent in that instant keeps its slot until TCP gives up on it.)
pub(super) async fn run_on<DB: sqlx::Database, T>(
    pool: &sqlx::Pool<DB>,
    deadline: Duration,
    close_late: bool,
    call: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, sqlx::Error>,
    map: impl FnOnce(sqlx::Error) -> StoreError,
) -> Result<T, StoreError> {
    let until = tokio::time::Instant::now() + deadline;
    let mut conn = match tokio::time::timeout_at(until, pool.acquire()).await {
        Ok(conn) => conn.map_err(StoreError::unavailable)?,
        Err(_) => return Err(timed_out(deadline)),
    };
    let result = tokio::time::timeout_at(until, call(&mut conn)).await;
    match result {
        Ok(result) => result.map_err(map),
        Err(_) => {
            if close_late {
                conn.close_on_drop();
            }
            Err(timed_out(deadline))
        }
    }
}

/// Implements [`UserStore`](super::UserStore) and
/// [`SessionStore`](super::SessionStore), the deadline, the pool accessor and
/// the migrations for a store with `pool: Pool<$db>` and `deadline: Duration`
/// fields; `close_late` as in [`run_on`].
macro_rules! sql_store {
    ($store:ident, $db:ty, $migrations:literal, close_late = $close_late:expr) => {
        impl $store {
            /// Sets the longest time any single call may take, the wait for a
            /// connection included; past it the call fails with
            /// [`StoreError::Unavailable`](crate::store::StoreError::Unavailable).
            /// On PostgreSQL this is the client side only: the server-side
            /// timeouts are set when connecting
            /// (`PostgresStore::connect_with_deadline`).
            pub fn with_deadline(mut self, deadline: std::time::Duration) -> Self {
                self.deadline = deadline;
                self
            }

            /// The underlying connection pool.
            pub fn pool(&self) -> &sqlx::Pool<$db> {
                &self.pool
            }

            #[doc = concat!("Creates or upgrades the tables (embedded `", $migrations, "`), and")]
            /// brings stored e-mail keys to the current format (once).
            ///
            /// Safe to call on every start, also from several processes at
            /// once. Migrations the app applied to the same database with its
            /// own sqlx migrator are ignored, not reported missing; the app's
            /// migrator needs `set_ignore_missing(true)` in turn.
            pub async fn migrate(&self) -> Result<(), $crate::store::StoreError> {
                let mut migrator = sqlx::migrate!($migrations);
                migrator.set_ignore_missing(true);
                migrator
                    .run(&self.pool)
                    .await
                    .map_err($crate::store::StoreError::unavailable)?;
                self.rekey_emails().await?;
                Ok(())
            }

            /// Runs one call on a pooled connection under the store's deadline.
            pub(crate) async fn run<T>(
                &self,
                call: impl AsyncFnOnce(
                    &mut <$db as sqlx::Database>::Connection,
                ) -> Result<T, sqlx::Error>,
            ) -> Result<T, $crate::store::StoreError> {
                self.run_or(call, $crate::store::StoreError::unavailable)
                    .await
            }

            /// [`Self::run`], with `map` turning a database error into a store error.
            pub(crate) async fn run_or<T>(
                &self,
                call: impl AsyncFnOnce(
                    &mut <$db as sqlx::Database>::Connection,
                ) -> Result<T, sqlx::Error>,
                map: impl FnOnce(sqlx::Error) -> $crate::store::StoreError,
            ) -> Result<T, $crate::store::StoreError> {
                $crate::store::sql::run_on(&self.pool, self.deadline, $close_late, call, map)
                    .await
            }
        }

        impl $store {
            /// Brings e-mail keys from format 1 (trim + lower-case) to
            /// format 2 (IDNA domains), once, in one transaction; the meta
            /// row's lock keeps concurrent starts from doing it twice. Twins
            /// that now share a key: the oldest keeps it, the others are
            /// disabled and parked (logged). Returns the accounts changed.
            pub(crate) async fn rekey_emails(&self) -> Result<usize, $crate::store::StoreError> {
                use $crate::address::{Rekey, StoredAddress, plan_rekey};
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err($crate::store::StoreError::unavailable)?;
                let version: Option<i64> = sqlx::query_scalar(
                    "UPDATE authkit_meta SET value = value \
                     WHERE name = 'email_key_version' RETURNING value",
                )
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::store::StoreError::unavailable)?;
                if version.is_some_and(|v| v >= 2) {
                    return Ok(0);
                }
                let rows: Vec<(String, String, String, i64)> =
                    sqlx::query_as("SELECT id, email, email_key, created_at FROM authkit_users")
                        .fetch_all(&mut *tx)
                        .await
                        .map_err($crate::store::StoreError::unavailable)?;
                let rows: Vec<StoredAddress> = rows
                    .into_iter()
                    .map(|(id, email, old_key, created_at)| StoredAddress {
                        id,
                        email,
                        old_key,
                        created_at,
                    })
                    .collect();
                let plan = plan_rekey(&rows);
                for change in &plan {
                    let (id, key, disable) = match change {
                        Rekey::Update { id, key } => (id, key, false),
                        Rekey::Disable { id, key, kept_by } => {
                            tracing::warn!(
                                user = %id,
                                kept_by = %kept_by,
                                "e-mail key migration: an older account has the same address; this one is disabled"
                            );
                            (id, key, true)
                        }
                    };
                    sqlx::query(
                        "UPDATE authkit_users SET email_key = $1, \
                         disabled = (disabled OR $2) WHERE id = $3",
                    )
                    .bind(key)
                    .bind(disable)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::StoreError::unavailable)?;
                }
                sqlx::query("UPDATE authkit_meta SET value = 2 WHERE name = 'email_key_version'")
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::store::StoreError::unavailable)?;
                tx.commit()
                    .await
                    .map_err($crate::store::StoreError::unavailable)?;
                if !plan.is_empty() {
                    tracing::info!(changed = plan.len(), "e-mail keys migrated to format 2");
                }
                Ok(plan.len())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn create_user(
                &self,
                new: $crate::store::NewUser,
            ) -> Result<$crate::store::User, $crate::store::StoreError> {
                let user = $crate::store::User {
                    id: uuid::Uuid::new_v4().to_string(),
                    email_verified: false,
                    disabled: false,
                    created_at: $crate::time::now_millis(),
                    email: new.email,
                    name: new.name,
                    password_hash: new.password_hash,
                };
                self.run_or(
                    async |c| {
                        sqlx::query(
                            "INSERT INTO authkit_users (id, email, email_key, name, \
                             password_hash, email_verified, disabled, created_at) \
                             VALUES ($1, $2, $3, $4, $5, FALSE, FALSE, $6)",
                        )
                        .bind(&user.id)
                        .bind(&user.email)
                        .bind(&new.email_key)
                        .bind(&user.name)
                        .bind(&user.password_hash)
                        .bind(user.created_at)
                        .execute(c)
                        .await
                    },
                    |e| $crate::store::sql::conflict_or_unavailable(e, "email"),
                )
                .await?;
                Ok(user)
            }

            async fn user_by_email(
                &self,
                key: &str,
            ) -> Result<Option<$crate::store::User>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(user),
                    " FROM authkit_users WHERE email_key = $1"
                );
                let row: Option<$crate::store::sql::UserRow> = self
                    .run(async |c| sqlx::query_as(sql).bind(key).fetch_optional(c).await)
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn user_by_id(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::User>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(user),
                    " FROM authkit_users WHERE id = $1"
                );
                let row: Option<$crate::store::sql::UserRow> = self
                    .run(async |c| sqlx::query_as(sql).bind(id).fetch_optional(c).await)
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn set_password_hash(
                &self,
                id: &str,
                password_hash: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query("UPDATE authkit_users SET password_hash = $1 WHERE id = $2")
                            .bind(password_hash)
                            .bind(id)
                            .execute(c)
                            .await
                    })
                    .await?;
                $crate::store::sql::found(done.rows_affected())
            }

            async fn mark_email_verified(&self, id: &str) -> Result<(), $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query("UPDATE authkit_users SET email_verified = TRUE WHERE id = $1")
                            .bind(id)
                            .execute(c)
                            .await
                    })
                    .await?;
                $crate::store::sql::found(done.rows_affected())
            }

            async fn set_disabled(
                &self,
                id: &str,
                disabled: bool,
            ) -> Result<(), $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query("UPDATE authkit_users SET disabled = $1 WHERE id = $2")
                            .bind(disabled)
                            .bind(id)
                            .execute(c)
                            .await
                    })
                    .await?;
                $crate::store::sql::found(done.rows_affected())
            }

            async fn change_email(
                &self,
                id: &str,
                email: &str,
                key: &str,
            ) -> Result<(), $crate::store::StoreError> {
                let done = self
                    .run_or(
                        async |c| {
                            sqlx::query(
                                "UPDATE authkit_users SET email = $1, email_key = $2, \
                                 email_verified = TRUE WHERE id = $3",
                            )
                            .bind(email)
                            .bind(key)
                            .bind(id)
                            .execute(c)
                            .await
                        },
                        |e| $crate::store::sql::conflict_or_unavailable(e, "email"),
                    )
                    .await?;
                $crate::store::sql::found(done.rows_affected())
            }

            async fn delete_user(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                self.run(async |c| {
                    let mut tx = sqlx::Connection::begin(&mut *c).await?;
                    let gone = sqlx::query("DELETE FROM authkit_users WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        > 0;
                    sqlx::query("DELETE FROM authkit_codes WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM authkit_sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(gone)
                })
                .await
            }

            async fn unverified_users(
                &self,
                created_before: $crate::store::UnixMillis,
                limit: usize,
            ) -> Result<Vec<$crate::store::User>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(user),
                    " FROM authkit_users WHERE email_verified = FALSE AND created_at < $1 \
                     ORDER BY created_at, id LIMIT $2"
                );
                let rows: Vec<$crate::store::sql::UserRow> = self
                    .run(async |c| {
                        sqlx::query_as(sql)
                            .bind(created_before)
                            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                            .fetch_all(c)
                            .await
                    })
                    .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn delete_unverified_user(
                &self,
                id: &str,
                created_before: $crate::store::UnixMillis,
            ) -> Result<bool, $crate::store::StoreError> {
                self.run(async |c| {
                    let mut tx = sqlx::Connection::begin(&mut *c).await?;
                    let gone = sqlx::query(
                        "DELETE FROM authkit_users WHERE id = $1 \
                         AND email_verified = FALSE AND created_at < $2",
                    )
                    .bind(id)
                    .bind(created_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    if gone {
                        sqlx::query("DELETE FROM authkit_codes WHERE user_id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("DELETE FROM authkit_sessions WHERE user_id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(gone)
                })
                .await
            }

            async fn put_code(
                &self,
                user_id: &str,
                purpose: $crate::store::CodePurpose,
                code: &$crate::store::Code,
            ) -> Result<(), $crate::store::StoreError> {
                // One statement: the user must exist, and the code replaces any other.
                let done = self
                    .run(async |c| {
                        sqlx::query(
                            "INSERT INTO authkit_codes \
                             (user_id, purpose, hash, expires_at, attempts, new_email) \
                             SELECT id, $2, $3, $4, $5, $6 FROM authkit_users WHERE id = $1 \
                             ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, \
                             expires_at = excluded.expires_at, attempts = excluded.attempts, \
                             new_email = excluded.new_email",
                        )
                        .bind(user_id)
                        .bind(purpose.as_str())
                        .bind(&code.hash[..])
                        .bind(code.expires_at)
                        .bind(i64::from(code.attempts))
                        .bind(code.new_email.as_deref())
                        .execute(c)
                        .await
                    })
                    .await?;
                $crate::store::sql::found(done.rows_affected())
            }

            async fn code(
                &self,
                user_id: &str,
                purpose: $crate::store::CodePurpose,
            ) -> Result<Option<$crate::store::Code>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(code),
                    " FROM authkit_codes WHERE user_id = $1 AND purpose = $2"
                );
                let row: Option<$crate::store::sql::CodeRow> = self
                    .run(async |c| {
                        sqlx::query_as(sql)
                            .bind(user_id)
                            .bind(purpose.as_str())
                            .fetch_optional(c)
                            .await
                    })
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn count_code_attempt(
                &self,
                user_id: &str,
                purpose: $crate::store::CodePurpose,
            ) -> Result<Option<$crate::store::Code>, $crate::store::StoreError> {
                let sql = concat!(
                    "UPDATE authkit_codes SET attempts = attempts + 1 \
                     WHERE user_id = $1 AND purpose = $2 RETURNING ",
                    $crate::store::sql::columns!(code)
                );
                let row: Option<$crate::store::sql::CodeRow> = self
                    .run(async |c| {
                        sqlx::query_as(sql)
                            .bind(user_id)
                            .bind(purpose.as_str())
                            .fetch_optional(c)
                            .await
                    })
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn take_code(
                &self,
                user_id: &str,
                purpose: $crate::store::CodePurpose,
                hash: &$crate::store::SecretHash,
            ) -> Result<Option<$crate::store::Code>, $crate::store::StoreError> {
                let sql = concat!(
                    "DELETE FROM authkit_codes WHERE user_id = $1 AND purpose = $2 \
                     AND hash = $3 RETURNING ",
                    $crate::store::sql::columns!(code)
                );
                let row: Option<$crate::store::sql::CodeRow> = self
                    .run(async |c| {
                        sqlx::query_as(sql)
                            .bind(user_id)
                            .bind(purpose.as_str())
                            .bind(&hash[..])
                            .fetch_optional(c)
                            .await
                    })
                    .await?;
                row.map(TryInto::try_into).transpose()
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn create_session(
                &self,
                session: &$crate::store::Session,
            ) -> Result<(), $crate::store::StoreError> {
                let sql = concat!(
                    "INSERT INTO authkit_sessions (",
                    $crate::store::sql::columns!(session),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                );
                self.run_or(
                    async |c| {
                        sqlx::query(sql)
                            .bind(&session.id)
                            .bind(&session.user_id)
                            .bind(&session.current_hash[..])
                            .bind(session.rotated_at)
                            .bind(session.created_at)
                            .bind(session.last_used_at)
                            .bind(session.expires_at)
                            .bind(session.revoked)
                            .bind(session.user_agent.as_deref())
                            .bind(session.ip.as_deref())
                            .execute(c)
                            .await
                    },
                    |e| $crate::store::sql::conflict_or_unavailable(e, "session id"),
                )
                .await?;
                Ok(())
            }

            async fn session(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::Session>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(session),
                    " FROM authkit_sessions WHERE id = $1"
                );
                let row: Option<$crate::store::sql::SessionRow> = self
                    .run(async |c| sqlx::query_as(sql).bind(id).fetch_optional(c).await)
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn rotate(
                &self,
                rotation: $crate::store::Rotation<'_>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query(
                            "UPDATE authkit_sessions SET current_hash = $1, rotated_at = $2, \
                             last_used_at = $2, expires_at = $3 \
                             WHERE id = $4 AND current_hash = $5 AND revoked = FALSE",
                        )
                        .bind(&rotation.next[..])
                        .bind(rotation.rotated_at)
                        .bind(rotation.expires_at)
                        .bind(rotation.session_id)
                        .bind(&rotation.expected[..])
                        .execute(c)
                        .await
                    })
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_session(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query(
                            "UPDATE authkit_sessions SET revoked = TRUE \
                             WHERE id = $1 AND revoked = FALSE",
                        )
                        .bind(id)
                        .execute(c)
                        .await
                    })
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_user_sessions(
                &self,
                user_id: &str,
                except: Option<&str>,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                let mut ids: Vec<String> = self
                    .run(async |c| {
                        sqlx::query_scalar(
                            "UPDATE authkit_sessions SET revoked = TRUE \
                             WHERE user_id = $1 AND revoked = FALSE \
                             AND ($2 IS NULL OR id <> $2) RETURNING id",
                        )
                        .bind(user_id)
                        .bind(except)
                        .fetch_all(c)
                        .await
                    })
                    .await?;
                ids.sort_unstable();
                Ok(ids)
            }

            async fn user_sessions(
                &self,
                user_id: &str,
                now: $crate::store::UnixMillis,
            ) -> Result<Vec<$crate::store::Session>, $crate::store::StoreError> {
                let sql = concat!(
                    "SELECT ",
                    $crate::store::sql::columns!(session),
                    " FROM authkit_sessions WHERE user_id = $1 AND revoked = FALSE \
                     AND expires_at > $2 ORDER BY created_at DESC, id"
                );
                let rows: Vec<$crate::store::sql::SessionRow> = self
                    .run(async |c| {
                        sqlx::query_as(sql)
                            .bind(user_id)
                            .bind(now)
                            .fetch_all(c)
                            .await
                    })
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn purge_expired(
                &self,
                now: $crate::store::UnixMillis,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = self
                    .run(async |c| {
                        sqlx::query("DELETE FROM authkit_sessions WHERE expires_at <= $1")
                            .bind(now)
                            .execute(c)
                            .await
                    })
                    .await?;
                // Ended rate-limit windows go with them.
                self.run(async |c| {
                    sqlx::query("DELETE FROM authkit_rate_limits WHERE window_ends <= $1")
                        .bind(now)
                        .execute(c)
                        .await
                })
                .await?;
                // And deny-list entries past their time.
                self.run(async |c| {
                    sqlx::query("DELETE FROM authkit_revoked_sessions WHERE until <= $1")
                        .bind(now)
                        .execute(c)
                        .await
                })
                .await?;
                Ok(done.rows_affected())
            }

            async fn deny(
                &self,
                ids: &[String],
                until: $crate::store::UnixMillis,
            ) -> Result<(), $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                let now = $crate::time::now_millis();
                // One transaction; on PostgreSQL the announcements go out
                // with its commit (`announce`, store file), never before the
                // rows are visible.
                self.run(async |c| {
                    let mut tx = sqlx::Connection::begin(&mut *c).await?;
                    sqlx::query("DELETE FROM authkit_revoked_sessions WHERE until <= $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    for id in ids {
                        sqlx::query(
                            "INSERT INTO authkit_revoked_sessions (id, until) VALUES ($1, $2) \
                             ON CONFLICT (id) DO UPDATE SET until = excluded.until \
                             WHERE excluded.until > authkit_revoked_sessions.until",
                        )
                        .bind(id)
                        .bind(until)
                        .execute(&mut *tx)
                        .await?;
                        Self::announce(&mut tx, id, until).await?;
                    }
                    tx.commit().await
                })
                .await
            }

            async fn denied(
                &self,
                after: $crate::store::UnixMillis,
            ) -> Result<Vec<$crate::store::Denial>, $crate::store::StoreError> {
                let rows: Vec<(String, i64)> = self
                    .run(async |c| {
                        sqlx::query_as("SELECT id, until FROM authkit_revoked_sessions WHERE until > $1")
                            .bind(after)
                            .fetch_all(c)
                            .await
                    })
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, until)| $crate::store::Denial { id, until })
                    .collect())
            }

            async fn subscribe(
                &self,
            ) -> Result<Option<$crate::store::Denials>, $crate::store::StoreError> {
                self.listen().await
            }
        }
    };
}

pub(super) use sql_store;
