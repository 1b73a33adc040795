//! Debian's headless Chromium behind a chromedriver this process starts, and
//! the guard that ends both.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Headless in a container, and quiet on a closed network: without the
/// background-networking flags Chromium's own connections are refused and
/// it stalls.
const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long chromedriver may take to listen and the browser to start.
const START: Duration = Duration::from_secs(30);
/// The WebDriver script and page-load timeouts.
pub const SCRIPT: Duration = Duration::from_secs(20);

/// Whether Chromium and chromedriver are installed. When they are not: one
/// `SKIP` line per process, or a panic under `AUTHKIT_REQUIRE_SERVICES=1`.
pub fn available() -> bool {
    static PRINTED: AtomicBool = AtomicBool::new(false);
    let Some(missing) = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .find(|bin| !Path::new(bin).exists())
    else {
        return true;
    };
    assert!(
        !crate::common::require_services(),
        "{missing} is required (AUTHKIT_REQUIRE_SERVICES=1) but missing: \
         apt-get install chromium chromium-driver"
    );
    if !PRINTED.swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP browser tests: {missing} not found (apt-get install chromium chromium-driver; \
             set AUTHKIT_REQUIRE_SERVICES=1 to fail instead)"
        );
    }
    false
}

/// A running chromedriver, in a process group of its own that also holds
/// the Chromium it starts, and the browser's profile directory.
struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is chromedriver's pid (`process_group(0)`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A WebDriver session on a fresh headless Chromium. Dropping it kills
/// chromedriver and the browser, also when a test panics.
pub struct Chrome {
    pub client: Client,
    _driver: Driver,
}

impl Chrome {
    /// Starts chromedriver on a port it picks, then a browser session with a
    /// fresh profile.
    ///
    /// # Panics
    ///
    /// When chromedriver or Chromium does not start within [`START`].
    pub async fn start() -> Chrome {
        let profile = std::env::temp_dir().join(crate::common::unique_name("authkit_chromium"));
        std::fs::create_dir_all(&profile).expect("create the Chromium profile directory");
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let driver = Driver { child, profile };

        // "ChromeDriver was started successfully on port 41017."
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = tokio::task::block_in_place(|| rx.recv_timeout(START))
            .unwrap_or_else(|_| panic!("{CHROMEDRIVER} did not report its port within {START:?}"));

        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(START, builder.connect(&url))
            .await
            .unwrap_or_else(|_| panic!("no browser session within {START:?}"))
            .unwrap_or_else(|e| panic!("browser session: {e}"));
        let timeouts = TimeoutConfiguration::new(Some(SCRIPT), Some(SCRIPT), None);
        let set = tokio::time::timeout(SCRIPT, client.update_timeouts(timeouts)).await;
        set.expect("set WebDriver timeouts: no answer")
            .expect("set WebDriver timeouts");
        Chrome {
            client,
            _driver: driver,
        }
    }

    /// Ends the session (chromedriver closes the browser), then the driver.
    pub async fn quit(self) {
        let Chrome { client, _driver } = self;
        let _ = tokio::time::timeout(SCRIPT, client.close()).await;
    }
}
