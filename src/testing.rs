//! The store conformance suite, shipped so that a store of your own can run
//! it (feature `testing`), as the crate's memory, SQLite, PostgreSQL and
//! Redis stores do.
//!
//! Each case is a public async function over a trait object; the macros
//! [`user_store_tests!`](crate::user_store_tests),
//! [`session_store_tests!`](crate::session_store_tests) and
//! [`rate_limiter_tests!`](crate::rate_limiter_tests) expand to one
//! `#[tokio::test]` per case, each on a fresh store from your maker:
//!
//! ```
//! use std::sync::Arc;
//! use axum_authkit::store::MemoryStore;
//!
//! /// A fresh store per test, and whatever keeps it isolated (a temp
//! /// schema, a key prefix; `()` when nothing does). `None` skips the test.
//! async fn make() -> Option<(Arc<MemoryStore>, ())> {
//!     Some((Arc::new(MemoryStore::new()), ()))
//! }
//!
//! axum_authkit::user_store_tests!(make);
//! axum_authkit::session_store_tests!(make, axum_authkit::testing::Expiry::Purge);
//! # fn main() {}
//! ```
//!
//! Your crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features among its dev-dependencies. Timings are never asserted; sleeps
//! only move past windows.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;

use crate::client::Client;
use crate::limits::{Decision, Limit, RateLimiter};
use crate::session::refresh::{Issued, RefreshError, RefreshTokens};
use crate::settings::SessionSettings;
use crate::store::{
    Code, CodePurpose, Denial, NewUser, Rotation, SecretHash, Session, SessionStore, StoreError,
    User, UserStore, email_key,
};
use crate::time::now_millis;

const SECRET: &[u8] = b"store-conformance-secret-0123456789-abcdefghij";
const RACERS: usize = 50;

/// A name unique to this call: `prefix` (lower-cased, `[a-z0-9_]` only, at
/// most 24 characters), the process id, a counter and random bits. Valid as
/// a PostgreSQL schema name, a Redis key prefix and an e-mail local part.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .take(24)
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{prefix}_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// How a store gets rid of expired sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Expired sessions stay readable until `purge_expired` deletes them.
    Purge,
    /// The backend deletes them itself at `expires_at` (Redis TTLs).
    Native,
}

fn policy(grace: Duration) -> SessionSettings {
    SessionSettings {
        refresh_ttl: Duration::from_secs(60),
        lifetime: Duration::from_secs(3600),
        reuse_grace: grace,
    }
}

fn tokens(policy: SessionSettings) -> RefreshTokens {
    RefreshTokens::new(SECRET, policy)
}

async fn rotate(
    tokens: &RefreshTokens,
    store: &dyn SessionStore,
    token: &str,
    now: i64,
) -> Result<Issued, RefreshError> {
    let presented = tokens.present(store, token).await?;
    tokens.rotate(store, presented, now).await
}

async fn revoke(
    tokens: &RefreshTokens,
    store: &dyn SessionStore,
    token: &str,
) -> Result<Option<Session>, StoreError> {
    let Some(session) = tokens.owner(store, token).await? else {
        return Ok(None);
    };
    store.revoke_session(&session.id).await?;
    Ok(Some(session))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn decode(token: &str) -> Vec<u8> {
    let raw = URL_SAFE_NO_PAD.decode(token).expect("token is base64url");
    assert_eq!(raw.len(), 48, "a refresh token is 48 bytes");
    raw
}

/// What a store keeps of a token: SHA-256 of its raw bytes.
fn token_hash(token: &str) -> SecretHash {
    Sha256::digest(decode(token)).into()
}

fn hash_of(seed: &str) -> SecretHash {
    Sha256::digest(seed.as_bytes()).into()
}

async fn load(store: &dyn SessionStore, id: &str) -> Session {
    store
        .session(id)
        .await
        .expect("session()")
        .unwrap_or_else(|| panic!("session {id} is missing"))
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, RefreshError>, what: &str) {
    match result {
        Err(RefreshError::Invalid) => {}
        other => panic!("{what}: expected RefreshError::Invalid, got {other:?}"),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

// Sessions.

/// A family written with `create_session` reads back field for field; a
/// second family with the same id is a conflict.
pub async fn session_create_and_read(store: Arc<dyn SessionStore>) {
    let now = now_millis();
    let family = Session {
        id: unique_name("fam"),
        user_id: unique_name("user"),
        current_hash: hash_of("first"),
        rotated_at: 0,
        created_at: now,
        last_used_at: now,
        expires_at: now + 60_000,
        revoked: false,
        user_agent: Some("conformance/1.0".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
    };
    assert_eq!(store.session(&family.id).await.unwrap(), None);
    store.create_session(&family).await.unwrap();
    assert_eq!(load(&*store, &family.id).await, family);

    let clash = Session {
        current_hash: hash_of("other"),
        ..family.clone()
    };
    match store.create_session(&clash).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("duplicate family id: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        load(&*store, &family.id).await,
        family,
        "a refused duplicate must not overwrite the family"
    );
    assert_eq!(store.session(&unique_name("nofam")).await.unwrap(), None);
}

/// 50 concurrent rotations of one token inside the grace window all succeed
/// with the same successor; one live family remains and the successor
/// rotates again.
pub async fn session_concurrent_rotation_in_grace(store: Arc<dyn SessionStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let start = tokens
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let family_id = start.session.id.clone();
    // One instant for every racer: the grace check cannot depend on timing.
    let now = now_millis();

    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, tokens, barrier) = (store.clone(), tokens.clone(), barrier.clone());
            let token = start.token.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                rotate(&tokens, &*store, &token, now).await
            })
        })
        .collect();
    let mut successors = HashSet::new();
    for racer in racers {
        let issued = racer
            .await
            .expect("racer task")
            .expect("every rotation inside the grace window succeeds");
        assert_eq!(issued.session.id, family_id);
        assert!(!issued.session.revoked);
        successors.insert(issued.token);
    }
    assert_eq!(successors.len(), 1, "all racers get the same successor");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, start.token);

    let family = load(&*store, &family_id).await;
    assert!(!family.revoked, "the family is still live");
    assert_eq!(family.current_hash, token_hash(&successor));
    assert_eq!(family.rotated_at, now);

    let next = rotate(&tokens, &*store, &successor, now + 1)
        .await
        .expect("the successor rotates once more");
    assert_ne!(next.token, successor);
    assert_ne!(next.token, start.token);
    assert_eq!(
        load(&*store, &family_id).await.current_hash,
        token_hash(&next.token)
    );

    assert_eq!(
        store.revoke_user_sessions(&user, None).await.unwrap(),
        vec![family_id],
        "exactly one live family for the user"
    );
}

