//! The runnable app of the crate's API reference: the auth API under
//! `/api/v1/auth/`, one protected route (`GET /api/v1/account/`), the JWKS
//! at `/.well-known/jwks.json` and the OpenAPI document of the auth API at
//! `/api/v1/auth/openapi.json` (feature `openapi`).
//!
//! ```sh
//! cargo run --example server
//! ```
//!
//! Environment (all optional; see the README for each):
//!
//! | variable | default | feature |
//! |---|---|---|
//! | `BIND_ADDR` | `127.0.0.1:3000` | |
//! | `DATABASE_URL` | `sqlite://authkit.db?mode=rwc`; `postgres://...` for PostgreSQL | `postgres` for PostgreSQL |
//! | `REDIS_URL` | unset; when set, sessions and rate limits live in Redis | `redis` |
//! | `JWT_SECRET` | random (warned); at least 32 bytes | |
//! | `JWT_PRIVATE_KEY_FILE` / `JWT_VERIFY_KEY_FILES` / `REFRESH_SECRET` | unset: HS256 from `JWT_SECRET` | |
//! | `COOKIE_SECURE` | `true`; `false` for plain-HTTP development | |
//! | `ACCESS_TTL_SECS` / `REFRESH_TTL_SECS` | 900 / 604800 | |
//! | `CLOCK_LEEWAY_SECS` | 30; how far past `exp` an access token still passes | |
//! | `STORE_DEADLINE_MS` | the stores' own (PostgreSQL 5000, SQLite 10000, Redis 4000); the longest one store call may take before the route answers `503` | |
//! | `RECAPTCHA_SECRET` / `RECAPTCHA_VERIFY_URL` | unset (captcha off) / Google's | `siteverify` |
//! | `ALLOWED_ORIGINS` | unset; comma-separated browser-app origins (CORS + cross-site rule) | |
//! | `TOKENS_IN_BODY` | `false` | |
//! | `SMTP_URL` / `MAIL_FROM` | unset: each mail is one log line with `code=NNNNNN` | `smtp` |
//! | `RUST_LOG` | `info` | |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use axum_authkit::captcha::{CaptchaVerifier, NoCaptcha};
use axum_authkit::keys::{KeySet, SigningKey, VerifyKey};
use axum_authkit::limits::RateLimiter;
use axum_authkit::mail::{LogMailer, Mailer};
use axum_authkit::store::{SessionStore, SqliteStore, UserStore};
use axum_authkit::{Auth, AuthUser};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_flag(name: &str, default: bool) -> bool {
    env(name).map_or(default, |v| !matches!(v.trim(), "false" | "0" | "no"))
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

/// `STORE_DEADLINE_MS`: the deadline of every store call; `None`: each
/// store's default.
fn store_deadline() -> Result<Option<Duration>, BoxError> {
    env("STORE_DEADLINE_MS")
        .map(|v| match v.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err("STORE_DEADLINE_MS must be a positive number of milliseconds".into()),
        })
        .transpose()
}

/// A setting that needs a cargo feature this build lacks: stop, and say how
/// to build it.
#[allow(dead_code)]
fn needs_feature(setting: &str, feature: &str) -> BoxError {
    format!(
        "{setting} needs the `{feature}` feature: cargo run --example server --features {feature}"
    )
    .into()
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

struct Stores {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    limiter: Option<Arc<dyn RateLimiter>>,
}

async fn stores() -> Result<Stores, BoxError> {
    let database_url = env("DATABASE_URL").unwrap_or_else(|| "sqlite://authkit.db?mode=rwc".into());
    let deadline = store_deadline()?;
    let mut stores =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            postgres(&database_url, deadline).await?
        } else {
            let mut store = SqliteStore::connect(&database_url).await?;
            if let Some(deadline) = deadline {
                store = store.with_deadline(deadline);
            }
            let store = Arc::new(store);
            store.migrate().await?;
            tracing::info!(url = ?database_url, "users and sessions in SQLite");
            Stores {
                users: store.clone(),
                sessions: store.clone(),
                limiter: Some(store),
            }
        };
    if let Some(url) = env("REDIS_URL") {
        redis(&url, deadline, &mut stores).await?;
    }
    Ok(stores)
}

