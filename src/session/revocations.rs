//! [`Revocations`]: the deny list of ended sessions.
//!
//! Access tokens are checked with the key alone, so ending a session (logout,
//! reset, revoke, reuse, ...) must also make its still-unexpired access
//! tokens fail. Each ended session id is kept here until the last possible
//! `exp` of its tokens; the verified-token cache drops the session's tokens
//! when it is added, and a freshly verified token is checked against it.
//!
//! The hot path asks [`Revocations::contains`] only for tokens that missed
//! the cache; an atomic flag keeps that a single load while the list is
//! empty.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Session ids refused until a time (Unix seconds).
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    until: RwLock<HashMap<Box<str>, i64>>,
    any: AtomicBool,
}

impl Revocations {
    pub(crate) fn contains(&self, sid: &str) -> bool {
        self.any.load(Ordering::Acquire)
            && self
                .until
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(sid)
    }

    /// Refuses `sid` until `until`; forgets entries that ran out by `now`.
    pub(crate) fn add(&self, sid: &str, until: i64, now: i64) {
        let mut map = self.until.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, u| *u >= now);
        let entry = map.entry(sid.into()).or_insert(until);
        *entry = (*entry).max(until);
        self.any.store(true, Ordering::Release);
    }

    /// Forgets entries that ran out by `now`.
    pub(crate) fn purge(&self, now: i64) {
        let mut map = self.until.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, u| *u >= now);
        self.any.store(!map.is_empty(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Revocations;

    #[test]
    fn entries_live_until_their_time() {
        let r = Revocations::default();
        assert!(!r.contains("s"));
        r.add("s", 100, 50);
        assert!(r.contains("s"));
        r.purge(100);
        assert!(r.contains("s"), "kept through its last second");
        r.purge(101);
        assert!(!r.contains("s"));
    }
}
