//! Real etcd processes for the tests: Debian's `etcd` binary on 127.0.0.1
//! ports picked free, a temporary data dir per member, killed by pid when
//! dropped. Each member also serves `/health` and `/metrics` over plain
//! HTTP on a port of its own, so the harness can watch a TLS member too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

use crate::certs::Certs;
use crate::ports::free_ports;

/// How long a member gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Fresh sets of ports tried when one was taken before etcd bound it.
const BIND_ATTEMPTS: usize = 5;

/// One etcd member.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: Option<Child>,
}

/// An etcd cluster of one or more members, started for one test.
pub struct Etcd {
    members: Vec<Member>,
    initial_cluster: String,
    extra_args: Vec<String>,
    /// Client connections over TLS, with these certificates.
    tls: Option<Certs>,
    _dir: tempfile::TempDir,
}

fn etcd_binary() -> &'static str {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("etcd").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the etcd tests need the `etcd` binary on PATH: apt-get install etcd-server \
         (./scripts/test installs it when run as root)"
    );
    "etcd"
}

impl Etcd {
    /// A one-member cluster.
    pub fn start() -> Etcd {
        Etcd::start_with(1, &[])
    }

    /// A cluster of `members` members, each started with `extra_args` too.
    pub fn start_with(members: usize, extra_args: &[&str]) -> Etcd {
        Etcd::launch(members, extra_args, None)
    }

    /// A one-member cluster that serves clients over TLS only and requires
    /// a client certificate signed by the same CA.
    pub fn start_tls(certs: Certs) -> Etcd {
        let args = [
            "--cert-file",
            certs.server_cert.to_str().unwrap(),
            "--key-file",
            certs.server_key.to_str().unwrap(),
            "--trusted-ca-file",
            certs.ca.to_str().unwrap(),
            "--client-cert-auth",
        ]
        .map(str::to_owned);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Etcd::launch(1, &args, Some(certs))
    }

    fn launch(members: usize, extra_args: &[&str], mut tls: Option<Certs>) -> Etcd {
        // A port found free can be taken by someone else before etcd binds
        // it; then start over on other ports.
        for _ in 0..BIND_ATTEMPTS {
            let mut etcd = Etcd::on_free_ports(members, extra_args, tls.take());
            for i in 0..etcd.members.len() {
                etcd.spawn(i);
            }
            let started: Result<(), String> =
                (0..etcd.members.len()).try_for_each(|i| etcd.wait_healthy(i));
            match started {
                Ok(()) => return etcd,
                Err(log) if log.contains("address already in use") => tls = etcd.tls.take(),
                Err(log) => panic!("{log}"),
            }
        }
        panic!("etcd found no free ports in {BIND_ATTEMPTS} attempts");
    }

    fn on_free_ports(members: usize, extra_args: &[&str], tls: Option<Certs>) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(members * 3);
        let members: Vec<Member> = (0..members)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[3 * i],
                peer_port: ports[3 * i + 1],
                metrics_port: ports[3 * i + 2],
                data_dir: dir.path().join(format!("m{i}.etcd")),
                log: dir.path().join(format!("m{i}.log")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        Etcd {
            members,
            initial_cluster,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            tls,
            _dir: dir,
        }
    }

    fn spawn(&mut self, i: usize) {
        let binary = etcd_binary();
        let member = &self.members[i];
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let metrics = format!("http://127.0.0.1:{}", member.metrics_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log)
            .unwrap();
        let child = Command::new(binary)
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--listen-metrics-urls", &metrics])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "disco-test"])
            // Fast elections keep startup and failover short; loose enough
            // for a loaded test machine.
            .args(["--heartbeat-interval", "25", "--election-timeout", "250"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.members[i].process = Some(child);
    }

    /// Waits until member `i` is healthy; why not, with its log, if it
    /// exits or takes too long.
    fn wait_healthy(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let port = self.members[i].metrics_port;
        loop {
            if health(port) {
                return Ok(());
            }
            if let Some(status) = self.members[i]
                .process
                .as_mut()
                .and_then(|p| p.try_wait().ok().flatten())
            {
                return Err(format!(
                    "etcd member {i} exited with {status}:\n{}",
                    self.log_tail(i)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd member {i} did not become healthy within {START_TIMEOUT:?}:\n{}",
                    self.log_tail(i)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `host:port` of member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].client_port)
    }

    /// The certificates of a TLS cluster.
    pub fn certs(&self) -> Option<&Certs> {
        self.tls.as_ref()
    }

    /// Every member's endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// A registry URL with every member: `scheme://h1,h2,h3/path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.endpoints().join(","))
    }

    /// How many watches member `i` serves (from its `/metrics`).
    pub fn watchers(&self, i: usize) -> u64 {
        http_get(self.members[i].metrics_port, "/metrics")
            .lines()
            .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// Kills member `i` (SIGKILL, by pid) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on the same ports and data dir.
    pub fn restart(&mut self, i: usize) {
        assert!(self.members[i].process.is_none(), "member {i} is running");
        self.spawn(i);
        if let Err(log) = self.wait_healthy(i) {
            panic!("{log}");
        }
    }

    /// A client of the members that are running.
    pub async fn client(&self) -> Client {
        let endpoints: Vec<String> = (0..self.members.len())
            .filter(|&i| self.members[i].process.is_some())
            .map(|i| self.endpoint(i))
            .collect();
        let options = self
            .tls
            .as_ref()
            .map(|certs| ConnectOptions::new().with_tls(certs.client_tls()));
        Client::connect(endpoints, options)
            .await
            .expect("an etcd client")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Whether etcd's `/health` on `port` says healthy (it has a leader).
fn health(port: u16) -> bool {
    http_get(port, "/health").contains("\"health\":\"true\"")
}

/// The response to a GET of `path` on a member's metrics port; empty if it
/// does not answer.
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}