#[cfg(feature = "postgres")]
async fn postgres(url: &str, deadline: Option<Duration>) -> Result<Stores, BoxError> {
    use axum_authkit::store::PostgresStore;
    let store = Arc::new(match deadline {
        Some(deadline) => PostgresStore::connect_with_deadline(url, deadline).await?,
        None => PostgresStore::connect(url).await?,
    });
    store.migrate().await?;
    tracing::info!("users, sessions and rate limits in PostgreSQL");
    Ok(Stores {
        users: store.clone(),
        sessions: store.clone(),
        limiter: Some(store),
    })
}

#[cfg(not(feature = "postgres"))]
async fn postgres(_url: &str, _deadline: Option<Duration>) -> Result<Stores, BoxError> {
    Err(needs_feature("DATABASE_URL=postgres://...", "postgres"))
}

#[cfg(feature = "redis")]
async fn redis(url: &str, deadline: Option<Duration>, stores: &mut Stores) -> Result<(), BoxError> {
    let mut redis = axum_authkit::store::RedisStore::connect(url, "authkit:").await?;
    if let Some(deadline) = deadline {
        redis = redis.with_deadline(deadline);
    }
    let redis = Arc::new(redis);
    tracing::info!("sessions and rate limits in Redis");
    stores.sessions = redis.clone();
    stores.limiter = Some(redis);
    Ok(())
}

#[cfg(not(feature = "redis"))]
async fn redis(
    _url: &str,
    _deadline: Option<Duration>,
    _stores: &mut Stores,
) -> Result<(), BoxError> {
    Err(needs_feature("REDIS_URL", "redis"))
}

fn captcha() -> Result<Arc<dyn CaptchaVerifier>, BoxError> {
    match env("RECAPTCHA_SECRET") {
        Some(secret) => siteverify(secret),
        None => {
            tracing::warn!("RECAPTCHA_SECRET is not set: captcha checks are off");
            Ok(Arc::new(NoCaptcha))
        }
    }
}

#[cfg(feature = "siteverify")]
fn siteverify(secret: String) -> Result<Arc<dyn CaptchaVerifier>, BoxError> {
    let mut verifier = axum_authkit::captcha::Siteverify::recaptcha(secret);
    if let Some(url) = env("RECAPTCHA_VERIFY_URL") {
        verifier = verifier.verify_url(url);
    }
    Ok(Arc::new(verifier))
}

#[cfg(not(feature = "siteverify"))]
fn siteverify(_secret: String) -> Result<Arc<dyn CaptchaVerifier>, BoxError> {
    Err(needs_feature("RECAPTCHA_SECRET", "siteverify"))
}

fn mailer() -> Result<Arc<dyn Mailer>, BoxError> {
    match env("SMTP_URL") {
        Some(url) => smtp(&url),
        None => Ok(Arc::new(LogMailer)),
    }
}

#[cfg(feature = "smtp")]
fn smtp(url: &str) -> Result<Arc<dyn Mailer>, BoxError> {
    let from =
        env("MAIL_FROM").ok_or("SMTP_URL needs MAIL_FROM (e.g. `App <no-reply@example.com>`)")?;
    Ok(Arc::new(axum_authkit::mail::SmtpMailer::from_url(
        url, &from,
    )?))
}

#[cfg(not(feature = "smtp"))]
fn smtp(_url: &str) -> Result<Arc<dyn Mailer>, BoxError> {
    Err(needs_feature("SMTP_URL", "smtp"))
}

/// What the key settings give the builder.
struct Keys {
    /// From PEM files; `None`: HS256 derived from `secret`.
    set: Option<KeySet>,
    secret: Vec<u8>,
    refresh_secret: Option<Vec<u8>>,
}

