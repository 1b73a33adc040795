//! Passwords: the policy, and argon2id hashing off the async workers.
//!
//! - Hashes are argon2id PHC strings with OWASP's parameters by default
//!   (m = 19 MiB, t = 2, p = 1). A hash made with other parameters is
//!   re-made on the next successful sign-in.
//! - Hashing runs off the async workers, on a small pool of dedicated
//!   threads sized to leave the runtime at least one core (one thread on a
//!   2-core machine), fed by a bounded queue: a flood of sign-ins waits in
//!   line, and past the queue's end it is turned away with `429` at once.
//!   - The queue is shared fairly: one client address may have at most
//!     [`max_hashes_per_client`](PasswordSettings::max_hashes_per_client) jobs
//!     queued or running; past that its requests get `429` at once while
//!     other addresses still get in line.
//!   - The threads run at the lowest CPU priority (`SCHED_IDLE` on Linux,
//!     which any request-handling thread preempts on wakeup; nice 19
//!     elsewhere), so hashing takes what request handling leaves: during a
//!     sign-in flood, authenticated requests keep their latency. (They are
//!     the crate's own threads rather than tokio's shared `spawn_blocking`
//!     pool, whose priority is not ours to change.)
//!   - Each thread keeps one `m`-KiB argon2 work area for its life, so memory
//!     is `threads x m` however long the flood lasts (allocating 19 MiB per
//!     hash instead lets the allocator's heaps grow to hundreds of MiB).
//! - Length is 12 to 128 characters by default, counted in Unicode scalar
//!   values and checked *before* hashing; nothing is ever truncated. Any
//!   Unicode is welcome (NUL and other control characters are not).
//! - The 30,000 most common passwords (`data/common-passwords.txt.gz`) are
//!   refused, compared lower-cased.
//! - An unknown login is verified against a dummy hash, so it costs the same
//!   time as a wrong password.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, oneshot};

/// The password rules and the cost of hashing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSettings {
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
    /// Hashing threads, i.e. hashes computed at once (default: one less than
    /// the CPU count, at least 1).
    pub max_concurrent_hashes: usize,
    /// Requests allowed to wait for a hashing thread before new ones get
    /// `429` (default 256).
    pub max_queued_hashes: usize,
    /// Hashing jobs (queued or running) one client address may have at
    /// once; past it that address gets `429` at once, so one address cannot
    /// fill the queue and starve the others. `None` (the default) means
    /// `max(2, max_queued_hashes / 8)`. Callers without a known address
    /// (and the crate's own work) are not limited by it.
    pub max_hashes_per_client: Option<usize>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordSettings {
            min_chars: 12,
            max_chars: 128,
            refuse_common: true,
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent_hashes: cores.saturating_sub(1).max(1),
            max_queued_hashes: 256,
            max_hashes_per_client: None,
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
pub(crate) fn is_common(password: &str) -> bool {
    COMMON.contains(&password.to_lowercase())
}

/// Why hashing could not run; the router answers `429` or `500`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HashError {
    /// The queue, or the client's share of it, is full: try again in a second.
    #[error("the password hashing queue is full")]
    Busy,
    /// A hashing thread or job failed.
    #[error("password hashing failed: {0}")]
    Failed(&'static str),
}

/// Outcome of [`Passwords::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) ok: bool,
    pub(crate) needs_rehash: bool,
}

/// A job for a hashing thread, given that thread's work area.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Hashing and checking, on a bounded pool of low-priority threads.
pub(crate) struct Passwords {
    policy: PasswordSettings,
    params: Params,
    jobs: SyncSender<Job>,
    dummy: OnceCell<String>,
    per_client: usize,
    in_flight: InFlight,
}

/// Jobs queued or running per client address (only addresses with jobs).
type InFlight = Arc<Mutex<HashMap<String, usize>>>;

