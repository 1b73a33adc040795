//! Starting the example server as a real process, for end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `JWT_SECRET` every test server shares.
pub const SECRET: &str = "e2e-test-secret-that-is-long-enough-0123456789";

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
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the example server");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let errors = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("server stderr: {line}");
                errors.lock().unwrap().push(line);
            }
        });
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
        self.code_of("verification", email)
    }

    /// The newest code of mail kind `kind` (`verification`,
    /// `password_reset`, `email_change_code`) logged for `email`.
    pub fn code_of(&self, kind: &str, email: &str) -> String {
        let kind = format!("kind={kind} ");
        let to = format!("to={email:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self.log.lock().unwrap().iter().rev().find_map(|line| {
                if !(line.contains(&kind) && line.contains(&to)) {
                    return None;
                }
                let code = line.split("code=").nth(1)?.split_whitespace().next()?;
                (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| code.to_owned())
            });
            if let Some(code) = found {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind}code logged for {email}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process with SIGKILL (`kill -9`): no graceful shutdown,
    /// requests in flight are cut wherever they are.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