/// The signing and verify-only keys, and the refresh secret: from PEM files
/// when `JWT_PRIVATE_KEY_FILE` is set (a rolling key rotation changes only
/// these files), else derived from `JWT_SECRET`.
fn keys() -> Result<Keys, BoxError> {
    let secret = match env("JWT_SECRET") {
        Some(s) => s.into_bytes(),
        None => {
            let mut bytes = [0u8; 32];
            rand::fill(&mut bytes);
            if env("JWT_PRIVATE_KEY_FILE").is_none() {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret, so every session ends with this process"
                );
            }
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes()
        }
    };
    let refresh_secret = env("REFRESH_SECRET").map(String::into_bytes);
    let Some(private) = env("JWT_PRIVATE_KEY_FILE") else {
        if env("JWT_VERIFY_KEY_FILES").is_some() {
            return Err("JWT_VERIFY_KEY_FILES needs JWT_PRIVATE_KEY_FILE".into());
        }
        return Ok(Keys {
            set: None,
            secret,
            refresh_secret,
        });
    };
    if refresh_secret.is_none() {
        return Err("JWT_PRIVATE_KEY_FILE needs REFRESH_SECRET (at least 32 bytes)".into());
    }
    let pem =
        std::fs::read(&private).map_err(|e| format!("JWT_PRIVATE_KEY_FILE {private}: {e}"))?;
    let signing =
        SigningKey::from_pem(&pem).map_err(|e| format!("JWT_PRIVATE_KEY_FILE {private}: {e}"))?;
    tracing::info!(kid = %signing.kid(), "signing key loaded");
    let mut keys = KeySet::new(signing);
    for file in env("JWT_VERIFY_KEY_FILES")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let pem = std::fs::read(file).map_err(|e| format!("JWT_VERIFY_KEY_FILES {file}: {e}"))?;
        let key =
            VerifyKey::from_pem(&pem).map_err(|e| format!("JWT_VERIFY_KEY_FILES {file}: {e}"))?;
        tracing::info!(kid = %key.kid(), "verify-only key loaded");
        if keys.get(key.kid()).is_some() {
            continue; // the signing key listed again: it verifies already
        }
        keys = keys.with_verify_key(key)?;
    }
    Ok(Keys {
        set: Some(keys),
        secret,
        refresh_secret,
    })
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
    let keys = keys()?;
    let stores = stores().await?;
    let origins: Vec<String> = env("ALLOWED_ORIGINS")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();

    let mut builder = Auth::builder()
        .with_claims(|user| async move { Ok(Profile { name: user.name }) })
        .secret(&keys.secret)
        .users(stores.users)
        .sessions(stores.sessions)
        .with_captcha(captcha()?)
        .with_mailer(mailer()?)
        .with_allowed_origins(origins)
        .with_tokens_in_body(env_flag("TOKENS_IN_BODY", false))
        .with_cookie_secure(env_flag("COOKIE_SECURE", true))
        .with_access_ttl(env_secs("ACCESS_TTL_SECS", 15 * 60)?)
        .with_leeway(env_secs("CLOCK_LEEWAY_SECS", 30)?)
        .with_refresh_ttl(env_secs("REFRESH_TTL_SECS", 7 * 24 * 3600)?);
    if let Some(set) = keys.set {
        builder = builder.keys(set);
    }
    if let Some(refresh_secret) = keys.refresh_secret {
        builder = builder.refresh_secret(&refresh_secret);
    }
    if let Some(limiter) = stores.limiter {
        builder = builder.with_rate_limiter(limiter);
    }
    let auth = builder.build()?;
    // Sessions ended elsewhere (or before a restart) are refused from the
    // first request on.
    let revoked = auth.load_revocations().await?;
    tracing::info!(revoked, "deny list loaded");
    let purger = auth.spawn_purger(Duration::from_secs(600));

    let app = Router::new()
        .route("/api/v1/account", get(account))
        .route("/api/v1/account/", get(account))
        .layer(auth.layer())
        .route("/api/v1/status/", get(status))
        .merge(auth.jwks_router("/.well-known/jwks.json"))
        .nest("/api/v1/auth", auth.router());
    #[cfg(feature = "openapi")]
    let app = {
        let doc = Json(auth.openapi("/api/v1/auth"));
        app.route("/api/v1/auth/openapi.json", get(move || async move { doc }))
    };
    let app = app.layer(auth.cors_layer());

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
