//! [`RateLimiter`] for the SQL stores: counters in `authkit_rate_limits`,
//! shared by every instance on the same database. A reservation is one
//! conditional upsert (`INSERT ... ON CONFLICT DO UPDATE ... WHERE`), which
//! both PostgreSQL (row lock) and SQLite (one writer) run atomically, so
//! concurrent reservations never overshoot. Expired rows are deleted by the
//! store's `purge_expired`.

use std::time::Duration;

use async_trait::async_trait;

use super::{Decision, Limit, RateLimiter};
use crate::store::StoreError;
use crate::time::now_millis;

/// Reserves: counts one when the window has ended (a new window) or holds
/// fewer than `$4`; returns nothing when the limit is reached.
const RESERVE: &str = "INSERT INTO authkit_rate_limits (key, count, window_ends) \
     VALUES ($1, 1, $2 + $3) \
     ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN authkit_rate_limits.window_ends <= $2 THEN 1 \
     ELSE authkit_rate_limits.count + 1 END, \
     window_ends = CASE WHEN authkit_rate_limits.window_ends <= $2 THEN $2 + $3 \
     ELSE authkit_rate_limits.window_ends END \
     WHERE authkit_rate_limits.window_ends <= $2 OR authkit_rate_limits.count < $4 \
     RETURNING count";
const WINDOW_ENDS: &str = "SELECT window_ends FROM authkit_rate_limits WHERE key = $1";
const RELEASE: &str = "UPDATE authkit_rate_limits SET count = count - 1 \
     WHERE key = $1 AND count > 0 AND window_ends > $2";
const RESET: &str = "DELETE FROM authkit_rate_limits WHERE key = $1";

fn window_ms(limit: Limit) -> i64 {
    i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX / 4)
}

macro_rules! sql_limiter {
    ($store:ty) => {
        #[async_trait]
        impl RateLimiter for $store {
            async fn reserve(&self, key: &str, limit: Limit) -> Result<Decision, StoreError> {
                if limit.max == 0 {
                    return Ok(Decision::limited(limit.window));
                }
                let now = now_millis();
                let counted: Option<i64> = self
                    .run(async |c| {
                        sqlx::query_scalar(RESERVE)
                            .bind(key)
                            .bind(now)
                            .bind(window_ms(limit))
                            .bind(i64::from(limit.max))
                            .fetch_optional(c)
                            .await
                    })
                    .await?;
                if let Some(count) = counted {
                    let used = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
                    return Ok(Decision::Allowed {
                        remaining: limit.max.saturating_sub(used),
                    });
                }
                let ends: Option<i64> = self
                    .run(async |c| {
                        sqlx::query_scalar(WINDOW_ENDS)
                            .bind(key)
                            .fetch_optional(c)
                            .await
                    })
                    .await?;
                let left = ends.map_or(0, |ends| ends.saturating_sub(now));
                Ok(Decision::limited(Duration::from_millis(
                    u64::try_from(left).unwrap_or(0),
                )))
            }

            async fn release(&self, key: &str) -> Result<(), StoreError> {
                self.run(async |c| {
                    sqlx::query(RELEASE)
                        .bind(key)
                        .bind(now_millis())
                        .execute(c)
                        .await
                })
                .await?;
                Ok(())
            }

            async fn reset(&self, key: &str) -> Result<(), StoreError> {
                self.run(async |c| sqlx::query(RESET).bind(key).execute(c).await)
                    .await?;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "postgres")]
sql_limiter!(crate::store::PostgresStore);
#[cfg(feature = "sqlite")]
sql_limiter!(crate::store::SqliteStore);