/// A token rotated away longer ago than the grace window is reuse: the whole
/// family is revoked, its newest token included.
pub async fn session_reuse_after_grace(store: Arc<dyn SessionStore>) {
    let grace = Duration::from_millis(300);
    let tokens = tokens(policy(grace));
    let user = unique_name("user");
    let first = tokens
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let id = first.session.id.clone();

    let rotated_at = now_millis();
    let second = rotate(&tokens, &*store, &first.token, rotated_at)
        .await
        .unwrap();
    // Inside the window the old token still yields the same successor.
    let again = rotate(&tokens, &*store, &first.token, rotated_at)
        .await
        .unwrap();
    assert_eq!(again.token, second.token);
    assert!(!load(&*store, &id).await.revoked);

    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    match rotate(&tokens, &*store, &first.token, now_millis()).await {
        Err(RefreshError::Reused { session_id }) => assert_eq!(session_id, id),
        other => panic!("old token after the grace window: expected Reused, got {other:?}"),
    }
    assert!(load(&*store, &id).await.revoked, "reuse revokes the family");
    assert_invalid(
        rotate(&tokens, &*store, &second.token, now_millis()).await,
        "newest token of a family revoked for reuse",
    );
    assert!(
        store
            .revoke_user_sessions(&user, None)
            .await
            .unwrap()
            .is_empty(),
        "no live family is left"
    );
}

/// A token with a real family id but a made-up secret is invalid and
/// revokes nothing.
pub async fn session_forged_token(store: Arc<dyn SessionStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let real = tokens
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let id = real.session.id.clone();
    let before = load(&*store, &id).await;

    let mut forged = decode(&real.token);
    let secret: [u8; 32] = rand::random();
    forged[16..].copy_from_slice(&secret);
    let forged = URL_SAFE_NO_PAD.encode(forged);
    assert_eq!(
        decode(&forged)[..16],
        decode(&real.token)[..16],
        "same session id"
    );

    assert_invalid(
        rotate(&tokens, &*store, &forged, now_millis()).await,
        "forged token",
    );
    assert_eq!(
        revoke(&tokens, &*store, &forged).await.unwrap(),
        None,
        "a forged token cannot revoke"
    );
    assert_eq!(
        load(&*store, &id).await,
        before,
        "the family is untouched by the forgery"
    );
    assert_invalid(
        rotate(&tokens, &*store, "not-a-token", now_millis()).await,
        "malformed token",
    );
    rotate(&tokens, &*store, &real.token, now_millis())
        .await
        .expect("the real token still rotates");
}

