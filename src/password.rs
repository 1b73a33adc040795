//! Passwords: the policy, and argon2id hashing off the async workers.
//!
//! - Hashes are argon2id PHC strings with OWASP's parameters by default
//!   (m = 19 MiB, t = 2, p = 1). A hash made with other parameters is
//!   re-made on the next successful sign-in.
//! - Hashing runs in `spawn_blocking` behind a semaphore sized to leave the
//!   async runtime at least one core (one permit on a 2-core machine), so a
//!   flood of sign-ins queues instead of exhausting memory or starving other
//!   requests. Past a bounded queue, requests are turned away with `429` at
//!   once. Each permit owns one reusable `m`-KiB argon2 work area, so memory
//!   is `permits x m` however long the flood lasts (allocating 19 MiB per hash
//!   instead lets the allocator's heaps grow to hundreds of MiB).
//! - Length is 12 to 128 characters by default, counted in Unicode scalar
//!   values and checked *before* hashing; nothing is ever truncated. Any
//!   Unicode is welcome (NUL and other control characters are not).
//! - The 30,000 most common passwords (`data/common-passwords.txt.gz`) are
//!   refused, compared lower-cased.
//! - An unknown login is verified against a dummy hash, so it costs the same
//!   time as a wrong password.

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::AuthError;

/// The password rules and the cost of hashing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (default 12).
    pub min_chars: usize,
    /// Most characters (default 128); longer passwords are refused, never truncated.
    pub max_chars: usize,
    /// Refuse passwords on the common-password list (default true).
    pub refuse_common: bool,
    /// Argon2id memory cost in KiB (default 19456 = 19 MiB).
    pub memory_kib: u32,
    /// Argon2id iterations (default 2).
    pub iterations: u32,
    /// Argon2id lanes (default 1).
    pub parallelism: u32,
    /// Hashes computed at once (default: one less than the CPU count, at least 1).
    pub max_concurrent_hashes: usize,
    /// Requests allowed to wait for a hashing slot before new ones get `429`
    /// (default 256).
    pub max_queued_hashes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordPolicy {
            min_chars: 12,
            max_chars: 128,
            refuse_common: true,
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent_hashes: cores.saturating_sub(1).max(1),
            max_queued_hashes: 256,
        }
    }
}

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let gz: &[u8] = include_bytes!("../data/common-passwords.txt.gz");
    let mut text = String::new();
    // The list is part of the crate; a decode failure would be a packaging bug.
    if flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .is_err()
    {
        tracing::error!("the common-password list could not be decoded");
    }
    text.lines().map(str::to_owned).collect()
});

/// Whether `password` (lower-cased) is on the built-in common-password list.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(&password.to_lowercase())
}

/// Outcome of [`Passwords::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) ok: bool,
    pub(crate) needs_rehash: bool,
}

/// Hashing and checking, bounded.
pub(crate) struct Passwords {
    policy: PasswordPolicy,
    params: Params,
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    dummy: OnceCell<String>,
    /// Work areas of the policy's size, one per permit at most.
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// Runs argon2 in a work area from `areas` (or a fresh one for a stored hash
/// with other parameters), returning the area afterwards.
fn compute(
    argon2: &Argon2<'_>,
    areas: &Mutex<Vec<Vec<Block>>>,
    standard_blocks: usize,
    password: &[u8],
    salt: Salt<'_>,
    output_len: usize,
) -> Option<Output> {
    let blocks = argon2.params().block_count();
    let lock = || areas.lock().unwrap_or_else(|e| e.into_inner());
    let mut area = if blocks == standard_blocks {
        lock().pop()
    } else {
        None
    }
    .unwrap_or_else(|| vec![Block::default(); blocks]);
    let mut salt_buf = [0u8; 64];
    let out = salt.decode_b64(&mut salt_buf).ok().and_then(|salt| {
        Output::init_with(output_len, |out| {
            argon2
                .hash_password_into_with_memory(password, salt, out, &mut area)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .ok()
    });
    if blocks == standard_blocks {
        lock().push(area);
    }
    out
}

impl Passwords {
    pub(crate) fn new(policy: PasswordPolicy) -> Result<Self, String> {
        let params = Params::new(
            policy.memory_kib,
            policy.iterations,
            policy.parallelism,
            None,
        )
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        if policy.min_chars == 0 || policy.min_chars > policy.max_chars {
            return Err("password policy: need 0 < min_chars <= max_chars".into());
        }
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(policy.max_concurrent_hashes.max(1))),
            queued: AtomicUsize::new(0),
            policy,
            params,
            dummy: OnceCell::new(),
            areas: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The policy's complaints about `password`, empty when it is acceptable.
    pub(crate) fn problems(&self, password: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let chars = password.chars().count();
        if chars < self.policy.min_chars {
            problems.push(format!(
                "Use at least {} characters.",
                self.policy.min_chars
            ));
        }
        if chars > self.policy.max_chars {
            problems.push(format!("Use at most {} characters.", self.policy.max_chars));
        }
        if password.chars().any(char::is_control) {
            problems.push("Control characters are not allowed.".to_owned());
        }
        if problems.is_empty() && self.policy.refuse_common && is_common(password) {
            problems.push("This password is too common.".to_owned());
        }
        problems
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs `f` on the blocking pool once a hashing slot is free.
    async fn bounded<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        struct Dequeue<'a>(&'a AtomicUsize);
        impl Drop for Dequeue<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let dequeue = Dequeue(&self.queued);
        if queued >= self.policy.max_queued_hashes + self.policy.max_concurrent_hashes {
            tracing::warn!(queued, "password hashing queue full; refusing");
            return Err(AuthError::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
            });
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Internal("hashing semaphore closed"))?;
        drop(dequeue);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| AuthError::Internal("hashing task failed"))
    }

