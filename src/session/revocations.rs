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
//!
//! This is the instance's copy of the shared deny list
//! ([`SessionStore::deny`](crate::store::SessionStore::deny)): the sync task
//! (`auth/sync.rs`) merges what other instances write with
//! [`Revocations::merge`].

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

    /// Adds the entries that are new or later than the ones held, and
    /// returns the ids that were new (their cached tokens must go). Takes
    /// the write lock only when something changes: a poll that brings
    /// nothing new costs readers nothing.
    pub(crate) fn merge<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, i64)>,
        now: i64,
    ) -> Vec<&'a str> {
        let fresh: Vec<(&str, i64)> = {
            let map = self.until.read().unwrap_or_else(|e| e.into_inner());
            entries
                .into_iter()
                .filter(|(sid, until)| *until >= now && map.get(*sid).is_none_or(|u| u < until))
                .collect()
        };
        if fresh.is_empty() {
            return Vec::new();
        }
        let mut map = self.until.write().unwrap_or_else(|e| e.into_inner());
        let mut added = Vec::with_capacity(fresh.len());
        for (sid, until) in fresh {
            match map.get_mut(sid) {
                Some(held) => *held = (*held).max(until),
                None => {
                    map.insert(sid.into(), until);
                    added.push(sid);
                }
            }
        }
        self.any.store(true, Ordering::Release);
        added
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

    #[test]
    fn merge_reports_only_new_ids_and_keeps_the_later_time() {
        let r = Revocations::default();
        r.add("a", 100, 50);
        let added = r.merge([("a", 90), ("b", 100), ("c", 40)], 50);
        assert_eq!(added, ["b"], "a is known; c ran out before now");
        assert!(r.contains("b") && !r.contains("c"));
        assert!(r.merge([("a", 90), ("b", 100)], 50).is_empty());
        r.merge([("a", 200)], 50);
        r.purge(150);
        assert!(r.contains("a"), "the later time of a won");
        assert!(!r.contains("b"));
    }
}