/// Revoking one family; revoking all of a user's families returns exactly
/// that user's live ones and leaves other users alone.
pub async fn session_revoke(store: Arc<dyn SessionStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let now = now_millis();
    let alice = unique_name("alice");
    // A user id that extends Alice's: matching must be exact.
    let bob = format!("{alice}0");
    let mut alice_tokens = Vec::new();
    for _ in 0..3 {
        alice_tokens.push(
            tokens
                .start(&*store, &alice, &Client::trusted(), now)
                .await
                .unwrap(),
        );
    }
    let mut bob_tokens = Vec::new();
    for _ in 0..2 {
        bob_tokens.push(
            tokens
                .start(&*store, &bob, &Client::trusted(), now)
                .await
                .unwrap(),
        );
    }

    let revoked = revoke(&tokens, &*store, &alice_tokens[0].token)
        .await
        .unwrap()
        .expect("revoke returns the family");
    assert_eq!(revoked.id, alice_tokens[0].session.id);
    assert_eq!(revoked.user_id, alice);
    assert!(load(&*store, &revoked.id).await.revoked);
    assert!(
        !store.revoke_session(&revoked.id).await.unwrap(),
        "revoking twice reports the family was not live"
    );
    assert_eq!(
        revoke(&tokens, &*store, &alice_tokens[0].token)
            .await
            .unwrap(),
        None
    );
    assert_invalid(
        rotate(&tokens, &*store, &alice_tokens[0].token, now_millis()).await,
        "token of a revoked family",
    );
    assert!(!store.revoke_session(&unique_name("nofam")).await.unwrap());
    assert!(!load(&*store, &alice_tokens[1].session.id).await.revoked);

    let expected: Vec<String> = alice_tokens[1..]
        .iter()
        .map(|t| t.session.id.clone())
        .collect();
    assert_eq!(
        sorted(store.revoke_user_sessions(&alice, None).await.unwrap()),
        sorted(expected),
        "revoke-all returns exactly the user's live families"
    );
    for issued in &alice_tokens {
        assert!(load(&*store, &issued.session.id).await.revoked);
    }
    assert!(
        store
            .revoke_user_sessions(&alice, None)
            .await
            .unwrap()
            .is_empty()
    );

    for issued in &bob_tokens {
        assert!(
            !load(&*store, &issued.session.id).await.revoked,
            "another user's family was revoked"
        );
    }
    rotate(&tokens, &*store, &bob_tokens[0].token, now_millis())
        .await
        .expect("another user's token still rotates");
    assert_eq!(
        sorted(store.revoke_user_sessions(&bob, None).await.unwrap()),
        sorted(bob_tokens.iter().map(|t| t.session.id.clone()).collect()),
    );
    assert!(
        store
            .revoke_user_sessions(&unique_name("nobody"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A family past `expires_at` refuses rotation and goes away: through
/// `purge_expired` (SQL, memory) or by itself (Redis).
pub async fn session_expiry_and_purge(store: Arc<dyn SessionStore>, expiry: Expiry) {
    let ttl = Duration::from_millis(300);
    let short = tokens(SessionSettings {
        refresh_ttl: ttl,
        ..policy(Duration::from_secs(30))
    });
    let long = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let doomed = short
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let live = long
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let expires_at = doomed.session.expires_at;
    assert_eq!(expires_at, doomed.session.created_at + ms(ttl));
    assert_eq!(
        load(&*store, &doomed.session.id).await.expires_at,
        expires_at
    );

    // At `expires_at` exactly the token is refused, and nothing is revoked.
    assert_invalid(
        rotate(&short, &*store, &doomed.token, expires_at).await,
        "rotation at expires_at",
    );
    assert!(!load(&*store, &doomed.session.id).await.revoked);
    if expiry == Expiry::Purge {
        assert_eq!(
            store.purge_expired(expires_at - 1).await.unwrap(),
            0,
            "nothing has expired before expires_at"
        );
        assert!(store.session(&doomed.session.id).await.unwrap().is_some());
    }

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_invalid(
        rotate(&short, &*store, &doomed.token, now_millis()).await,
        "rotation past expires_at",
    );
    match expiry {
        // Purging takes families whose `expires_at` is at or before `now`.
        Expiry::Purge => assert_eq!(
            store.purge_expired(expires_at).await.unwrap(),
            1,
            "exactly the expired family is purged"
        ),
        Expiry::Native => {
            let purged = store.purge_expired(now_millis()).await.unwrap();
            assert!(purged <= 1, "purged {purged} families, only one expired");
        }
    }
    assert_eq!(
        store.session(&doomed.session.id).await.unwrap(),
        None,
        "an expired family is gone"
    );
    assert_eq!(
        load(&*store, &live.session.id).await,
        live.session,
        "a live family survives the purge"
    );
    rotate(&long, &*store, &live.token, now_millis())
        .await
        .expect("the live family still rotates");
}

/// With a family lifetime shorter than the token TTL, rotation never moves
/// `expires_at` past `created_at + lifetime`.
pub async fn session_absolute_lifetime(store: Arc<dyn SessionStore>) {
    let lifetime = Duration::from_secs(20);
    let tokens = tokens(SessionSettings {
        refresh_ttl: Duration::from_secs(600),
        lifetime,
        reuse_grace: Duration::from_secs(30),
    });
    let user = unique_name("user");
    let mut issued = tokens
        .start(&*store, &user, &Client::trusted(), now_millis())
        .await
        .unwrap();
    let created_at = issued.session.created_at;
    let end = created_at + ms(lifetime);
    assert_eq!(issued.session.expires_at, end);
    for step in 1..=3 {
        let prev = issued.token.clone();
        issued = rotate(&tokens, &*store, &prev, now_millis() + step)
            .await
            .unwrap();
        assert_ne!(issued.token, prev);
        assert_eq!(
            issued.session.expires_at, end,
            "rotation extended the family"
        );
        let stored = load(&*store, &issued.session.id).await;
        assert_eq!(stored.expires_at, end, "stored expires_at was extended");
        assert_eq!(stored.created_at, created_at);
    }
    assert_invalid(
        rotate(&tokens, &*store, &issued.token, end).await,
        "rotation at created_at + lifetime",
    );
}

/// The store's compare-and-swap: of 50 concurrent rotations expecting the
/// same hash exactly one wins; stale, revoked and unknown ones never do.
pub async fn session_store_cas(store: Arc<dyn SessionStore>) {
    let now = now_millis();
    let start = hash_of("start");
    let family = Session {
        id: unique_name("fam"),
        user_id: unique_name("user"),
        current_hash: start,
        rotated_at: 0,
        created_at: now,
        last_used_at: now,
        expires_at: now + 60_000,
        revoked: false,
        user_agent: Some("conformance/1.0".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
    };
    store.create_session(&family).await.unwrap();

    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier, id) = (store.clone(), barrier.clone(), family.id.clone());
            tokio::spawn(async move {
                let next = hash_of(&format!("next-{i}"));
                barrier.wait().await;
                let won = store
                    .rotate(Rotation {
                        session_id: &id,
                        expected: &start,
                        next: &next,
                        rotated_at: now + 1,
                        expires_at: now + 120_000,
                    })
                    .await
                    .expect("rotate");
                (i, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (i, won) = racer.await.expect("racer task");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let winner = hash_of(&format!("next-{}", winners[0]));
    let stored = load(&*store, &family.id).await;
    assert_eq!(stored.current_hash, winner);
    assert_eq!(stored.rotated_at, now + 1);
    assert_eq!(stored.expires_at, now + 120_000);
    assert_eq!(stored.created_at, family.created_at);
    assert!(!stored.revoked);

    let third = hash_of("third");
    let rotation = |expected| Rotation {
        session_id: &family.id,
        expected,
        next: &third,
        rotated_at: now + 2,
        expires_at: now + 120_000,
    };
    assert!(
        !store.rotate(rotation(&start)).await.unwrap(),
        "a stale expected hash must not swap"
    );
    assert!(
        !store
            .rotate(Rotation {
                session_id: &unique_name("nofam"),
                ..rotation(&winner)
            })
            .await
            .unwrap(),
        "an unknown family must not swap"
    );
    assert!(store.revoke_session(&family.id).await.unwrap());
    assert!(
        !store.rotate(rotation(&winner)).await.unwrap(),
        "a revoked family must not swap"
    );
    assert_eq!(load(&*store, &family.id).await.current_hash, winner);
}

/// The session list: a user's live sessions only, newest first, with their
/// metadata; `revoke_user_sessions` can spare one; `rotate` moves
/// `last_used_at`.
pub async fn session_listing_and_metadata(store: Arc<dyn SessionStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("lister");
    let other = unique_name("other");
    let now = now_millis();
    let client = Client::new(
        Some("2001:db8::7".parse().expect("an address")),
        Some("Browser/1"),
    );
    let mut started = Vec::new();
    for i in 0..3 {
        started.push(
            tokens
                .start(&*store, &user, &client, now + i)
                .await
                .unwrap(),
        );
    }
    tokens
        .start(&*store, &other, &Client::trusted(), now)
        .await
        .unwrap();
    let listed = store.user_sessions(&user, now + 10).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let newest_first: Vec<&str> = started
        .iter()
        .rev()
        .map(|t| t.session.id.as_str())
        .collect();
    assert_eq!(ids, newest_first, "newest first, the user's only");
    assert_eq!(listed[0].user_agent.as_deref(), Some("Browser/1"));
    assert_eq!(listed[0].ip.as_deref(), Some("2001:db8::7"));
    assert_eq!(listed[0].last_used_at, listed[0].created_at);

    let later = now + 5_000;
    let rotated = rotate(&tokens, &*store, &started[0].token, later)
        .await
        .unwrap();
    assert_eq!(load(&*store, &rotated.session.id).await.last_used_at, later);

    let spared = started[1].session.id.clone();
    let revoked = store
        .revoke_user_sessions(&user, Some(&spared))
        .await
        .unwrap();
    assert_eq!(
        sorted(revoked),
        sorted(vec![
            started[0].session.id.clone(),
            started[2].session.id.clone()
        ])
    );
    let left = store.user_sessions(&user, later).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, spared);
    assert!(
        store
            .user_sessions(&user, started[1].session.expires_at)
            .await
            .unwrap()
            .is_empty(),
        "an expired session is not listed"
    );
    assert_eq!(store.user_sessions(&other, later).await.unwrap().len(), 1);
}

// Users.

/// The entries of `denied` among `ids`, as (id, until), sorted.
fn denied_among(denied: Vec<Denial>, ids: &[&str]) -> Vec<(String, i64)> {
    let mut found: Vec<(String, i64)> = denied
        .into_iter()
        .filter(|d| ids.contains(&d.id.as_str()))
        .map(|d| (d.id, d.until))
        .collect();
    found.sort();
    found
}

/// The shared deny list: entries live until their time, a later time wins,
/// an earlier one changes nothing, and `denied(after)` returns exactly the
/// entries whose time is after `after`.
pub async fn session_deny_list(store: Arc<dyn SessionStore>) {
    let a = unique_name("deny_a");
    let b = unique_name("deny_b");
    let c = unique_name("deny_c");
    let ids = [a.as_str(), b.as_str(), c.as_str()];
    let far = now_millis() + 600_000;
    store.deny(&[], far).await.expect("denying nothing is fine");
    store
        .deny(&[a.clone(), b.clone()], far)
        .await
        .expect("deny");
    assert_eq!(
        denied_among(store.denied(now_millis()).await.unwrap(), &ids),
        vec![(a.clone(), far), (b.clone(), far)],
        "both entries are live"
    );
    store
        .deny(std::slice::from_ref(&a), far - 10_000)
        .await
        .unwrap();
    store
        .deny(std::slice::from_ref(&b), far + 5_000)
        .await
        .unwrap();
    assert_eq!(
        denied_among(store.denied(now_millis()).await.unwrap(), &ids),
        vec![(a.clone(), far), (b.clone(), far + 5_000)],
        "an earlier time changes nothing, a later one wins"
    );
    assert_eq!(
        denied_among(store.denied(far).await.unwrap(), &ids),
        vec![(b.clone(), far + 5_000)],
        "`after` is exclusive"
    );
    let soon = now_millis() + 300;
    store.deny(std::slice::from_ref(&c), soon).await.unwrap();
    assert!(
        denied_among(store.denied(soon - 1).await.unwrap(), &ids).contains(&(c.clone(), soon)),
        "a short entry is listed before its time"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A write trims, a purge may trim: neither touches live entries.
    store
        .deny(&[unique_name("deny_d")], now_millis() + 60_000)
        .await
        .unwrap();
    store.purge_expired(now_millis()).await.unwrap();
    assert_eq!(
        denied_among(store.denied(now_millis()).await.unwrap(), &ids),
        vec![(a, far), (b, far + 5_000)],
        "the entry that ran out is no longer listed"
    );
}

/// The deny list's channel, if the store has one: every subscriber hears
/// each write (its own included), with its time. A store without a channel
/// (`subscribe` gives `None`) passes.
pub async fn session_deny_channel(store: Arc<dyn SessionStore>) {
    let Some(mut first) = store.subscribe().await.expect("subscribe") else {
        return;
    };
    let mut second = store
        .subscribe()
        .await
        .expect("subscribe again")
        .expect("a second subscription");
    let id = unique_name("deny_chan");
    let until = now_millis() + 60_000;
    store.deny(std::slice::from_ref(&id), until).await.unwrap();
    for channel in [&mut first, &mut second] {
        // A guard against a hang, not a timing assertion.
        let heard = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match channel.recv().await {
                    Some(denial) if denial.id == id => return Some(denial),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await
        .expect("the announcement arrives")
        .expect("the channel stays open");
        assert_eq!(
            heard,
            Denial {
                id: id.clone(),
                until
            }
        );
    }
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.trim().to_owned(),
        email_key: email_key(email),
        name: "Conformance".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
    }
}

fn code(seed: &str, attempts: u32) -> Code {
    Code {
        hash: hash_of(seed),
        expires_at: now_millis() + 600_000,
        attempts,
        new_email: None,
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected StoreError::NotFound, got {other:?}"),
    }
}

fn email(prefix: &str) -> String {
    format!("{}@example.com", unique_name(prefix))
}

/// Uniqueness and lookup go by the e-mail key; the address is kept as typed.
pub async fn user_email_conflict_and_lookup(store: Arc<dyn UserStore>) {
    let local = unique_name("alice");
    let typed = format!("{local}@Example.COM");
    let user = store.create_user(new_user(&typed)).await.unwrap();
    assert_eq!(user.email, typed);
    assert!(!user.email_verified && !user.disabled);

    let twin = format!("  {}@example.com \t", local.to_uppercase());
    match store.create_user(new_user(&twin)).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("an address with the same key: expected Conflict, got {other:?}"),
    }
    for probe in [typed.clone(), typed.to_uppercase(), format!(" {typed} ")] {
        assert_eq!(
            store
                .user_by_email(&email_key(&probe))
                .await
                .unwrap()
                .as_ref(),
            Some(&user),
            "lookup by the key of {probe:?}"
        );
    }
    assert_eq!(
        store
            .user_by_email(&email_key(&format!("{local}x@example.com")))
            .await
            .unwrap(),
        None
    );
    let other = store
        .create_user(new_user(&format!("{local}.b@example.com")))
        .await
        .expect("a different address is accepted");
    assert_ne!(other.id, user.id);
    assert_eq!(store.user_by_id(&other.id).await.unwrap(), Some(other));
    assert_eq!(store.user_by_id(&user.id).await.unwrap(), Some(user));
}

/// Lookup by id, password hash replacement, verification, disabling.
pub async fn user_by_id_and_updates(store: Arc<dyn UserStore>) {
    let user = store.create_user(new_user(&email("u"))).await.unwrap();
    let other = store.create_user(new_user(&email("v"))).await.unwrap();
    assert_eq!(
        store.user_by_id(&unique_name("nobody")).await.unwrap(),
        None
    );

    store
        .set_password_hash(&user.id, "$new$hash")
        .await
        .unwrap();
    store.mark_email_verified(&user.id).await.unwrap();
    let updated = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(
        updated,
        User {
            password_hash: "$new$hash".to_owned(),
            email_verified: true,
            ..user.clone()
        }
    );
    store.set_disabled(&user.id, true).await.unwrap();
    assert!(store.user_by_id(&user.id).await.unwrap().unwrap().disabled);
    assert!(
        store
            .user_by_email(&email_key(&user.email))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store.set_disabled(&user.id, false).await.unwrap();
    assert!(!store.user_by_id(&user.id).await.unwrap().unwrap().disabled);
    assert_eq!(
        store.user_by_id(&other.id).await.unwrap(),
        Some(other),
        "only the target user changed"
    );
}

/// One pending code per user and purpose: put, read, atomic try counting,
/// replacement, and taking it exactly once.
pub async fn user_codes(store: Arc<dyn UserStore>) {
    let user = store.create_user(new_user(&email("code"))).await.unwrap();
    let id = user.id.clone();
    let verify = CodePurpose::VerifyEmail;
    let reset = CodePurpose::ResetPassword;
    assert_eq!(store.code(&id, verify).await.unwrap(), None);
    assert_eq!(store.count_code_attempt(&id, verify).await.unwrap(), None);

    let first = code("123456", 0);
    store.put_code(&id, verify, &first).await.unwrap();
    let other_purpose = Code {
        new_email: Some("new@example.com".to_owned()),
        ..code("999999", 0)
    };
    store.put_code(&id, reset, &other_purpose).await.unwrap();
    assert_eq!(store.code(&id, verify).await.unwrap(), Some(first.clone()));
    assert_eq!(
        store.code(&id, reset).await.unwrap(),
        Some(other_purpose.clone())
    );

    let barrier = Arc::new(Barrier::new(20));
    let counters: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.count_code_attempt(&id, verify).await
            })
        })
        .collect();
    let mut counts = Vec::new();
    for counter in counters {
        let counted = counter.await.expect("counter task").expect("count");
        counts.push(counted.expect("a pending code").attempts);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<u32>>(),
        "every try is counted once"
    );
    assert_eq!(
        store.code(&id, reset).await.unwrap(),
        Some(other_purpose),
        "codes of other purposes are untouched"
    );

    let second = code("654321", 3);
    store.put_code(&id, verify, &second).await.unwrap();
    assert_eq!(
        store.code(&id, verify).await.unwrap(),
        Some(second.clone()),
        "a new code replaces the old one with its own try count"
    );
    assert_eq!(
        store.take_code(&id, verify, &first.hash).await.unwrap(),
        None,
        "the replaced code cannot be taken"
    );

    // Two concurrent confirms of one code: exactly one takes it.
    let barrier = Arc::new(Barrier::new(2));
    let takers: Vec<_> = (0..2)
        .map(|_| {
            let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
            let hash = second.hash;
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_code(&id, verify, &hash).await
            })
        })
        .collect();
    let mut taken = 0;
    for taker in takers {
        if let Some(code) = taker.await.expect("taker task").expect("take") {
            assert_eq!(code.hash, second.hash);
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "one code, one success");
    assert_eq!(store.code(&id, verify).await.unwrap(), None);
    assert_eq!(store.count_code_attempt(&id, verify).await.unwrap(), None);
    assert_not_found(
        store.put_code(&unique_name("ghost"), verify, &first).await,
        "a code for an unknown user",
    );
}

/// An address change takes the new key, frees the old one, marks the address
/// verified, and conflicts with another user's key, also when it races a
/// sign-up of the same address: one owner remains.
pub async fn user_change_email(store: Arc<dyn UserStore>) {
    let user = store.create_user(new_user(&email("old"))).await.unwrap();
    let taken = store.create_user(new_user(&email("taken"))).await.unwrap();
    match store
        .change_email(&user.id, &taken.email, &email_key(&taken.email))
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("changing to a taken address: expected Conflict, got {other:?}"),
    }
    let new = email("new");
    store
        .change_email(&user.id, &new, &email_key(&new))
        .await
        .unwrap();
    let changed = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(changed.email, new);
    assert!(changed.email_verified);
    assert_eq!(
        store
            .user_by_email(&email_key(&new))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(user.id.clone())
    );
    assert_eq!(
        store.user_by_email(&email_key(&user.email)).await.unwrap(),
        None
    );
    store
        .create_user(new_user(&user.email))
        .await
        .expect("the old address is free again");
    assert_not_found(
        store
            .change_email(&unique_name("ghost"), &email("x"), "x")
            .await,
        "change_email of an unknown user",
    );

    for _ in 0..10 {
        let contested = email("race");
        let barrier = Arc::new(Barrier::new(2));
        let (s1, s2, b1, b2) = (store.clone(), store.clone(), barrier.clone(), barrier);
        let (c1, c2) = (contested.clone(), contested.clone());
        let mover = user.id.clone();
        let change = tokio::spawn(async move {
            b1.wait().await;
            s1.change_email(&mover, &c1, &email_key(&c1)).await
        });
        let signup = tokio::spawn(async move {
            b2.wait().await;
            s2.create_user(new_user(&c2)).await
        });
        let changed = change.await.expect("change task");
        let signed_up = signup.await.expect("signup task");
        match (&changed, &signed_up) {
            (Ok(()), Err(StoreError::Conflict(_))) | (Err(StoreError::Conflict(_)), Ok(_)) => {}
            other => panic!("exactly one owner expected, got {other:?}"),
        }
        let owner = store
            .user_by_email(&email_key(&contested))
            .await
            .unwrap()
            .expect("an owner");
        match signed_up {
            Ok(u) => assert_eq!(owner.id, u.id),
            Err(_) => assert_eq!(owner.id, user.id),
        }
    }
}

/// Deleting a user removes it and its codes, frees its address, and leaves
/// others alone; the conditional delete spares verified and young users.
pub async fn user_delete(store: Arc<dyn UserStore>) {
    let user = store.create_user(new_user(&email("gone"))).await.unwrap();
    let other = store.create_user(new_user(&email("stays"))).await.unwrap();
    store
        .put_code(&user.id, CodePurpose::VerifyEmail, &code("111111", 0))
        .await
        .unwrap();
    store
        .put_code(&other.id, CodePurpose::VerifyEmail, &code("222222", 0))
        .await
        .unwrap();
    assert!(store.delete_user(&user.id).await.unwrap());
    assert!(
        !store.delete_user(&user.id).await.unwrap(),
        "deleting twice"
    );
    assert_eq!(store.user_by_id(&user.id).await.unwrap(), None);
    assert_eq!(
        store
            .code(&user.id, CodePurpose::VerifyEmail)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .code(&other.id, CodePurpose::VerifyEmail)
            .await
            .unwrap()
            .is_some()
    );
    store
        .create_user(new_user(&user.email))
        .await
        .expect("the address can sign up again");

    let young = store.create_user(new_user(&email("young"))).await.unwrap();
    let verified = store
        .create_user(new_user(&email("verified")))
        .await
        .unwrap();
    store.mark_email_verified(&verified.id).await.unwrap();
    let cutoff = now_millis() + 1_000;
    let listed: Vec<String> = store
        .unverified_users(cutoff, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert!(listed.contains(&young.id));
    assert!(
        !listed.contains(&verified.id),
        "verified users are never listed"
    );
    assert!(
        !store
            .delete_unverified_user(&young.id, young.created_at)
            .await
            .unwrap(),
        "created at the cutoff, not before it"
    );
    assert!(
        !store
            .delete_unverified_user(&verified.id, cutoff)
            .await
            .unwrap(),
        "a verified user is spared"
    );
    assert!(
        store
            .delete_unverified_user(&young.id, cutoff)
            .await
            .unwrap()
    );
    assert_eq!(store.user_by_id(&young.id).await.unwrap(), None);
    assert!(store.user_by_id(&verified.id).await.unwrap().is_some());
}

/// Mutations of an unknown user are `NotFound`; reads are empty.
pub async fn user_unknown_id(store: Arc<dyn UserStore>) {
    // A real user, so that a store updating "any row" would be caught.
    let user = store.create_user(new_user(&email("known"))).await.unwrap();
    let ghost = unique_name("ghost");
    assert_not_found(
        store.set_password_hash(&ghost, "$x").await,
        "set_password_hash",
    );
    assert_not_found(
        store.mark_email_verified(&ghost).await,
        "mark_email_verified",
    );
    assert_not_found(store.set_disabled(&ghost, true).await, "set_disabled");
    assert_eq!(store.user_by_id(&ghost).await.unwrap(), None);
    assert_eq!(
        store.user_by_id(&user.id).await.unwrap(),
        Some(user),
        "the real user is untouched"
    );
}

// Rate limits.

fn assert_limited(decision: Decision, what: &str) {
    match decision {
        Decision::Limited { retry_after } => assert!(
            retry_after >= Duration::from_secs(1),
            "{what}: retry_after {retry_after:?} is under 1 s"
        ),
        other => panic!("{what}: expected Limited, got {other:?}"),
    }
}

fn allowed(remaining: u32) -> Decision {
    Decision::Allowed { remaining }
}

/// `max` reservations pass, the next are limited; keys are independent.
pub async fn limit_max_then_limited(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(5, Duration::from_secs(60));
    let key = unique_name("signin");
    for remaining in (0..5).rev() {
        assert_eq!(
            limiter.reserve(&key, limit).await.unwrap(),
            allowed(remaining)
        );
    }
    assert_limited(limiter.reserve(&key, limit).await.unwrap(), "max + 1");
    assert_limited(limiter.reserve(&key, limit).await.unwrap(), "max + 2");
    match limiter.reserve(&key, limit).await.unwrap() {
        Decision::Limited { retry_after } => assert!(
            retry_after <= limit.window,
            "retry_after {retry_after:?} exceeds the window"
        ),
        other => panic!("expected Limited, got {other:?}"),
    }
    assert_eq!(
        limiter
            .reserve(&format!("{key}:other"), limit)
            .await
            .unwrap(),
        allowed(4),
        "another key has its own counter"
    );
    assert_limited(
        limiter
            .reserve(&unique_name("zero"), Limit::new(0, limit.window))
            .await
            .unwrap(),
        "a zero limit",
    );
}

/// A limited reservation counts nothing: one release after any number of
/// refusals lets exactly one more through.
pub async fn limit_limited_counts_nothing(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(3, Duration::from_secs(60));
    let key = unique_name("refused");
    for remaining in [2, 1, 0] {
        assert_eq!(
            limiter.reserve(&key, limit).await.unwrap(),
            allowed(remaining)
        );
    }
    for _ in 0..10 {
        assert_limited(limiter.reserve(&key, limit).await.unwrap(), "at max");
    }
    limiter.release(&key).await.unwrap();
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(0));
    assert_limited(
        limiter.reserve(&key, limit).await.unwrap(),
        "after the freed slot",
    );
}

/// `release` gives back one event, saturates at zero, creates nothing and
/// never moves a window's end.
pub async fn limit_release(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(2, Duration::from_secs(60));
    let key = unique_name("release");
    limiter
        .release(&key)
        .await
        .expect("releasing an unknown key is fine");
    assert_eq!(
        limiter.reserve(&key, limit).await.unwrap(),
        allowed(1),
        "the release created no negative count"
    );
    for _ in 0..5 {
        limiter.release(&key).await.unwrap();
    }
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(1));
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(0));
    let before = retry_after(limiter.reserve(&key, limit).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Down to zero and up again: still the first window, not a new one.
    limiter.release(&key).await.unwrap();
    limiter.release(&key).await.unwrap();
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(1));
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(0));
    let after = retry_after(limiter.reserve(&key, limit).await.unwrap());
    assert!(
        after < before,
        "the window was moved: {after:?} left, {before:?} before"
    );
}