/// One job's place in its client's share, given back on drop. It travels
/// with the job: a caller that goes away leaves its job in the queue, and
/// the place stays taken until the job has run (or is discarded).
struct ClientSlot {
    in_flight: InFlight,
    client: String,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

/// One hashing thread: lowest CPU priority, one work area, jobs until the
/// `Passwords` is dropped.
fn hashing_thread(jobs: Arc<Mutex<Receiver<Job>>>) {
    if let Err(e) = lower_priority() {
        tracing::debug!(error = ?e, "could not lower the hashing thread's priority");
    }
    let mut area = Vec::new();
    loop {
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { return };
        // A panicking job loses its answer (the caller gets a 500), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut area)));
    }
}

/// Linux: `SCHED_IDLE`, which any waking request-handling thread preempts at
/// once (a nice-19 thread can keep its CPU for a whole time slice, a few
/// milliseconds of tail latency).
#[cfg(target_os = "linux")]
fn lower_priority() -> Result<(), thread_priority::Error> {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
    thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        thread_priority::ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
    )
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() -> Result<(), thread_priority::Error> {
    thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
}

/// Runs argon2 in `area`, resized to the parameters' block count.
fn compute(
    argon2: &Argon2<'_>,
    area: &mut Vec<Block>,
    password: &[u8],
    salt: Salt<'_>,
    output_len: usize,
) -> Option<Output> {
    let blocks = argon2.params().block_count();
    if area.len() != blocks {
        *area = vec![Block::default(); blocks];
    }
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).ok()?;
    Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut *area)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .ok()
}

