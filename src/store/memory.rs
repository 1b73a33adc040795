//! [`MemoryStore`]: users, codes and sessions in process memory.
//!
//! For tests, examples and single-process apps that accept losing every
//! session on restart. Expired sessions are purged as new ones arrive (at most
//! once a minute), so memory stays bounded by the live sessions.
//!
//! The deny list is shared by every `Auth` over the same store (in this
//! process); its channel is a Tokio broadcast.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

use tokio::sync::{broadcast, mpsc};

use super::{
    Code, CodePurpose, DENIALS_BUFFER, Denial, Denials, NewUser, Rotation, SecretHash, Session,
    SessionStore, StoreError, UnixMillis, User, UserStore,
};
use crate::time::now_millis;

const PURGE_EVERY_MS: i64 = 60_000;

#[derive(Default, Debug)]
struct Users {
    by_id: HashMap<String, User>,
    by_key: HashMap<String, String>,
    codes: HashMap<(String, CodePurpose), Code>,
}

impl Users {
    fn remove(&mut self, id: &str) -> bool {
        let Some(user) = self.by_id.remove(id) else {
            return false;
        };
        self.by_key.retain(|_, owner| *owner != user.id);
        self.codes.retain(|(owner, _), _| *owner != user.id);
        true
    }
}

/// The deny list and its channel.
#[derive(Debug)]
struct DenyList {
    until: Mutex<HashMap<String, UnixMillis>>,
    channel: broadcast::Sender<Denial>,
}

impl Default for DenyList {
    fn default() -> Self {
        Self {
            until: Mutex::default(),
            channel: broadcast::Sender::new(DENIALS_BUFFER),
        }
    }
}