fn retry_after(decision: Decision) -> Duration {
    match decision {
        Decision::Limited { retry_after } => retry_after,
        other => panic!("expected Limited, got {other:?}"),
    }
}

/// `reset` forgets a key.
pub async fn limit_reset(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(2, Duration::from_secs(60));
    let key = unique_name("reset");
    let other = format!("{key}:other");
    limiter.reserve(&other, limit).await.unwrap();
    for _ in 0..3 {
        limiter.reserve(&key, limit).await.unwrap();
    }
    assert_limited(limiter.reserve(&key, limit).await.unwrap(), "before reset");
    limiter.reset(&key).await.unwrap();
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(1));
    assert_eq!(
        limiter.reserve(&other, limit).await.unwrap(),
        allowed(0),
        "reset touches only its key"
    );
    limiter
        .reset(&unique_name("never-used"))
        .await
        .expect("resetting an unknown key is fine");
}

/// A window ends `window` after its first event.
pub async fn limit_window_expiry(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(2, Duration::from_millis(300));
    let key = unique_name("window");
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(1));
    assert_eq!(limiter.reserve(&key, limit).await.unwrap(), allowed(0));
    assert_limited(limiter.reserve(&key, limit).await.unwrap(), "third");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        limiter.reserve(&key, limit).await.unwrap(),
        allowed(1),
        "a new window after the old one ended"
    );
}

