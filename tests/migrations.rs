//! Upgrading a database made by the first release's migration: the rows
//! survive, sessions keep refreshing, pending codes are dropped, and e-mail
//! keys move to the IDNA format (the oldest of two twins keeps the key, the
//! other is disabled). On SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;

use axum_authkit::store::{SessionStore, UserStore, email_key};
use axum_authkit::{Auth, AuthBuilder};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const SECRET: &[u8] = b"migration-test-secret-0123456789-abcdefgh";

/// The old rows, written with the first migration's columns.
struct Old {
    alice: &'static str,
    older_twin: &'static str,
    younger_twin: &'static str,
    refresh_token: String,
    session_id: String,
}

/// Statements that fill a first-release database; `$N` parameters work on
/// both backends.
const INSERT_USER: &str = "INSERT INTO authkit_users (id, email, email_key, name, password_hash, \
     email_verified, disabled, created_at, code_hash, code_expires_at, code_attempts) \
     VALUES ($1, $2, $3, 'Old', 'x', FALSE, FALSE, $4, $5, $6, $7)";
const INSERT_FAMILY: &str = "INSERT INTO authkit_refresh_families \
     (id, user_id, current_hash, rotated_at, created_at, expires_at, revoked) \
     VALUES ($1, $2, $3, 0, $4, $5, FALSE)";

fn old_token() -> (String, String, Vec<u8>) {
    let raw: [u8; 48] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(raw);
    let id = URL_SAFE_NO_PAD.encode(&raw[..16]);
    (token, id, Sha256::digest(raw).to_vec())
}

macro_rules! fill_old {
    ($pool:expr) => {{
        let now = chrono_now();
        let (refresh_token, session_id, hash) = old_token();
        let users = [
            (
                "u-alice",
                "Alice@Example.com",
                "alice@example.com",
                10,
                true,
            ),
            (
                "u-older",
                "bob@Bücher.example",
                "bob@bücher.example",
                20,
                false,
            ),
            (
                "u-younger",
                "bob@xn--bcher-kva.example",
                "bob@xn--bcher-kva.example",
                30,
                false,
            ),
        ];
        for (id, email, key, created, with_code) in users {
            sqlx::query(INSERT_USER)
                .bind(id)
                .bind(email)
                .bind(key)
                .bind(created as i64)
                .bind(with_code.then(|| vec![7u8; 32]))
                .bind(with_code.then_some(now + 600_000))
                .bind(with_code.then_some(0i64))
                .execute($pool)
                .await
                .expect("old user row");
        }
        sqlx::query(INSERT_FAMILY)
            .bind(&session_id)
            .bind("u-alice")
            .bind(&hash)
            .bind(now)
            .bind(now + 3_600_000)
            .execute($pool)
            .await
            .expect("old family row");
        Old {
            alice: "u-alice",
            older_twin: "u-older",
            younger_twin: "u-younger",
            refresh_token,
            session_id,
        }
    }};
}

fn chrono_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("millis fit")
}

fn builder() -> AuthBuilder {
    Auth::builder().secret(SECRET)
}

async fn check_upgraded<S: UserStore + SessionStore>(store: Arc<S>, old: &Old) {
    let alice = store
        .user_by_email(&email_key("alice@example.com"))
        .await
        .unwrap()
        .expect("alice keeps her key");
    assert_eq!(alice.id, old.alice);
    assert_eq!(alice.email, "Alice@Example.com", "the address as typed");
    let older = store
        .user_by_email(&email_key("bob@bücher.example"))
        .await
        .unwrap()
        .expect("the IDN key has an owner");
    assert_eq!(older.id, old.older_twin, "the oldest twin keeps the key");
    assert!(!older.disabled);
    let younger = store
        .user_by_id(old.younger_twin)
        .await
        .unwrap()
        .expect("the younger twin is kept, disabled");
    assert!(younger.disabled, "the younger twin is disabled");

    let auth = builder().store(store.clone()).build().unwrap();
    let tokens = auth
        .refresh(&old.refresh_token)
        .await
        .expect("a session of the old schema refreshes");
    assert_eq!(tokens.session.id, old.session_id);
    assert_eq!(tokens.access.claims.sub, old.alice);
    let listed = store.user_sessions(old.alice, chrono_now()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at >= listed[0].created_at);
    assert_eq!(
        store
            .code(old.alice, axum_authkit::store::CodePurpose::VerifyEmail)
            .await
            .unwrap(),
        None,
        "pending codes of the old columns are dropped"
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_first_release_sqlite_database_upgrades() {
    use axum_authkit::store::SqliteStore;

    let path = std::env::temp_dir().join(format!("{}.db", common::unique_name("upgrade")));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let old = {
        let store = SqliteStore::connect(&url).await.unwrap();
        let mut first = sqlx::migrate!("migrations/sqlite");
        first.migrations = first.migrations[..1].to_vec().into();
        first.run(store.pool()).await.expect("first migration");
        let old = fill_old!(store.pool());
        store.pool().close().await;
        old
    };
    let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
    store.migrate().await.expect("upgrade");
    store.migrate().await.expect("a second start is a no-op");
    check_upgraded(store.clone(), &old).await;
    store.pool().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_first_release_postgres_database_upgrades() {
    let Some((store, _guard)) = common::postgres_store_unmigrated().await else {
        return;
    };
    let mut first = sqlx::migrate!("migrations/postgres");
    first.migrations = first.migrations[..1].to_vec().into();
    first.run(store.pool()).await.expect("first migration");
    let old = fill_old!(store.pool());
    store.migrate().await.expect("upgrade");
    store.migrate().await.expect("a second start is a no-op");
    check_upgraded(Arc::new(store), &old).await;
}