/// Users, codes, sessions and the deny list in memory, behind one mutex
/// each.
#[derive(Default, Debug)]
pub struct MemoryStore {
    users: Mutex<Users>,
    sessions: Mutex<HashMap<String, Session>>,
    last_purge: AtomicI64,
    denied: DenyList,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update below leaves the maps consistent before it can panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_user<T>(&self, id: &str, f: impl FnOnce(&mut User) -> T) -> Result<T, StoreError> {
        lock(&self.users)
            .by_id
            .get_mut(id)
            .map(f)
            .ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let mut users = lock(&self.users);
        if users.by_key.contains_key(&new.email_key) {
            return Err(StoreError::Conflict("email"));
        }
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: new.email,
            name: new.name,
            password_hash: new.password_hash,
            email_verified: false,
            disabled: false,
            created_at: now_millis(),
        };
        users.by_key.insert(new.email_key, user.id.clone());
        users.by_id.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    async fn user_by_email(&self, key: &str) -> Result<Option<User>, StoreError> {
        let users = lock(&self.users);
        Ok(users
            .by_key
            .get(key)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.users).by_id.get(id).cloned())
    }

    async fn set_password_hash(&self, id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.with_user(id, |u| u.password_hash = password_hash.to_owned())
    }

    async fn mark_email_verified(&self, id: &str) -> Result<(), StoreError> {
        self.with_user(id, |u| u.email_verified = true)
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        self.with_user(id, |u| u.disabled = disabled)
    }

    async fn change_email(&self, id: &str, email: &str, key: &str) -> Result<(), StoreError> {
        let mut users = lock(&self.users);
        if users.by_key.get(key).is_some_and(|owner| owner != id) {
            return Err(StoreError::Conflict("email"));
        }
        let user = users.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        user.email = email.to_owned();
        user.email_verified = true;
        users.by_key.retain(|_, owner| owner != id);
        users.by_key.insert(key.to_owned(), id.to_owned());
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let removed = lock(&self.users).remove(id);
        if removed {
            lock(&self.sessions).retain(|_, s| s.user_id != id);
        }
        Ok(removed)
    }

    async fn unverified_users(
        &self,
        created_before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        let users = lock(&self.users);
        let mut found: Vec<User> = users
            .by_id
            .values()
            .filter(|u| !u.email_verified && u.created_at < created_before)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        found.truncate(limit);
        Ok(found)
    }

    async fn delete_unverified_user(
        &self,
        id: &str,
        created_before: UnixMillis,
    ) -> Result<bool, StoreError> {
        let removed = {
            let mut users = lock(&self.users);
            match users.by_id.get(id) {
                Some(u) if !u.email_verified && u.created_at < created_before => users.remove(id),
                _ => false,
            }
        };
        if removed {
            lock(&self.sessions).retain(|_, s| s.user_id != id);
        }
        Ok(removed)
    }

    async fn put_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        code: &Code,
    ) -> Result<(), StoreError> {
        let mut users = lock(&self.users);
        if !users.by_id.contains_key(user_id) {
            return Err(StoreError::NotFound);
        }
        users
            .codes
            .insert((user_id.to_owned(), purpose), code.clone());
        Ok(())
    }

    async fn code(&self, user_id: &str, purpose: CodePurpose) -> Result<Option<Code>, StoreError> {
        Ok(lock(&self.users)
            .codes
            .get(&(user_id.to_owned(), purpose))
            .cloned())
    }

    async fn count_code_attempt(
        &self,
        user_id: &str,
        purpose: CodePurpose,
    ) -> Result<Option<Code>, StoreError> {
        let mut users = lock(&self.users);
        Ok(users
            .codes
            .get_mut(&(user_id.to_owned(), purpose))
            .map(|code| {
                code.attempts = code.attempts.saturating_add(1);
                code.clone()
            }))
    }

    async fn take_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        hash: &SecretHash,
    ) -> Result<Option<Code>, StoreError> {
        let mut users = lock(&self.users);
        let key = (user_id.to_owned(), purpose);
        if users.codes.get(&key).is_some_and(|c| c.hash == *hash) {
            return Ok(users.codes.remove(&key));
        }
        Ok(None)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let now = now_millis();
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last >= PURGE_EVERY_MS
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.purge_expired(now).await?;
        }
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&session.id) {
            return Err(StoreError::Conflict("session id"));
        }
        sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        Ok(lock(&self.sessions).get(id).cloned())
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(rotation.session_id) {
            Some(s) if !s.revoked && s.current_hash == *rotation.expected => {
                s.current_hash = *rotation.next;
                s.rotated_at = rotation.rotated_at;
                s.last_used_at = rotation.rotated_at;
                s.expires_at = rotation.expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(match lock(&self.sessions).get_mut(id) {
            Some(s) if !s.revoked => {
                s.revoked = true;
                true
            }
            _ => false,
        })
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut sessions = lock(&self.sessions);
        let mut ids: Vec<String> = sessions
            .values_mut()
            .filter(|s| s.user_id == user_id && !s.revoked && Some(s.id.as_str()) != except)
            .map(|s| {
                s.revoked = true;
                s.id.clone()
            })
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<Session>, StoreError> {
        let mut found: Vec<Session> = lock(&self.sessions)
            .values()
            .filter(|s| s.user_id == user_id && s.is_live(now))
            .cloned()
            .collect();
        super::newest_first(&mut found);
        Ok(found)
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| s.expires_at > now);
        let purged = (before - sessions.len()) as u64;
        drop(sessions);
        lock(&self.denied.until).retain(|_, until| *until > now);
        Ok(purged)
    }

    async fn deny(&self, ids: &[String], until: UnixMillis) -> Result<(), StoreError> {
        {
            let now = now_millis();
            let mut list = lock(&self.denied.until);
            list.retain(|_, u| *u > now);
            for id in ids {
                let entry = list.entry(id.clone()).or_insert(until);
                *entry = (*entry).max(until);
            }
        }
        for id in ids {
            // No subscriber is not an error.
            let _ = self.denied.channel.send(Denial {
                id: id.clone(),
                until,
            });
        }
        Ok(())
    }

    async fn denied(&self, after: UnixMillis) -> Result<Vec<Denial>, StoreError> {
        Ok(lock(&self.denied.until)
            .iter()
            .filter(|(_, until)| **until > after)
            .map(|(id, until)| Denial {
                id: id.clone(),
                until: *until,
            })
            .collect())
    }

    async fn subscribe(&self) -> Result<Option<Denials>, StoreError> {
        let mut from = self.denied.channel.subscribe();
        let (to, rx) = mpsc::channel(DENIALS_BUFFER);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // The reader went away.
                    () = to.closed() => return,
                    msg = from.recv() => match msg {
                        // A full reader would make us drop messages silently:
                        // end the subscription so that it reloads instead.
                        Ok(denial) => if to.try_send(denial).is_err() { return },
                        // Lagged (messages lost) or the store is gone.
                        Err(_) => return,
                    },
                }
            }
        });
        Ok(Some(rx))
    }
}