/// 100 concurrent reservations with `max` 9: exactly 9 pass, each
/// `remaining` once.
pub async fn limit_concurrent_reserves(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(9, Duration::from_secs(60));
    let key = unique_name("burst");
    let barrier = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (limiter, barrier, key) = (limiter.clone(), barrier.clone(), key.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                limiter.reserve(&key, limit).await
            })
        })
        .collect();
    let mut remaining = Vec::new();
    let mut limited = 0;
    for task in tasks {
        match task.await.expect("reserve task").expect("reserve") {
            Decision::Allowed { remaining: r } => remaining.push(r),
            Decision::Limited { .. } => limited += 1,
        }
    }
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..9).collect::<Vec<u32>>(),
        "allowed reservations"
    );
    assert_eq!(limited, 91);
    assert_limited(
        limiter.reserve(&key, limit).await.unwrap(),
        "after the burst",
    );
}

/// 100 concurrent attempts that each give their reservation back: some
/// pass, never more than `max` at once, and afterwards every slot is free.
pub async fn limit_concurrent_reserve_release(limiter: Arc<dyn RateLimiter>) {
    let limit = Limit::new(4, Duration::from_secs(60));
    let key = unique_name("churn");
    let barrier = Arc::new(Barrier::new(100));
    let held = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (limiter, barrier, key) = (limiter.clone(), barrier.clone(), key.clone());
            let (held, peak) = (held.clone(), peak.clone());
            tokio::spawn(async move {
                use std::sync::atomic::Ordering::SeqCst;
                barrier.wait().await;
                if limiter.reserve(&key, limit).await?.is_limited() {
                    return Ok(false);
                }
                peak.fetch_max(held.fetch_add(1, SeqCst) + 1, SeqCst);
                tokio::task::yield_now().await;
                held.fetch_sub(1, SeqCst);
                limiter.release(&key).await?;
                Ok::<_, StoreError>(true)
            })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        passed += u32::from(task.await.expect("task").expect("limiter"));
    }
    assert!(passed >= 4, "{passed} passed");
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=4).contains(&peak), "{peak} held at once");
    for remaining in (0..4).rev() {
        assert_eq!(
            limiter.reserve(&key, limit).await.unwrap(),
            allowed(remaining),
            "every slot was given back"
        );
    }
}

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// One `#[tokio::test]` per case of `$cases` on a fresh store from `$make`
/// (an `async fn() -> Option<(Arc<S>, G)>`: `None` skips the test; `G` keeps
/// the store's isolation alive until the test ends).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:path; $($case:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some((store, _guard)) = $make().await else {
                return;
            };
            $crate::testing::$case(store $($(, $arg)*)?).await;
        }
    )*};
}

