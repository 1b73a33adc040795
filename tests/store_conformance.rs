//! The store conformance suite: one set of behavioural cases, written once
//! over the trait objects, that every backend runs.
//!
//! - refresh families (`refresh_*`): memory, SQLite (in-memory and file),
//!   PostgreSQL, Redis;
//! - users (`user_*`): memory, SQLite (in-memory and file), PostgreSQL;
//! - rate limits (`limit_*`): memory, Redis.
//!
//! PostgreSQL and Redis come from `DATABASE_URL` / `REDIS_URL` (see
//! `tests/common`); each test gets its own schema or key prefix. Timings are
//! never asserted: sleeps only move past windows.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum_authkit::rate_limit::{Decision, Limit, RateLimiter};
use axum_authkit::refresh::{RefreshError, RefreshPolicy, RefreshTokens};
use axum_authkit::store::{
    Family, NewUser, RefreshStore, Rotation, SecretHash, StoreError, UserStore, VerificationCode,
};
use axum_authkit::time::now_millis;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;

use common::unique_name;

const SECRET: &[u8] = b"store-conformance-secret-0123456789-abcdefghij";
const RACERS: usize = 50;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// How a store gets rid of expired families.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    /// Expired families stay readable until `purge_expired` deletes them.
    Purge,
    /// The backend deletes them itself at `expires_at` (Redis TTLs).
    Native,
}

fn policy(grace: Duration) -> RefreshPolicy {
    RefreshPolicy {
        token_ttl: Duration::from_secs(60),
        family_lifetime: Duration::from_secs(3600),
        reuse_grace: grace,
    }
}

fn tokens(policy: RefreshPolicy) -> RefreshTokens {
    RefreshTokens::new(SECRET, policy).expect("a 32+ byte secret is accepted")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap()
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

async fn load(store: &dyn RefreshStore, id: &str) -> Family {
    store
        .family(id)
        .await
        .expect("family()")
        .unwrap_or_else(|| panic!("family {id} is missing"))
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

// ---------------------------------------------------------------------------
// Refresh families
// ---------------------------------------------------------------------------

/// A family written with `create_family` reads back field for field; a
/// second family with the same id is a conflict.
async fn refresh_create_and_read(store: Arc<dyn RefreshStore>) {
    let now = now_millis();
    let family = Family {
        id: unique_name("fam"),
        user_id: unique_name("user"),
        current_hash: hash_of("first"),
        rotated_at: 0,
        created_at: now,
        expires_at: now + 60_000,
        revoked: false,
    };
    assert_eq!(store.family(&family.id).await.unwrap(), None);
    store.create_family(&family).await.unwrap();
    assert_eq!(load(&*store, &family.id).await, family);

    let clash = Family {
        current_hash: hash_of("other"),
        ..family.clone()
    };
    match store.create_family(&clash).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("duplicate family id: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        load(&*store, &family.id).await,
        family,
        "a refused duplicate must not overwrite the family"
    );
    assert_eq!(store.family(&unique_name("nofam")).await.unwrap(), None);
}

/// 50 concurrent rotations of one token inside the grace window all succeed
/// with the same successor; one live family remains and the successor
/// rotates again.
async fn refresh_concurrent_rotation_in_grace(store: Arc<dyn RefreshStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let start = tokens.start(&*store, &user, now_millis()).await.unwrap();
    let family_id = start.family.id.clone();
    // One instant for every racer: the grace check cannot depend on timing.
    let now = now_millis();

    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, tokens, barrier) = (store.clone(), tokens.clone(), barrier.clone());
            let token = start.token.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                tokens.rotate(&*store, &token, now).await
            })
        })
        .collect();
    let mut successors = HashSet::new();
    for racer in racers {
        let issued = racer
            .await
            .expect("racer task")
            .expect("every rotation inside the grace window succeeds");
        assert_eq!(issued.family.id, family_id);
        assert!(!issued.family.revoked);
        successors.insert(issued.token);
    }
    assert_eq!(successors.len(), 1, "all racers get the same successor");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, start.token);

    let family = load(&*store, &family_id).await;
    assert!(!family.revoked, "the family is still live");
    assert_eq!(family.current_hash, token_hash(&successor));
    assert_eq!(family.rotated_at, now);

    let next = tokens
        .rotate(&*store, &successor, now + 1)
        .await
        .expect("the successor rotates once more");
    assert_ne!(next.token, successor);
    assert_ne!(next.token, start.token);
    assert_eq!(
        load(&*store, &family_id).await.current_hash,
        token_hash(&next.token)
    );

    assert_eq!(
        store.revoke_user_families(&user).await.unwrap(),
        vec![family_id],
        "exactly one live family for the user"
    );
}

