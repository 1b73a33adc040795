//! `RedisStore` on a Redis Cluster (three local primaries this test starts,
//! see `tests/common/cluster.rs`), beyond the conformance suite: users'
//! sessions spread over the nodes while each user's keys share one slot,
//! the per-call deadline holds when the cluster stops answering, and a
//! revocation written on one node reaches a subscriber on another.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use axum_authkit::limits::{Limit, RateLimiter};
use axum_authkit::store::{RedisStore, Rotation, Session, SessionStore, StoreError};

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn session(user: &str, id: &str, hash: u8) -> Session {
    let now = now_ms();
    Session {
        id: id.to_owned(),
        user_id: user.to_owned(),
        current_hash: [hash; 32],
        rotated_at: 0,
        created_at: now,
        last_used_at: now,
        expires_at: now + 600_000,
        revoked: false,
        user_agent: None,
        ip: None,
    }
}

/// Redis's hash slot of `key` (asked of the node on `port`).
fn keyslot(port: u16, key: &str) -> u16 {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "CLUSTER", "KEYSLOT", key])
        .output()
        .expect("redis-cli CLUSTER KEYSLOT");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn sessions_spread_over_the_nodes_and_one_users_keys_share_a_slot() {
    let Some((store, cluster)) = common::cluster::store().await else {
        return;
    };
    let mut users = Vec::new();
    for i in 0..30 {
        let user = common::unique_name(&format!("spread{i}"));
        for j in 0..2 {
            let id = common::unique_name(&format!("sid{i}_{j}"));
            store.create_session(&session(&user, &id, 1)).await.unwrap();
        }
        users.push(user);
    }
    let per_node = cluster.keys_per_node(&format!("{}*", store.prefix()));
    assert_eq!(per_node.iter().sum::<usize>(), 30 * (2 + 1) + 30 * 2);
    assert!(
        per_node.iter().all(|&n| n > 0),
        "every primary holds some sessions: {per_node:?}"
    );

    // A user's session keys and index share a slot (what lets "sign out
    // everywhere" be one script); their lookups do not need to.
    let port = cluster.ports()[0];
    let user = &users[0];
    let index = format!("{}{{u:{user}}}:sessions", store.prefix());
    let slot = keyslot(port, &index);
    let sessions = store.user_sessions(user, now_ms()).await.unwrap();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        let key = format!("{}{{u:{user}}}:fam:{}", store.prefix(), s.id);
        assert_eq!(keyslot(port, &key), slot, "{key}");
    }
    let revoked = store.revoke_user_sessions(user, None).await.unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(
        store
            .user_sessions(user, now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .user_sessions(&users[1], now_ms())
            .await
            .unwrap()
            .len(),
        2,
        "another user's sessions stay"
    );
}

#[tokio::test]
async fn a_cluster_url_without_a_live_seed_fails_fast() {
    let started = Instant::now();
    // Port 1 on loopback: nothing listens, the connection is refused.
    let err = RedisStore::connect("redis+cluster://127.0.0.1:1", "x:")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = RedisStore::connect("redis+cluster://127.0.0.1:1/3", "x:")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("database"), "{err}");
}

/// Every node frozen (`SIGSTOP`: connections open, no answers): each kind of
/// call fails with `Unavailable` within the deadline, nothing hangs, and the
/// store works again once the nodes thaw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_cluster_fails_every_call_within_the_deadline() {
    const DEADLINE: Duration = Duration::from_millis(700);
    // Its own cluster: pausing the shared one would stall other tests.
    let Some(cluster) = tokio::task::spawn_blocking(common::cluster::start_or_skip)
        .await
        .unwrap()
    else {
        return;
    };
    let store = RedisStore::connect(&cluster.url(), "stall:")
        .await
        .unwrap()
        .with_deadline(DEADLINE);
    let user = common::unique_name("stall");
    let id = common::unique_name("sid");
    store.create_session(&session(&user, &id, 1)).await.unwrap();
    let limit = Limit::new(5, Duration::from_secs(60));
    store.reserve("stall", limit).await.unwrap();

    let paused = cluster.pause();
    let bound = DEADLINE + Duration::from_millis(500);
    let (expected, next) = ([1u8; 32], [2u8; 32]);
    macro_rules! stalls {
        ($what:literal, $call:expr) => {{
            let started = Instant::now();
            let result = $call.await;
            let took = started.elapsed();
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{}: {:?}",
                $what,
                result.map(|_| ())
            );
            assert!(took < bound, "{} took {took:?}", $what);
        }};
    }
    stalls!("session", store.session(&id));
    stalls!(
        "rotate",
        store.rotate(Rotation {
            session_id: &id,
            expected: &expected,
            next: &next,
            rotated_at: now_ms(),
            expires_at: now_ms() + 600_000,
        })
    );
    // Read-only or harmless if the node runs it after the thaw: a stalled
    // command sits in the node's socket buffer and may still execute.
    stalls!("user_sessions", store.user_sessions(&user, now_ms()));
    stalls!("reserve", store.reserve("stall", limit));
    cluster.resume(&paused);

    // Back: the session is whole and rotates once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        match store.session(&id).await {
            Ok(found) => break found.expect("the session survived"),
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the cluster did not come back: {e}"),
        }
    };
    assert!(!live.revoked);
    assert_eq!(live.current_hash, expected);
    let rotation = Rotation {
        session_id: &id,
        expected: &expected,
        next: &next,
        rotated_at: now_ms(),
        expires_at: now_ms() + 600_000,
    };
    assert!(store.rotate(rotation).await.unwrap());
    assert!(!store.rotate(rotation).await.unwrap(), "one swap only");
}

/// The deny list is written (and published) on the node owning its slot;
/// a subscription on another node hears it, since classic `PUBLISH` is
/// forwarded to every node of the cluster.
#[tokio::test]
async fn a_denial_written_on_one_node_reaches_a_subscriber_on_another() {
    let Some((store, cluster)) = common::cluster::store().await else {
        return;
    };
    let writer = cluster.owner_of(&format!("{}{{denied}}", store.prefix()));
    let other = cluster
        .ports()
        .into_iter()
        .find(|&p| p != writer)
        .expect("three nodes");
    let listener = RedisStore::connect(&cluster.url_starting_at(other), store.prefix())
        .await
        .unwrap();
    let mut denials = listener
        .subscribe()
        .await
        .unwrap()
        .expect("a cluster store from a URL has a channel");
    let id = common::unique_name("denied");
    let until = now_ms() + 60_000;
    store.deny(std::slice::from_ref(&id), until).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(denial) = denials.recv().await {
            if denial.id == id {
                return Some(denial);
            }
        }
        None
    })
    .await
    .expect("the announcement crosses nodes")
    .expect("the subscription stays open");
    assert_eq!(heard.until, until);
    // The list itself reads the same through either store.
    assert!(
        listener
            .denied(now_ms())
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == id)
    );
}
