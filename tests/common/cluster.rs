//! A throw-away Redis Cluster on loopback: three primaries (no replicas),
//! each a `redis-server` in a temp dir of its own on free ports, joined with
//! `redis-cli --cluster create`.
//!
//! [`shared`] hands every test of one process the same cluster (starting one
//! takes a couple of seconds); [`RedisCluster::start`] gives a test one of
//! its own, for tests that pause nodes. Every node runs under a tiny `sh`
//! watchdog that kills it as soon as its stdin closes: on [`Drop`], and also
//! when the test process exits or is killed, so no server outlives the run.
//!
//! No `redis-server` binary on `PATH` prints one `SKIP` line and the tests
//! return, unless `AUTHKIT_REQUIRE_SERVICES=1` (then they fail).

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How many primaries the cluster has.
pub const PRIMARIES: usize = 3;

/// One `redis-server` under its watchdog.
struct Node {
    /// The `sh` watchdog; closing its stdin kills the server and removes
    /// its temp dir.
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// A running Redis Cluster, torn down (every server killed, temp dirs
/// removed) when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports())
            .finish()
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// Whether `redis-server` and `redis-cli` can be run.
fn binaries_present() -> Result<(), String> {
    for bin in ["redis-server", "redis-cli"] {
        let ok = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("`{bin}` is not on PATH"));
        }
    }
    Ok(())
}