/// A token rotated away longer ago than the grace window is reuse: the whole
/// family is revoked, its newest token included.
async fn refresh_reuse_after_grace(store: Arc<dyn RefreshStore>) {
    let grace = Duration::from_millis(300);
    let tokens = tokens(policy(grace));
    let user = unique_name("user");
    let first = tokens.start(&*store, &user, now_millis()).await.unwrap();
    let id = first.family.id.clone();

    let rotated_at = now_millis();
    let second = tokens
        .rotate(&*store, &first.token, rotated_at)
        .await
        .unwrap();
    // Inside the window the old token still yields the same successor.
    let again = tokens
        .rotate(&*store, &first.token, rotated_at)
        .await
        .unwrap();
    assert_eq!(again.token, second.token);
    assert!(!load(&*store, &id).await.revoked);

    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    match tokens.rotate(&*store, &first.token, now_millis()).await {
        Err(RefreshError::Reused { family_id, user_id }) => {
            assert_eq!(family_id, id);
            assert_eq!(user_id, user);
        }
        other => panic!("old token after the grace window: expected Reused, got {other:?}"),
    }
    assert!(load(&*store, &id).await.revoked, "reuse revokes the family");
    assert_invalid(
        tokens.rotate(&*store, &second.token, now_millis()).await,
        "newest token of a family revoked for reuse",
    );
    assert!(
        store.revoke_user_families(&user).await.unwrap().is_empty(),
        "no live family is left"
    );
}

/// A token with a real family id but a made-up secret is invalid and
/// revokes nothing.
async fn refresh_forged_token(store: Arc<dyn RefreshStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let real = tokens.start(&*store, &user, now_millis()).await.unwrap();
    let id = real.family.id.clone();
    let before = load(&*store, &id).await;

    let mut forged = decode(&real.token);
    let secret: [u8; 32] = rand::random();
    forged[16..].copy_from_slice(&secret);
    let forged = URL_SAFE_NO_PAD.encode(forged);
    assert_eq!(RefreshTokens::family_id(&forged).as_deref(), Some(&*id));

    assert_invalid(
        tokens.rotate(&*store, &forged, now_millis()).await,
        "forged token",
    );
    assert_eq!(
        tokens.revoke(&*store, &forged).await.unwrap(),
        None,
        "a forged token cannot revoke"
    );
    assert_eq!(
        load(&*store, &id).await,
        before,
        "the family is untouched by the forgery"
    );
    assert_invalid(
        tokens.rotate(&*store, "not-a-token", now_millis()).await,
        "malformed token",
    );
    tokens
        .rotate(&*store, &real.token, now_millis())
        .await
        .expect("the real token still rotates");
}