/// The [`UserStore`] cases for a store maker; see the [module docs](self).
#[macro_export]
macro_rules! user_store_tests {
    ($make:path) => {
        $crate::__conformance_cases!($make;
            user_email_conflict_and_lookup,
            user_by_id_and_updates,
            user_codes,
            user_change_email,
            user_delete,
            user_unknown_id,
        );
    };
}

/// The [`SessionStore`] cases for a store maker and its [`Expiry`]; see the
/// [module docs](self).
#[macro_export]
macro_rules! session_store_tests {
    ($make:path, $expiry:expr) => {
        $crate::__conformance_cases!($make;
            session_create_and_read,
            session_concurrent_rotation_in_grace,
            session_reuse_after_grace,
            session_forged_token,
            session_revoke,
            session_expiry_and_purge($expiry),
            session_absolute_lifetime,
            session_store_cas,
            session_listing_and_metadata,
            session_deny_list,
            session_deny_channel,
        );
    };
}

/// The [`RateLimiter`] cases for a limiter maker; see the [module docs](self).
#[macro_export]
macro_rules! rate_limiter_tests {
    ($make:path) => {
        $crate::__conformance_cases!($make;
            limit_max_then_limited,
            limit_limited_counts_nothing,
            limit_release,
            limit_reset,
            limit_window_expiry,
            limit_concurrent_reserves,
            limit_concurrent_reserve_release,
        );
    };
}

