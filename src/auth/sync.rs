//! The revocation sync task: one per [`Auth`](super::Auth), spawned when it
//! is built, aborted when the last clone is dropped.
//!
//! It keeps this instance's deny list ([`Revocations`](crate::session::revocations::Revocations))
//! in step with the shared one in the session store:
//!
//! - at start it subscribes to the store's channel, then loads the whole
//!   live list (in that order, so that nothing written in between is
//!   missed), which covers a restart;
//! - every announced id is applied at once: added to the deny list, its
//!   cached tokens dropped;
//! - a lost subscription is logged at WARN (once), the list is polled every
//!   [`POLL`] meanwhile, and the task subscribes again every [`RESUBSCRIBE`];
//!   when that works it reloads the whole list and logs at INFO;
//! - a store without a channel is polled every [`POLL`];
//! - while the channel is up, a poll every [`BACKSTOP`] catches anything a
//!   silently broken connection lost.
//!
//! Polls are incremental: they ask for the entries whose `until` is after
//! the latest one seen minus [`OVERLAP_MS`], which holds everything written
//! since the last poll (a later revocation has a later `until`) plus a
//! margin for clock skew between instances and for slow commits. Nothing
//! here runs on the request path: requests read the local list only.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Inner;
use crate::store::{Denial, SessionStore, StoreError, UnixMillis};
use crate::time::{now_millis, now_secs};
use crate::token::claims::ExtraClaims;

/// How often the shared list is polled while the channel is down, or when
/// the store has none: the longest a revocation takes to arrive then.
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// How often it is polled while the channel is up.
const BACKSTOP: Duration = Duration::from_secs(5);
/// How long after a failure the task tries to subscribe again.
const RESUBSCRIBE: Duration = Duration::from_secs(2);
/// How far before the latest `until` seen an incremental poll reaches.
const OVERLAP_MS: UnixMillis = 30_000;
/// How often entries that ran out are dropped from the local list.
const PURGE: Duration = Duration::from_secs(60);

/// Aborts the task when dropped (with the last `Auth` clone).
pub(super) struct SyncTask(tokio::task::AbortHandle);

impl Drop for SyncTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the task for the `Auth` being built; `None` outside a Tokio
/// runtime, where nothing can run in the background.
pub(super) fn spawn<E: ExtraClaims>(
    inner: Weak<Inner<E>>,
    store: Arc<dyn SessionStore>,
) -> Option<SyncTask> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "Auth built outside a Tokio runtime: revocations made by other instances are not applied here"
        );
        return None;
    };
    let task = Syncer {
        inner,
        store,
        high: 0,
        channel_down: false,
        poll_failing: false,
        purged_at: tokio::time::Instant::now(),
    };
    Some(SyncTask(runtime.spawn(task.run()).abort_handle()))
}

/// The task's state. Every method returns `false` once the `Auth` is gone.
struct Syncer<E> {
    inner: Weak<Inner<E>>,
    store: Arc<dyn SessionStore>,
    /// The latest `until` seen.
    high: UnixMillis,
    /// A WARN was logged for the channel; the next success logs INFO.
    channel_down: bool,
    /// A WARN was logged for failing polls.
    poll_failing: bool,
    purged_at: tokio::time::Instant,
}

impl<E: ExtraClaims> Syncer<E> {
    async fn run(mut self) {
        loop {
            match self.store.subscribe().await {
                Ok(Some(mut channel)) => {
                    // Whatever was written while unsubscribed is in the list.
                    if !self.load(now_millis()).await {
                        return;
                    }
                    if self.channel_down {
                        self.channel_down = false;
                        tracing::info!("revocation channel up again; polling stopped");
                    }
                    if !self.listen(&mut channel).await {
                        return;
                    }
                    self.lost(StoreError::unavailable("the subscription ended"));
                }
                Ok(None) => {
                    // No channel, by design: poll for good.
                    while self.poll().await {
                        tokio::time::sleep(POLL).await;
                    }
                    return;
                }
                Err(e) => self.lost(e),
            }
            // Poll until it is time to subscribe again.
            let until = tokio::time::Instant::now() + RESUBSCRIBE;
            while tokio::time::Instant::now() < until {
                if !self.poll().await {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }

    fn lost(&mut self, error: StoreError) {
        if !self.channel_down {
            self.channel_down = true;
            tracing::warn!(
                error = %error,
                poll_ms = POLL.as_millis() as u64,
                "revocation channel down; polling the shared deny list until it is back"
            );
        }
    }

    /// Applies announcements until the channel closes (`true`).
    async fn listen(&mut self, channel: &mut crate::store::Denials) -> bool {
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                denial = channel.recv() => {
                    let Some(denial) = denial else { return true };
                    batch.push(denial);
                    // Whatever else is queued goes under the same lock.
                    while let Ok(denial) = channel.try_recv() {
                        batch.push(denial);
                    }
                    if !self.apply(&batch) {
                        return false;
                    }
                    batch.clear();
                }
                () = tokio::time::sleep(BACKSTOP) => {
                    if !self.poll().await {
                        return false;
                    }
                }
            }
        }
    }

    /// One incremental poll.
    async fn poll(&mut self) -> bool {
        let after = now_millis().max(self.high.saturating_sub(OVERLAP_MS));
        self.load(after).await
    }

    /// Loads the entries whose `until` is after `after` and applies them. A
    /// failure is logged (WARN once, INFO when polls work again) and
    /// skipped: the next poll retries.
    async fn load(&mut self, after: UnixMillis) -> bool {
        if self.inner.strong_count() == 0 {
            return false;
        }
        match self.store.denied(after).await {
            Ok(denials) => {
                if self.poll_failing {
                    self.poll_failing = false;
                    tracing::info!("shared deny list readable again");
                }
                self.apply(&denials)
            }
            Err(e) => {
                if !self.poll_failing {
                    self.poll_failing = true;
                    tracing::warn!(error = %e, "reading the shared deny list failed; retrying");
                }
                true
            }
        }
    }

    /// Applies `denials` (see [`Inner::apply_denials`]).
    fn apply(&mut self, denials: &[Denial]) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        for denial in denials {
            self.high = self.high.max(denial.until);
        }
        inner.apply_denials(denials);
        if self.purged_at.elapsed() >= PURGE {
            self.purged_at = tokio::time::Instant::now();
            inner.revocations.purge(now_secs());
        }
        true
    }
}

impl<E: ExtraClaims> Inner<E> {
    /// Adds `denials` to the local list and drops the cached tokens of the
    /// sessions that were new to it (list first, then cache: see
    /// `Auth::verify_at`).
    pub(super) fn apply_denials(&self, denials: &[Denial]) {
        // `until` is the last millisecond of the tokens' last second.
        let entries = denials
            .iter()
            .map(|d| (d.id.as_str(), d.until.div_euclid(1000)));
        for sid in self.revocations.merge(entries, now_secs()) {
            self.cache.forget_session(sid);
        }
    }
}