impl Passwords {
    pub(crate) fn new(policy: PasswordSettings) -> Result<Self, String> {
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
        let per_client = policy
            .max_hashes_per_client
            .unwrap_or((policy.max_queued_hashes / 8).max(2));
        if per_client == 0 {
            return Err("password policy: need max_hashes_per_client >= 1".into());
        }
        let (jobs, queue) = sync_channel::<Job>(policy.max_queued_hashes);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..policy.max_concurrent_hashes.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("authkit-hash-{i}"))
                .spawn(move || hashing_thread(queue))
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Passwords {
            policy,
            params,
            jobs,
            dummy: OnceCell::new(),
            per_client,
            in_flight: Arc::default(),
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

    /// Takes a place in `client`'s share of the queue; `429` when its share
    /// is used up. `None` (no known address) is not limited.
    fn admit(&self, client: Option<&str>) -> Result<Option<ClientSlot>, HashError> {
        let Some(client) = client else {
            return Ok(None);
        };
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(client.to_owned()).or_insert(0);
        if *n >= self.per_client {
            tracing::info!(client = ?client, "client's share of the hashing queue used up");
            return Err(HashError::Busy);
        }
        *n += 1;
        Ok(Some(ClientSlot {
            in_flight: self.in_flight.clone(),
            client: client.to_owned(),
        }))
    }

    /// Runs `f` on a hashing thread, in that thread's work area, for
    /// `client` (a client address, `None` when unknown); `429` when the
    /// queue or the client's share of it is full.
    async fn bounded<T: Send + 'static>(
        &self,
        client: Option<&str>,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let slot = self.admit(client)?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |area| {
            let out = f(area);
            // The share is free again before the caller hears back.
            drop(slot);
            let _ = answer.send(out);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("password hashing queue full; refusing");
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed("hashing threads gone"));
            }
        }
        answered
            .await
            .map_err(|_| HashError::Failed("hashing task failed"))
    }

    /// Hashes `password` (call [`Passwords::problems`] first) for `client`
    /// (its address, for its share of the queue; `None` when unknown).
    pub(crate) async fn hash(
        &self,
        password: String,
        client: Option<&str>,
    ) -> Result<String, HashError> {
        let argon2 = self.argon2();
        self.bounded(client, move |area| {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            let output = compute(
                &argon2,
                area,
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
        .ok_or(HashError::Failed("password hashing failed"))
    }

    async fn dummy_hash(&self) -> Result<String, HashError> {
        self.dummy
            .get_or_try_init(|| self.hash("dummy password for unknown logins".to_owned(), None))
            .await
            .cloned()
    }

    /// Checks `password` against `phc`, or against a dummy hash when the
    /// login is unknown (`None`), which always fails but takes the same time;
    /// `client` as for [`Passwords::hash`].
    pub(crate) async fn verify(
        &self,
        password: String,
        phc: Option<String>,
        client: Option<&str>,
    ) -> Result<Verdict, HashError> {
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
        self.bounded(client, move |area| {
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
            let computed = compute(&argon2, area, password.as_bytes(), salt, expected.len());
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

    fn small() -> PasswordSettings {
        PasswordSettings {
            memory_kib: 1024,
            ..PasswordSettings::default()
        }
    }

    /// Field 41 of `/proc/thread-self/stat` is the scheduling policy.
    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_threads_run_under_sched_idle() {
        const SCHED_IDLE: &str = "5";
        let policy = std::thread::spawn(|| {
            lower_priority().unwrap();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let after_comm = stat.rsplit_once(')').unwrap().1;
            after_comm
                .split_whitespace()
                .nth(41 - 3)
                .unwrap()
                .to_owned()
        })
        .join()
        .unwrap();
        assert_eq!(policy, SCHED_IDLE);
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        let p = Passwords::new(small()).unwrap();
        let phc = p
            .hash("correct horse battery staple".into(), None)
            .await
            .unwrap();
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
            .verify("another good password".into(), Some(theirs.clone()), None)
            .await
            .unwrap();
        assert!(v.ok);
        assert!(v.needs_rehash, "default params differ from the policy's");
        assert!(
            !p.verify("another good passwore".into(), Some(theirs), None)
                .await
                .unwrap()
                .ok
        );
    }

    #[tokio::test]
    async fn verify_refuses_unknown_logins_and_garbage() {
        let p = Passwords::new(small()).unwrap();
        let phc = p
            .hash("correct horse battery staple".into(), None)
            .await
            .unwrap();
        let v = p
            .verify(
                "correct horse battery staple".into(),
                Some(phc.clone()),
                None,
            )
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
            !p.verify("correct horse battery staple".into(), None, None)
                .await
                .unwrap()
                .ok
        );
        assert!(
            !p.verify("x".into(), Some("not a phc string".into()), None)
                .await
                .unwrap()
                .ok
        );
        let long = "x".repeat(129);
        assert!(!p.verify(long, Some(phc), None).await.unwrap().ok);
    }

    #[test]
    fn policy_problems() {
        let p = Passwords::new(PasswordSettings::default()).unwrap();
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
    async fn a_full_queue_answers_429_at_once() {
        let p = Arc::new(
            Passwords::new(PasswordSettings {
                max_concurrent_hashes: 1,
                max_queued_hashes: 1,
                memory_kib: 8 * 1024,
                ..PasswordSettings::default()
            })
            .unwrap(),
        );
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(
                    async move { p.hash("correct horse battery staple".into(), None).await },
                )
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => {}
                Err(HashError::Busy) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            refused > 0,
            "some of 8 concurrent hashes must find the queue full"
        );
    }

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test]
    async fn one_address_gets_its_share_of_the_queue_and_no_more() {
        use futures_util::FutureExt;

        const A: &str = "192.0.2.1";
        let p = Passwords::new(PasswordSettings {
            max_concurrent_hashes: 1,
            max_queued_hashes: 16,
            ..small()
        })
        .unwrap();
        assert_eq!(p.per_client, 2, "max(2, 16 / 8)");
        // Hold the only hashing thread until the test lets go.
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let mut first = std::pin::pin!(p.bounded(Some(A), move |_| {
            let _ = wait.recv();
        }));
        assert!(poll_once(first.as_mut()).is_pending());
        // A's second job waits in the queue. Its caller goes away; the job,
        // and its place in A's share, stay.
        assert!(p.bounded(Some(A), |_| ()).now_or_never().is_none());
        // A has used its share: refused at once, on every entry point.
        let refused = |r: Option<Result<_, HashError>>| matches!(r, Some(Err(HashError::Busy)));
        assert!(refused(p.bounded(Some(A), |_| ()).now_or_never()));
        assert!(refused(
            p.hash("correct horse battery staple".into(), Some(A))
                .now_or_never()
                .map(|r| r.map(drop))
        ));
        // Another address still gets in line, and so do callers without an
        // address, past any share.
        let mut other = std::pin::pin!(p.bounded(Some("198.51.100.7"), |_| 7));
        assert!(poll_once(other.as_mut()).is_pending());
        let mut unknown: Vec<_> = (0..3)
            .map(|i| Box::pin(p.bounded(None, move |_| i)))
            .collect();
        for u in &mut unknown {
            assert!(poll_once(u.as_mut()).is_pending());
        }
        go.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(other.await.unwrap(), 7);
        for (i, u) in unknown.into_iter().enumerate() {
            assert_eq!(u.await.unwrap(), i);
        }
        // Every job has run (FIFO, one thread): A's share is free again,
        // including the place of the caller that went away.
        assert_eq!(p.bounded(Some(A), |_| 2).await.unwrap(), 2);
        assert!(
            p.in_flight.lock().unwrap().is_empty(),
            "nothing left counted"
        );
    }

    #[test]
    fn a_zero_share_is_refused() {
        let policy = PasswordSettings {
            max_hashes_per_client: Some(0),
            ..small()
        };
        assert!(Passwords::new(policy).is_err());
    }
}