/// Refresh-token rotation over a [`SessionStore`], exactly as
/// [`Auth::refresh`](crate::Auth::refresh) does it minus the user check and
/// the access token: for store benchmarks and store tests.
#[derive(Clone, Debug)]
pub struct Rotator(RefreshTokens);

impl Default for Rotator {
    fn default() -> Self {
        Rotator(RefreshTokens::new(SECRET, SessionSettings::default()))
    }
}

impl Rotator {
    /// Starts a session for `user_id`; returns its first refresh token.
    pub async fn start(
        &self,
        store: &dyn SessionStore,
        user_id: &str,
    ) -> Result<String, StoreError> {
        let issued = self
            .0
            .start(store, user_id, &Client::trusted(), now_millis())
            .await?;
        Ok(issued.token)
    }

    /// Rotates `token`: one read and one compare-and-swap; returns the
    /// successor.
    pub async fn rotate(
        &self,
        store: &dyn SessionStore,
        token: &str,
    ) -> Result<String, crate::AuthError> {
        let to_auth = |e: RefreshError| match e {
            RefreshError::Store(e) => e.into(),
            _ => crate::AuthError::InvalidRefreshToken,
        };
        Ok(rotate(&self.0, store, token, now_millis())
            .await
            .map_err(to_auth)?
            .token)
    }
}
