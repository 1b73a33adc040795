//! [`MemoryStore`]: users and refresh families in process memory.
//!
//! For tests, examples and single-process apps that accept losing every
//! sign-in on restart. Expired families are purged as new ones arrive (at most
//! once a minute), so memory stays bounded by the live sign-ins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

use super::{
    Family, NewUser, RefreshStore, Rotation, StoreError, UnixMillis, User, UserStore,
    VerificationCode, email_key,
};
use crate::time::now_millis;

const PURGE_EVERY_MS: i64 = 60_000;

#[derive(Default, Debug)]
struct Users {
    by_id: HashMap<String, User>,
    by_email: HashMap<String, String>,
    codes: HashMap<String, VerificationCode>,
}

/// Users and refresh families in memory, behind one mutex each.
#[derive(Default, Debug)]
pub struct MemoryStore {
    users: Mutex<Users>,
    families: Mutex<HashMap<String, Family>>,
    last_purge: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update below is a single assignment, so a poisoned map is consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of families held (live, revoked or expired but not yet purged).
    pub fn family_count(&self) -> usize {
        lock(&self.families).len()
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
        let key = email_key(&new.email);
        let mut users = lock(&self.users);
        if users.by_email.contains_key(&key) {
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
        users.by_email.insert(key, user.id.clone());
        users.by_id.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let users = lock(&self.users);
        Ok(users
            .by_email
            .get(&email_key(email))
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
        let mut users = lock(&self.users);
        let user = users.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        user.email_verified = true;
        users.codes.remove(id);
        Ok(())
    }

    async fn set_verification_code(
        &self,
        id: &str,
        code: &VerificationCode,
    ) -> Result<(), StoreError> {
        let mut users = lock(&self.users);
        if !users.by_id.contains_key(id) {
            return Err(StoreError::NotFound);
        }
        users.codes.insert(id.to_owned(), code.clone());
        Ok(())
    }

    async fn verification_code(&self, id: &str) -> Result<Option<VerificationCode>, StoreError> {
        Ok(lock(&self.users).codes.get(id).cloned())
    }

    async fn count_verification_attempt(&self, id: &str) -> Result<u32, StoreError> {
        let mut users = lock(&self.users);
        let code = users.codes.get_mut(id).ok_or(StoreError::NotFound)?;
        code.attempts = code.attempts.saturating_add(1);
        Ok(code.attempts)
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError> {
        self.with_user(id, |u| u.disabled = disabled)
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create_family(&self, family: &Family) -> Result<(), StoreError> {
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
        let mut families = lock(&self.families);
        if families.contains_key(&family.id) {
            return Err(StoreError::Conflict("family id"));
        }
        families.insert(family.id.clone(), family.clone());
        Ok(())
    }

    async fn family(&self, id: &str) -> Result<Option<Family>, StoreError> {
        Ok(lock(&self.families).get(id).cloned())
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        let mut families = lock(&self.families);
        match families.get_mut(rotation.family_id) {
            Some(f) if !f.revoked && f.current_hash == *rotation.expected => {
                f.current_hash = *rotation.next;
                f.rotated_at = rotation.rotated_at;
                f.expires_at = rotation.expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_family(&self, id: &str) -> Result<bool, StoreError> {
        Ok(match lock(&self.families).get_mut(id) {
            Some(f) if !f.revoked => {
                f.revoked = true;
                true
            }
            _ => false,
        })
    }

    async fn revoke_user_families(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let mut families = lock(&self.families);
        Ok(families
            .values_mut()
            .filter(|f| f.user_id == user_id && !f.revoked)
            .map(|f| {
                f.revoked = true;
                f.id.clone()
            })
            .collect())
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let mut families = lock(&self.families);
        let before = families.len();
        families.retain(|_, f| f.expires_at > now);
        Ok((before - families.len()) as u64)
    }
}
