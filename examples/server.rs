//! The runnable app of `shared/API.md`: the auth API under `/api/v1/auth/`
//! and one protected route, `GET /api/v1/account/`.
//!
//! ```sh
//! cargo run --example server
//! ```
//!
//! Environment (all optional):
//!
//! | variable | default |
//! |---|---|
//! | `BIND_ADDR` | `127.0.0.1:3000` |
//! | `DATABASE_URL` | `sqlite://authkit.db?mode=rwc` (a file in the working directory); `postgres://...` for PostgreSQL |
//! | `REDIS_URL` | unset; when set, refresh families and rate limits live in Redis |
//! | `JWT_SECRET` | random (warned); at least 32 bytes |
//! | `COOKIE_SECURE` | `true`; `false` for plain-HTTP development |
//! | `ACCESS_TTL_SECS` / `REFRESH_TTL_SECS` | 900 / 604800 |
//! | `RECAPTCHA_SECRET` / `RECAPTCHA_VERIFY_URL` | unset (captcha off) / Google's siteverify |
//! | `RUST_LOG` | `info` |
//!
//! Verification codes are written to the log, one line each with the
//! address and the code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use axum_authkit::captcha::{CaptchaVerifier, NoCaptcha, Siteverify};
use axum_authkit::rate_limit::RateLimiter;
use axum_authkit::store::{PostgresStore, RedisStore, RefreshStore, SqliteStore, UserStore};
use axum_authkit::{Auth, AuthUser};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_secs(name: &str, default: u64) -> Result<Duration, BoxError> {
    match env(name) {
        Some(v) => {
            Ok(Duration::from_secs(v.trim().parse().map_err(|_| {
                format!("{name} must be a number of seconds")
            })?))
        }
        None => Ok(Duration::from_secs(default)),
    }
}

/// The app's own claim: the display name rides in the access token, so the
/// account route needs no store (and keeps working while a store is down).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Profile {
    name: String,
}

/// `GET /api/v1/status/`: an unprotected route of the same shape as the
/// account route (for `benches/load.sh`).
async fn status() -> Json<Value> {
    Json(
        json!({ "id": "00000000-0000-0000-0000-000000000000", "email": "status@example.com", "name": "status" }),
    )
}

/// `GET /api/v1/account/`: the signed-in user's account.
async fn account(user: AuthUser<Profile>) -> Json<Value> {
    Json(json!({ "id": user.id(), "email": user.email, "name": user.extra.name }))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let addr: SocketAddr = env("BIND_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let secret = match env("JWT_SECRET") {
        Some(s) => s.into_bytes(),
        None => {
            tracing::warn!(
                "JWT_SECRET is not set: using a random secret, so every sign-in ends with this process"
            );
            let mut bytes = [0u8; 32];
            rand::fill(&mut bytes);
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes()
        }
    };

    let database_url = env("DATABASE_URL").unwrap_or_else(|| "sqlite://authkit.db?mode=rwc".into());
    let (users, mut families): (Arc<dyn UserStore>, Arc<dyn RefreshStore>) =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            let store = Arc::new(PostgresStore::connect(&database_url).await?);
            store.migrate().await?;
            tracing::info!("users and sign-ins in PostgreSQL");
            (store.clone(), store)
        } else {
            let store = Arc::new(SqliteStore::connect(&database_url).await?);
            store.migrate().await?;
            tracing::info!(url = %database_url, "users and sign-ins in SQLite");
            (store.clone(), store)
        };
    let mut limiter: Option<Arc<dyn RateLimiter>> = None;
    if let Some(url) = env("REDIS_URL") {
        let redis = Arc::new(RedisStore::connect(&url, "authkit:").await?);
        tracing::info!("sign-ins and rate limits in Redis");
        families = redis.clone();
        limiter = Some(redis);
    }
    let captcha: Arc<dyn CaptchaVerifier> = match env("RECAPTCHA_SECRET") {
        Some(secret) => {
            let mut v = Siteverify::recaptcha(secret);
            if let Some(url) = env("RECAPTCHA_VERIFY_URL") {
                v = v.verify_url(url);
            }
            Arc::new(v)
        }
        None => {
            tracing::warn!("RECAPTCHA_SECRET is not set: captcha checks are off");
            Arc::new(NoCaptcha)
        }
    };

    let mut builder = Auth::<Profile>::builder_with_claims()
        .extra_claims(|user| Profile {
            name: user.name.clone(),
        })
        .secret(&secret)
        .users(users)
        .families(families)
        .captcha(captcha)
        .cookie_secure(env("COOKIE_SECURE").is_none_or(|v| v != "false" && v != "0"))
        .access_ttl(env_secs("ACCESS_TTL_SECS", 15 * 60)?)
        .refresh_ttl(env_secs("REFRESH_TTL_SECS", 7 * 24 * 3600)?);
    if let Some(limiter) = limiter {
        builder = builder.rate_limiter(limiter);
    }
    let auth = builder.build()?;
    let purger = auth.spawn_purger(Duration::from_secs(600));

    let app = Router::new()
        .route("/api/v1/account", get(account))
        .route("/api/v1/account/", get(account))
        .layer(auth.layer())
        .route("/api/v1/status/", get(status))
        .nest("/api/v1/auth", auth.router());

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    purger.abort();
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