/// `redis-cli -p port args...`, its stdout.
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli -p {port} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RedisCluster {
    /// Starts three primaries, joins them and waits until every node reports
    /// `cluster_state:ok` with all 16384 slots assigned.
    pub fn start() -> Result<RedisCluster, String> {
        binaries_present()?;
        let mut cluster = RedisCluster { nodes: Vec::new() };
        for i in 0..PRIMARIES {
            // `cluster-port` (Redis 7) picks the bus port too, so both are free
            // ports rather than `port + 10000`.
            let (port, bus) = (free_port()?, free_port()?);
            let node_dir =
                std::env::temp_dir().join(super::unique_name(&format!("authkit_node{i}")));
            std::fs::create_dir_all(&node_dir)
                .map_err(|e| format!("{}: {e}", node_dir.display()))?;
            let args = [
                "--port".to_owned(),
                port.to_string(),
                "--cluster-port".to_owned(),
                bus.to_string(),
                "--bind".to_owned(),
                "127.0.0.1".to_owned(),
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                "--cluster-config-file".to_owned(),
                node_dir.join("nodes.conf").display().to_string(),
                "--dir".to_owned(),
                node_dir.display().to_string(),
                "--save".to_owned(),
                String::new(),
                "--appendonly".to_owned(),
                "no".to_owned(),
                "--logfile".to_owned(),
                node_dir.join("redis.log").display().to_string(),
            ];
            // The watchdog: the server in the background, `cat` until our end
            // of the pipe closes, then the server is killed and its dir removed.
            let child = Command::new("sh")
                .arg("-c")
                .arg(
                    r#"d=$1; shift; redis-server "$@" & s=$!; cat >/dev/null; kill -9 $s; wait $s; rm -rf "$d""#,
                )
                .arg("sh")
                .arg(&node_dir)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("start redis-server: {e}"))?;
            cluster.nodes.push(Node {
                child,
                port,
                dir: node_dir,
            });
        }
        for node in &cluster.nodes {
            wait_for(Duration::from_secs(10), || {
                cli(node.port, &["PING"]).is_ok_and(|o| o.trim() == "PONG")
            })
            .map_err(|()| format!("redis-server on port {} did not start", node.port))?;
        }
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        let out = Command::new("redis-cli")
            .args(&create)
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for node in &cluster.nodes {
            wait_for(Duration::from_secs(20), || {
                cli(node.port, &["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_assigned:16384")
                        && info.contains(&format!("cluster_known_nodes:{PRIMARIES}"))
                })
            })
            .map_err(|()| format!("node {} never reached cluster_state:ok", node.port))?;
        }
        Ok(cluster)
    }

    /// The client ports of the primaries.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The `REDIS_URL` of the cluster: `redis+cluster://` and every node as
    /// a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// A `redis+cluster://` URL whose first seed is the node on `port` (the
    /// node a revocation subscription connects to).
    pub fn url_starting_at(&self, port: u16) -> String {
        let mut ports = self.ports();
        ports.sort_by_key(|&p| p != port);
        let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of the primary that owns `key`'s slot.
    pub fn owner_of(&self, key: &str) -> u16 {
        let port = self.nodes[0].port;
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT")
            .trim()
            .parse()
            .expect("a slot number");
        let nodes = cli(port, &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(addr) = fields.get(1) else { continue };
            let owns = fields.iter().skip(8).any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
            });
            if owns {
                let port = addr.split(['@', ':']).nth(1).expect("ip:port@bus");
                return port.parse().expect("a port");
            }
        }
        panic!("no node owns slot {slot}");
    }

    /// How many keys match `pattern` on each primary.
    pub fn keys_per_node(&self, pattern: &str) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|n| {
                cli(n.port, &["--scan", "--pattern", pattern])
                    .expect("redis-cli --scan")
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .collect()
    }

    /// The process id of every `redis-server`.
    fn server_pids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| {
                let info = cli(n.port, &["INFO", "server"]).expect("INFO server");
                info.lines()
                    .find_map(|l| l.strip_prefix("process_id:"))
                    .map(|p| p.trim().to_owned())
                    .expect("process_id in INFO server")
            })
            .collect()
    }

    /// Freezes every node (`SIGSTOP`): connections stay open, nothing
    /// answers. Returns what [`RedisCluster::resume`] takes.
    pub fn pause(&self) -> Vec<String> {
        let pids = self.server_pids();
        for pid in &pids {
            let ok = Command::new("kill").args(["-STOP", pid]).status();
            assert!(ok.is_ok_and(|s| s.success()), "kill -STOP {pid}");
        }
        pids
    }

    /// Thaws the nodes [`RedisCluster::pause`] froze (`SIGCONT`).
    pub fn resume(&self, pids: &[String]) {
        for pid in pids {
            let ok = Command::new("kill").args(["-CONT", pid]).status();
            assert!(ok.is_ok_and(|s| s.success()), "kill -CONT {pid}");
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            // Closing stdin makes the watchdog kill its server (also a paused
            // one: SIGKILL needs no SIGCONT).
            drop(node.child.stdin.take());
        }
        for node in &mut self.nodes {
            let _ = node.child.wait();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

/// Calls `ready` every 50 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let end = Instant::now() + limit;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh cluster of the caller's own, or `None` (after one `SKIP` line)
/// when the Redis binaries are missing.
///
/// # Panics
///
/// When the binaries are missing and `AUTHKIT_REQUIRE_SERVICES=1`, or when
/// they are there but the cluster does not come up.
pub fn start_or_skip() -> Option<RedisCluster> {
    static PRINTED: AtomicBool = AtomicBool::new(false);
    if let Err(why) = binaries_present() {
        if super::require_services() {
            panic!("redis cluster is required (AUTHKIT_REQUIRE_SERVICES=1): {why}");
        }
        if !PRINTED.swap(true, Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP redis cluster: {why} (set AUTHKIT_REQUIRE_SERVICES=1 to fail instead)"
            );
        }
        return None;
    }
    Some(RedisCluster::start().unwrap_or_else(|e| panic!("local redis cluster: {e}")))
}

/// The cluster every test of this process shares (started on first use;
/// its watchdogs kill it when the process ends), or `None` as in
/// [`start_or_skip`].
pub async fn shared() -> Option<Arc<RedisCluster>> {
    static SHARED: OnceLock<Option<Arc<RedisCluster>>> = OnceLock::new();
    // Starting blocks for a few seconds: off the runtime's worker threads.
    tokio::task::spawn_blocking(|| SHARED.get_or_init(|| start_or_skip().map(Arc::new)).clone())
        .await
        .expect("start the shared redis cluster")
}

/// A [`RedisStore`](axum_authkit::store::RedisStore) on the [`shared`]
/// cluster under a fresh key prefix, and the cluster handle that keeps it
/// up; `None` when the binaries are missing.
///
/// # Panics
///
/// When the cluster is up but the store cannot connect.
pub async fn store() -> Option<(axum_authkit::store::RedisStore, Arc<RedisCluster>)> {
    let cluster = shared().await?;
    let prefix = format!("{}:", super::unique_name("authkit_test"));
    let url = cluster.url();
    let store = axum_authkit::store::RedisStore::connect(&url, prefix)
        .await
        .unwrap_or_else(|e| panic!("RedisStore::connect({url}): {e}"));
    Some((store, cluster))
}
