//! The shared deny list, in one process: several `Auth`s over one store
//! stand for several instances. A revocation on one reaches the others
//! through the store's channel, or by polling when there is none or it is
//! down (logged at WARN); a new instance refuses from the start; the sync
//! task ends with the last clone of its `Auth`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum_authkit::store::{
    Denial, Denials, MemoryStore, Rotation, Session, SessionStore, StoreError, UnixMillis, User,
};
use axum_authkit::{Auth, Client, TokenError};

use crate::support::{base_builder, keyset, new_user};

/// The promised bound.
const PROPAGATION: Duration = Duration::from_secs(1);

/// What the wrapper's `subscribe` does.
#[derive(Clone, Copy)]
enum Channel {
    /// `Ok(None)`: no channel.
    None,
    /// Always an error: the channel is down for good.
    Down,
}

/// A memory store whose channel is replaced, counting reads of the list.
struct Wrapped {
    inner: Arc<MemoryStore>,
    channel: Channel,
    reads: AtomicUsize,
}

impl Wrapped {
    fn new(inner: &Arc<MemoryStore>, channel: Channel) -> Arc<Self> {
        Arc::new(Self {
            inner: inner.clone(),
            channel,
            reads: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl SessionStore for Wrapped {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<bool, StoreError> {
        self.inner.rotate(rotation).await
    }
    async fn revoke_session(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_session(id).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.revoke_user_sessions(user_id, except).await
    }
    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixMillis,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.user_sessions(user_id, now).await
    }
    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
    async fn deny(&self, ids: &[String], until: UnixMillis) -> Result<(), StoreError> {
        self.inner.deny(ids, until).await
    }
    async fn denied(&self, after: UnixMillis) -> Result<Vec<Denial>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.denied(after).await
    }
    async fn subscribe(&self) -> Result<Option<Denials>, StoreError> {
        match self.channel {
            Channel::None => Ok(None),
            Channel::Down => Err(StoreError::unavailable("test: the channel is down")),
        }
    }
}

/// An `Auth` over `store` for users and `sessions` for sessions.
fn instance(store: &Arc<MemoryStore>, sessions: Arc<dyn SessionStore>) -> Auth {
    base_builder(store, keyset())
        .sessions(sessions)
        .build()
        .unwrap()
}

async fn user(store: &MemoryStore) -> User {
    new_user(store, &format!("{}@example.test", uuid_like())).await
}

fn uuid_like() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    format!("revoke{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Polls until `auth` refuses `token` as revoked; fails after [`PROPAGATION`].
async fn refused_within(auth: &Auth, token: &str, since: Instant, what: &str) {
    loop {
        match auth.verify(token) {
            Err(TokenError::Revoked) => return,
            Ok(_) => assert!(
                since.elapsed() < PROPAGATION,
                "{what}: still accepted {:?} after the revocation",
                since.elapsed()
            ),
            Err(e) => panic!("{what}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Signs in on `a`, makes `others` cache the token, signs out on `a`, and
/// checks that every one of `others` refuses it within the bound.
async fn revoke_and_check(store: &Arc<MemoryStore>, a: &Auth, others: &[&Auth], what: &str) {
    let user = user(store).await;
    let tokens = a.start_session(&user, &Client::trusted()).await.unwrap();
    let token = tokens.access.token.clone();
    for other in others {
        other.verify(&token).expect("live before the revocation");
    }
    assert!(a.sign_out(None, Some(token.as_bytes())).await.unwrap());
    let since = Instant::now();
    assert!(matches!(a.verify(&token), Err(TokenError::Revoked)));
    for other in others {
        refused_within(other, &token, since, what).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_instance_through_the_channel() {
    let store = Arc::new(MemoryStore::new());
    let [a, b, c] = [(); 3].map(|()| instance(&store, store.clone()));
    revoke_and_check(&store, &a, &[&b, &c], "channel").await;
    revoke_and_check(&store, &c, &[&a, &b], "channel, from C").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_channel_instances_poll() {
    let store = Arc::new(MemoryStore::new());
    let sessions = Wrapped::new(&store, Channel::None);
    let [a, b, c] = [(); 3].map(|()| instance(&store, sessions.clone()));
    revoke_and_check(&store, &a, &[&b, &c], "polling").await;
}

/// Log lines, for a subscriber set as the thread's default (the tests using
/// it run on one thread, sync tasks included).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_channel_that_is_down_is_logged_once_and_polling_converges() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = Arc::new(MemoryStore::new());
    let sessions = Wrapped::new(&store, Channel::Down);
    let [a, b] = [(); 2].map(|()| instance(&store, sessions.clone()));
    revoke_and_check(&store, &a, &[&b], "channel down").await;
    // Past a resubscription attempt: still one warning per instance.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    revoke_and_check(&store, &b, &[&a], "channel still down").await;
    let text = lines.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("revocation channel down"))
        .collect();
    assert_eq!(warnings.len(), 2, "one warning per instance: {text}");
    assert!(warnings.iter().all(|l| l.contains("WARN")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_refuses_what_was_revoked_before_it_started() {
    let store = Arc::new(MemoryStore::new());
    let a = instance(&store, store.clone());
    let user = user(&store).await;
    let tokens = a.start_session(&user, &Client::trusted()).await.unwrap();
    let token = tokens.access.token;
    assert!(a.sign_out(None, Some(token.as_bytes())).await.unwrap());
    drop(a);

    // Loaded before serving: refused from the first request.
    let b = instance(&store, store.clone());
    assert_eq!(b.load_revocations().await.unwrap(), 1);
    assert!(matches!(b.verify(&token), Err(TokenError::Revoked)));

    // Or by the sync task, shortly after the start.
    let since = Instant::now();
    let c = instance(&store, store.clone());
    refused_within(&c, &token, since, "sync task at start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_task_ends_with_the_last_clone() {
    let store = Arc::new(MemoryStore::new());
    let sessions = Wrapped::new(&store, Channel::None);
    let auth = instance(&store, sessions.clone());
    let clone = auth.clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(sessions.reads.load(Ordering::SeqCst) > 0, "the task polls");
    drop(auth);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reads = sessions.reads.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        sessions.reads.load(Ordering::SeqCst) > reads,
        "one clone left: the task still polls"
    );
    drop(clone);
    // Let an in-flight poll finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reads = sessions.reads.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        sessions.reads.load(Ordering::SeqCst),
        reads,
        "the task still runs after the last clone was dropped"
    );
    assert_eq!(
        Arc::strong_count(&sessions),
        1,
        "the task let go of the store"
    );
}