    /// Hashes `password` (call [`Passwords::problems`] first).
    pub(crate) async fn hash(&self, password: String) -> Result<String, AuthError> {
        let argon2 = self.argon2();
        let (areas, standard) = (self.areas.clone(), self.params.block_count());
        self.bounded(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            let output = compute(
                &argon2,
                &areas,
                standard,
                password.as_bytes(),
                salt.as_salt(),
                Params::DEFAULT_OUTPUT_LEN,
            )?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(argon2.params()).ok()?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Some(phc.to_string())
        })
        .await?
        .ok_or(AuthError::Internal("password hashing failed"))
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        self.dummy
            .get_or_try_init(|| self.hash("dummy password for unknown logins".to_owned()))
            .await
            .cloned()
    }

    /// Checks `password` against `phc`, or against a dummy hash when the
    /// login is unknown (`None`), which always fails but takes the same time.
    pub(crate) async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<Verdict, AuthError> {
        let known = phc.is_some();
        let phc = match phc {
            Some(phc) => phc,
            None => self.dummy_hash().await?,
        };
        // Over-long input never reaches argon2.
        if password.chars().count() > self.policy.max_chars {
            return Ok(Verdict {
                ok: false,
                needs_rehash: false,
            });
        }
        let params = self.params.clone();
        let (areas, standard) = (self.areas.clone(), self.params.block_count());
        self.bounded(move || {
            let refused = Verdict {
                ok: false,
                needs_rehash: false,
            };
            let Ok(hash) = PasswordHash::new(&phc) else {
                return refused;
            };
            let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
                return refused;
            };
            let (Ok(algorithm), Ok(stored)) =
                (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
            else {
                return refused;
            };
            let version = hash
                .version
                .and_then(|v| Version::try_from(v).ok())
                .unwrap_or_default();
            let argon2 = Argon2::new(algorithm, version, stored.clone());
            let computed = compute(
                &argon2,
                &areas,
                standard,
                password.as_bytes(),
                salt,
                expected.len(),
            );
            // `Output` compares in constant time.
            let ok = known && computed.is_some_and(|c| c == expected);
            let current = algorithm == Algorithm::Argon2id
                && version == Version::V0x13
                && stored.m_cost() == params.m_cost()
                && stored.t_cost() == params.t_cost()
                && stored.p_cost() == params.p_cost();
            Verdict {
                ok,
                needs_rehash: ok && !current,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn small() -> PasswordPolicy {
        PasswordPolicy {
            memory_kib: 1024,
            ..PasswordPolicy::default()
        }
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        let p = Passwords::new(small()).unwrap();
        let phc = p.hash("correct horse battery staple".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"), "{phc}");
        // The argon2 crate's own verifier agrees, both ways.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        let theirs = Argon2::default()
            .hash_password(
                b"another good password",
                &SaltString::generate(&mut argon2::password_hash::rand_core::OsRng),
            )
            .unwrap()
            .to_string();
        let v = p
            .verify("another good password".into(), Some(theirs.clone()))
            .await
            .unwrap();
        assert!(v.ok);
        assert!(v.needs_rehash, "default params differ from the policy's");
        assert!(
            !p.verify("another good passwore".into(), Some(theirs))
                .await
                .unwrap()
                .ok
        );
    }

    #[tokio::test]
    async fn verify_refuses_unknown_logins_and_garbage() {
        let p = Passwords::new(small()).unwrap();
        let phc = p.hash("correct horse battery staple".into()).await.unwrap();
        let v = p
            .verify("correct horse battery staple".into(), Some(phc.clone()))
            .await
            .unwrap();
        assert_eq!(
            v,
            Verdict {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(
            !p.verify("correct horse battery staple".into(), None)
                .await
                .unwrap()
                .ok
        );
        assert!(
            !p.verify("x".into(), Some("not a phc string".into()))
                .await
                .unwrap()
                .ok
        );
        let long = "x".repeat(129);
        assert!(!p.verify(long, Some(phc)).await.unwrap().ok);
    }

    #[test]
    fn policy_problems() {
        let p = Passwords::new(PasswordPolicy::default()).unwrap();
        assert!(p.problems("correct horse battery staple").is_empty());
        assert!(!p.problems("short").is_empty());
        assert!(!p.problems(&"x".repeat(129)).is_empty());
        assert!(!p.problems("qwertyuiop123").is_empty() || !is_common("qwertyuiop123"));
        assert!(is_common("password") && is_common("PASSWORD") && is_common("123456"));
        assert!(COMMON.len() >= 10_000);
        assert!(!p.problems("tab\tinside password").is_empty());
        assert!(p.problems("語".repeat(12).as_str()).is_empty());
    }

    #[tokio::test]
    async fn work_areas_are_reused_not_reallocated() {
        let p = Passwords::new(small()).unwrap();
        for _ in 0..5 {
            p.hash("correct horse battery staple".into()).await.unwrap();
        }
        let areas = p.areas.lock().unwrap();
        assert!(
            areas.len() <= p.policy.max_concurrent_hashes,
            "{} areas",
            areas.len()
        );
    }
}
