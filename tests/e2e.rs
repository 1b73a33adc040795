//! End to end: the example binary on a random loopback port, driven by a real
//! HTTP client with a cookie jar, through the whole seed flow, then a restart
//! on the same SQLite file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};

const SECRET: &str = "e2e-test-secret-that-is-long-enough-0123456789";
const PASSWORD: &str = "correct horse battery staple";

/// The example binary `cargo test` built next to this test.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir
        .join("examples")
        .join(format!("server{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build --example server");
        assert!(status.success(), "building the example failed");
    }
    bin
}

/// A running example server and its log.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(envs: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(example_binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", SECRET)
            .env("COOKIE_SECURE", "false")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the example server");
        let stdout = child.stdout.take().expect("piped stdout");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .filter(|_| line.contains("listening"))
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start: {:?}", log.lock().unwrap()));
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The newest verification code logged for `email`.
    pub fn code_for(&self, email: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.log.lock().unwrap().iter().rev().find_map(|line| {
                if !(line.contains("verification code") && line.contains(email)) {
                    return None;
                }
                let code = line.split("code=").nth(1)?.split_whitespace().next()?;
                (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| code.to_owned())
            });
            if let Some(code) = found {
                return code;
            }
            assert!(Instant::now() < deadline, "no code logged for {email}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
}

fn cookie(jar: &Jar, server: &Server, name: &str) -> Option<String> {
    let header = jar.cookies(&server.url("/").parse().unwrap())?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

#[tokio::test]
async fn seed_flow_then_restart_on_the_same_database() {
    let dir = std::env::temp_dir().join(format!("authkit-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("e2e.db").display());
    let server = Server::start(&[("DATABASE_URL", &db)]);
    let jar = Arc::new(Jar::default());
    let http = client(&jar);
    let email = "e2e.user@example.com";

    // signup
    let res = http
        .post(server.url("/api/v1/auth/signup/"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "E2E User", "captcha": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], email);
    assert_eq!(body["email_verified"], false);
    let id = body["id"].as_str().unwrap().to_owned();

    // signin
    let res = http
        .post(server.url("/api/v1/auth/signin/"))
        .json(&json!({"login": email, "password": PASSWORD, "captcha": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // account
    let res = http
        .get(server.url("/api/v1/account/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let account: Value = res.json().await.unwrap();
    assert_eq!(
        account,
        json!({"id": id, "email": email, "name": "E2E User"})
    );
    let anonymous = reqwest::get(server.url("/api/v1/account/")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // verify-email, with the code from the log and the Bearer header of the API page
    let code = server.code_for(email);
    let access = cookie(&jar, &server, "access_token").unwrap();
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/auth/verify-email/"))
        .bearer_auth(&access)
        .json(&json!({"verification_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["email_verified"], true);

    // custom-refresh
    let old_refresh = cookie(&jar, &server, "refresh_token").unwrap();
    let res = http
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let new_refresh = cookie(&jar, &server, "refresh_token").unwrap();
    assert_ne!(old_refresh, new_refresh);

    // The old refresh token after the grace window (10 s): theft, the family is revoked.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let replay = reqwest::Client::new()
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .header("Cookie", format!("refresh_token={old_refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["code"],
        "invalid_refresh_token"
    );
    let res = http
        .post(server.url("/api/v1/auth/custom-refresh/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );

    // custom-logout
    let res = http
        .post(server.url("/api/v1/auth/custom-logout/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(cookie(&jar, &server, "access_token").is_none());

    // Restart on the same database file: the account is still there.
    server.stop();
    let server = Server::start(&[("DATABASE_URL", &db)]);
    let jar = Arc::new(Jar::default());
    let http = client(&jar);
    let res = http
        .post(server.url("/api/v1/auth/signin/"))
        .json(&json!({"login": email, "password": PASSWORD, "captcha": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = http
        .get(server.url("/api/v1/account/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