/// Revoking one family; revoking all of a user's families returns exactly
/// that user's live ones and leaves other users alone.
async fn refresh_revoke(store: Arc<dyn RefreshStore>) {
    let tokens = tokens(policy(Duration::from_secs(30)));
    let now = now_millis();
    let alice = unique_name("alice");
    // A user id that extends Alice's: matching must be exact.
    let bob = format!("{alice}0");
    let mut alice_tokens = Vec::new();
    for _ in 0..3 {
        alice_tokens.push(tokens.start(&*store, &alice, now).await.unwrap());
    }
    let mut bob_tokens = Vec::new();
    for _ in 0..2 {
        bob_tokens.push(tokens.start(&*store, &bob, now).await.unwrap());
    }

    let revoked = tokens
        .revoke(&*store, &alice_tokens[0].token)
        .await
        .unwrap()
        .expect("revoke returns the family");
    assert_eq!(revoked.id, alice_tokens[0].family.id);
    assert_eq!(revoked.user_id, alice);
    assert!(load(&*store, &revoked.id).await.revoked);
    assert!(
        !store.revoke_family(&revoked.id).await.unwrap(),
        "revoking twice reports the family was not live"
    );
    assert_eq!(
        tokens
            .revoke(&*store, &alice_tokens[0].token)
            .await
            .unwrap(),
        None
    );
    assert_invalid(
        tokens
            .rotate(&*store, &alice_tokens[0].token, now_millis())
            .await,
        "token of a revoked family",
    );
    assert!(!store.revoke_family(&unique_name("nofam")).await.unwrap());
    assert!(!load(&*store, &alice_tokens[1].family.id).await.revoked);

    let expected: Vec<String> = alice_tokens[1..]
        .iter()
        .map(|t| t.family.id.clone())
        .collect();
    assert_eq!(
        sorted(store.revoke_user_families(&alice).await.unwrap()),
        sorted(expected),
        "revoke-all returns exactly the user's live families"
    );
    for issued in &alice_tokens {
        assert!(load(&*store, &issued.family.id).await.revoked);
    }
    assert!(store.revoke_user_families(&alice).await.unwrap().is_empty());

    for issued in &bob_tokens {
        assert!(
            !load(&*store, &issued.family.id).await.revoked,
            "another user's family was revoked"
        );
    }
    tokens
        .rotate(&*store, &bob_tokens[0].token, now_millis())
        .await
        .expect("another user's token still rotates");
    assert_eq!(
        sorted(store.revoke_user_families(&bob).await.unwrap()),
        sorted(bob_tokens.iter().map(|t| t.family.id.clone()).collect()),
    );
    assert!(
        store
            .revoke_user_families(&unique_name("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A family past `expires_at` refuses rotation and goes away: through
/// `purge_expired` (SQL, memory) or by itself (Redis).
async fn refresh_expiry_and_purge(store: Arc<dyn RefreshStore>, expiry: Expiry) {
    let ttl = Duration::from_millis(300);
    let short = tokens(RefreshPolicy {
        token_ttl: ttl,
        ..policy(Duration::from_secs(30))
    });
    let long = tokens(policy(Duration::from_secs(30)));
    let user = unique_name("user");
    let doomed = short.start(&*store, &user, now_millis()).await.unwrap();
    let live = long.start(&*store, &user, now_millis()).await.unwrap();
    let expires_at = doomed.family.expires_at;
    assert_eq!(expires_at, doomed.family.created_at + ms(ttl));
    assert_eq!(
        load(&*store, &doomed.family.id).await.expires_at,
        expires_at
    );

    // At `expires_at` exactly the token is refused, and nothing is revoked.
    assert_invalid(
        short.rotate(&*store, &doomed.token, expires_at).await,
        "rotation at expires_at",
    );
    assert!(!load(&*store, &doomed.family.id).await.revoked);
    if expiry == Expiry::Purge {
        assert_eq!(
            store.purge_expired(expires_at - 1).await.unwrap(),
            0,
            "nothing has expired before expires_at"
        );
        assert!(store.family(&doomed.family.id).await.unwrap().is_some());
    }

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_invalid(
        short.rotate(&*store, &doomed.token, now_millis()).await,
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
        store.family(&doomed.family.id).await.unwrap(),
        None,
        "an expired family is gone"
    );
    assert_eq!(
        load(&*store, &live.family.id).await,
        live.family,
        "a live family survives the purge"
    );
    long.rotate(&*store, &live.token, now_millis())
        .await
        .expect("the live family still rotates");
}

/// With a family lifetime shorter than the token TTL, rotation never moves
/// `expires_at` past `created_at + family_lifetime`.
async fn refresh_absolute_lifetime(store: Arc<dyn RefreshStore>) {
    let lifetime = Duration::from_secs(20);
    let tokens = tokens(RefreshPolicy {
        token_ttl: Duration::from_secs(600),
        family_lifetime: lifetime,
        reuse_grace: Duration::from_secs(30),
    });
    let user = unique_name("user");
    let mut issued = tokens.start(&*store, &user, now_millis()).await.unwrap();
    let created_at = issued.family.created_at;
    let end = created_at + ms(lifetime);
    assert_eq!(issued.family.expires_at, end);
    for step in 1..=3 {
        let prev = issued.token.clone();
        issued = tokens
            .rotate(&*store, &prev, now_millis() + step)
            .await
            .unwrap();
        assert_ne!(issued.token, prev);
        assert_eq!(
            issued.family.expires_at, end,
            "rotation extended the family"
        );
        let stored = load(&*store, &issued.family.id).await;
        assert_eq!(stored.expires_at, end, "stored expires_at was extended");
        assert_eq!(stored.created_at, created_at);
    }
    assert_invalid(
        tokens.rotate(&*store, &issued.token, end).await,
        "rotation at created_at + family_lifetime",
    );
}

/// The store's compare-and-swap: of 50 concurrent rotations expecting the
/// same hash exactly one wins; stale, revoked and unknown ones never do.
async fn refresh_store_cas(store: Arc<dyn RefreshStore>) {
    let now = now_millis();
    let start = hash_of("start");
    let family = Family {
        id: unique_name("fam"),
        user_id: unique_name("user"),
        current_hash: start,
        rotated_at: 0,
        created_at: now,
        expires_at: now + 60_000,
        revoked: false,
    };
    store.create_family(&family).await.unwrap();

    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, barrier, id) = (store.clone(), barrier.clone(), family.id.clone());
            tokio::spawn(async move {
                let next = hash_of(&format!("next-{i}"));
                barrier.wait().await;
                let won = store
                    .rotate(Rotation {
                        family_id: &id,
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
        family_id: &family.id,
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
                family_id: &unique_name("nofam"),
                ..rotation(&winner)
            })
            .await
            .unwrap(),
        "an unknown family must not swap"
    );
    assert!(store.revoke_family(&family.id).await.unwrap());
    assert!(
        !store.rotate(rotation(&winner)).await.unwrap(),
        "a revoked family must not swap"
    );
    assert_eq!(load(&*store, &family.id).await.current_hash, winner);
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        name: "Conformance".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
    }
}

fn code(seed: &str, attempts: u32) -> VerificationCode {
    VerificationCode {
        hash: hash_of(seed),
        expires_at: now_millis() + 600_000,
        attempts,
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected StoreError::NotFound, got {other:?}"),
    }
}

/// E-mail uniqueness and lookup go by the trimmed, lower-cased address.
async fn user_email_conflict_and_lookup(store: Arc<dyn UserStore>) {
    let local = unique_name("alice");
    let email = format!("{local}@Example.COM");
    let user = store.create_user(new_user(&email)).await.unwrap();
    assert_eq!(user.email, email);
    assert!(!user.email_verified && !user.disabled);

    let twin = format!("  {}@example.com \t", local.to_uppercase());
    match store.create_user(new_user(&twin)).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("e-mail differing in case and spaces: expected Conflict, got {other:?}"),
    }

    for probe in [
        email.clone(),
        email.to_lowercase(),
        email.to_uppercase(),
        format!(" {email}  "),
    ] {
        assert_eq!(
            store.user_by_email(&probe).await.unwrap().as_ref(),
            Some(&user),
            "lookup by {probe:?}"
        );
    }
    assert_eq!(
        store
            .user_by_email(&format!("{local}x@example.com"))
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

/// Lookup by id, password hash replacement, disabling.
async fn user_by_id_and_updates(store: Arc<dyn UserStore>) {
    let user = store
        .create_user(new_user(&format!("{}@example.com", unique_name("u"))))
        .await
        .unwrap();
    let other = store
        .create_user(new_user(&format!("{}@example.com", unique_name("v"))))
        .await
        .unwrap();
    assert_eq!(
        store.user_by_id(&user.id).await.unwrap().as_ref(),
        Some(&user)
    );
    assert_eq!(
        store.user_by_id(&unique_name("nobody")).await.unwrap(),
        None
    );

    store
        .set_password_hash(&user.id, "$new$hash")
        .await
        .unwrap();
    let updated = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(
        updated,
        axum_authkit::store::User {
            password_hash: "$new$hash".to_owned(),
            ..user.clone()
        }
    );

    store.set_disabled(&user.id, true).await.unwrap();
    assert!(store.user_by_id(&user.id).await.unwrap().unwrap().disabled);
    assert!(
        !store.user_by_id(&other.id).await.unwrap().unwrap().disabled,
        "only the target user is disabled"
    );
    assert!(
        store
            .user_by_email(&user.email)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store.set_disabled(&user.id, false).await.unwrap();
    assert!(!store.user_by_id(&user.id).await.unwrap().unwrap().disabled);
    assert_eq!(store.user_by_id(&other.id).await.unwrap(), Some(other));
}

/// Verification codes: set, read, atomic attempt counting, replacement,
/// and clearing by `mark_email_verified`.
async fn user_verification_code(store: Arc<dyn UserStore>) {
    let user = store
        .create_user(new_user(&format!("{}@example.com", unique_name("code"))))
        .await
        .unwrap();
    let id = user.id.clone();
    assert_eq!(store.verification_code(&id).await.unwrap(), None);
    assert_not_found(
        store.count_verification_attempt(&id).await,
        "counting with no pending code",
    );

    let first = code("123456", 0);
    store.set_verification_code(&id, &first).await.unwrap();
    assert_eq!(
        store.verification_code(&id).await.unwrap(),
        Some(first.clone())
    );

    let barrier = Arc::new(Barrier::new(20));
    let counters: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.count_verification_attempt(&id).await
            })
        })
        .collect();
    let mut counts = Vec::new();
    for counter in counters {
        counts.push(counter.await.expect("counter task").expect("count attempt"));
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u32>>());
    assert_eq!(
        store.verification_code(&id).await.unwrap(),
        Some(VerificationCode {
            attempts: 20,
            ..first
        })
    );

    let second = code("654321", 3);
    store.set_verification_code(&id, &second).await.unwrap();
    assert_eq!(
        store.verification_code(&id).await.unwrap(),
        Some(second),
        "a new code replaces the old one with its own attempt count"
    );
    assert_eq!(store.count_verification_attempt(&id).await.unwrap(), 4);

    store.mark_email_verified(&id).await.unwrap();
    let verified = store.user_by_id(&id).await.unwrap().unwrap();
    assert!(verified.email_verified);
    assert_eq!(
        verified,
        axum_authkit::store::User {
            email_verified: true,
            ..user
        }
    );
    assert_eq!(
        store.verification_code(&id).await.unwrap(),
        None,
        "verification clears the code"
    );
    assert_not_found(
        store.count_verification_attempt(&id).await,
        "counting after verification",
    );
}

/// Mutations of an unknown user are `NotFound`; reads are empty.
async fn user_unknown_id(store: Arc<dyn UserStore>) {
    // A real user, so that a store updating "any row" would be caught.
    let user = store
        .create_user(new_user(&format!("{}@example.com", unique_name("known"))))
        .await
        .unwrap();
    let ghost = unique_name("ghost");
    assert_not_found(
        store.set_password_hash(&ghost, "$x").await,
        "set_password_hash",
    );
    assert_not_found(
        store.mark_email_verified(&ghost).await,
        "mark_email_verified",
    );
    assert_not_found(
        store
            .set_verification_code(&ghost, &code("000000", 0))
            .await,
        "set_verification_code",
    );
    assert_not_found(store.set_disabled(&ghost, true).await, "set_disabled");
    assert_not_found(
        store.count_verification_attempt(&ghost).await,
        "count_verification_attempt",
    );
    assert_eq!(store.verification_code(&ghost).await.unwrap(), None);
    assert_eq!(store.user_by_id(&ghost).await.unwrap(), None);
    assert_eq!(
        store.user_by_id(&user.id).await.unwrap(),
        Some(user),
        "the real user is untouched"
    );
}

// ---------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------

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
async fn limit_max_then_limited(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_limited_counts_nothing(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_release(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_reset(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_window_expiry(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_concurrent_reserves(limiter: Arc<dyn RateLimiter>) {
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
async fn limit_concurrent_reserve_release(limiter: Arc<dyn RateLimiter>) {
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

/// Keeps a backend's isolation (schema, key prefix, temp file) alive.
type Guard = Box<dyn std::any::Any + Send>;

mod make {
    use super::*;

    pub async fn memory() -> Option<(Arc<axum_authkit::store::MemoryStore>, Guard)> {
        Some((
            Arc::new(axum_authkit::store::MemoryStore::new()),
            Box::new(()),
        ))
    }

    pub async fn memory_limiter()
    -> Option<(Arc<axum_authkit::rate_limit::MemoryRateLimiter>, Guard)> {
        Some((Arc::default(), Box::new(())))
    }

    #[cfg(feature = "sqlite")]
    pub async fn sqlite_memory() -> Option<(Arc<axum_authkit::store::SqliteStore>, Guard)> {
        Some((Arc::new(common::sqlite_memory_store().await), Box::new(())))
    }

    #[cfg(feature = "sqlite")]
    pub async fn sqlite_file() -> Option<(Arc<axum_authkit::store::SqliteStore>, Guard)> {
        let (store, file) = common::sqlite_file_store().await;
        Some((Arc::new(store), Box::new(file)))
    }

    #[cfg(feature = "postgres")]
    pub async fn postgres() -> Option<(Arc<axum_authkit::store::PostgresStore>, Guard)> {
        let (store, schema) = common::postgres_store().await?;
        Some((Arc::new(store), Box::new(schema)))
    }

    #[cfg(feature = "redis")]
    pub async fn redis() -> Option<(Arc<axum_authkit::store::RedisStore>, Guard)> {
        let (store, prefix) = common::redis_store().await?;
        Some((Arc::new(store), Box::new(prefix)))
    }
}

/// One `#[tokio::test]` per case: `cases!(maker; case, case(extra args), ...)`
/// runs `case(store, extra args)` on a fresh store from `maker` (or returns
/// early when the backend is unavailable and may be skipped).
macro_rules! cases {
    ($make:path; $($case:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some((store, _guard)) = $make().await else {
                return;
            };
            super::$case(store $($(, $arg)*)?).await;
        }
    )*};
}

/// The refresh-family cases, for a store maker and its expiry style.
macro_rules! refresh_cases {
    ($make:path, $expiry:expr) => {
        cases!($make;
            refresh_create_and_read,
            refresh_concurrent_rotation_in_grace,
            refresh_reuse_after_grace,
            refresh_forged_token,
            refresh_revoke,
            refresh_expiry_and_purge($expiry),
            refresh_absolute_lifetime,
            refresh_store_cas,
        );
    };
}

macro_rules! user_cases {
    ($make:path) => {
        cases!($make;
            user_email_conflict_and_lookup,
            user_by_id_and_updates,
            user_verification_code,
            user_unknown_id,
        );
    };
}

macro_rules! limit_cases {
    ($make:path) => {
        cases!($make;
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

mod memory {
    use super::*;
    refresh_cases!(make::memory, Expiry::Purge);
    user_cases!(make::memory);
    limit_cases!(make::memory_limiter);
}

#[cfg(feature = "sqlite")]
mod sqlite_memory {
    use super::*;
    refresh_cases!(make::sqlite_memory, Expiry::Purge);
    user_cases!(make::sqlite_memory);
}

#[cfg(feature = "sqlite")]
mod sqlite_file {
    use super::*;
    refresh_cases!(make::sqlite_file, Expiry::Purge);
    user_cases!(make::sqlite_file);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    refresh_cases!(make::postgres, Expiry::Purge);
    user_cases!(make::postgres);
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    refresh_cases!(make::redis, Expiry::Native);
    limit_cases!(make::redis);
}
