//! The registrar side of the harness: the real `disco registrar` binary as a
//! child process, and the services it checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{CONVERGE, Disco, ok};

/// The flags every test registrar gets: fast checks, and the address
/// given rather than found, so answers are predictable.
pub const FAST: [&str; 10] = [
    "--interval",
    "200ms",
    "--timeout",
    "150ms",
    "--rise",
    "2",
    "--fall",
    "2",
    "--address",
    "127.0.0.1",
];

/// Starts a registrar of `web`/`web-1` at 127.0.0.1:`port` publishing to
/// `registry`, with the [`FAST`] flags and `extra`.
pub fn web_registrar(registry: &str, port: &str, extra: &[&str]) -> Registrar {
    let mut args = vec![
        "--registry",
        registry,
        "--service",
        "web",
        "--instance",
        "web-1",
        "--port",
        port,
    ];
    args.extend(FAST);
    args.extend(extra);
    Registrar::start(&args)
}

/// A running `disco registrar`.
pub struct Registrar {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registrar {
    /// Starts `disco registrar ARGS` with its log in a temporary file.
    pub fn start(args: &[&str]) -> Registrar {
        Registrar::start_with_env(args, &[])
    }

    /// The same with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Registrar {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("registrar.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = command(args, env)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("disco registrar starts");
        Registrar {
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    /// Sends `signal` to the registrar.
    pub fn signal(&self, signal: Signal) {
        let pid = self.child.as_ref().expect("running").id();
        kill(Pid::from_raw(pid as i32), signal).unwrap();
    }

    /// Waits (at most `limit`) for the registrar to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the registrar did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the registrar has not exited yet.
    pub fn still_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("not waited for");
        child.try_wait().unwrap().is_none()
    }

    /// What the registrar logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where its endpoints listen (started with `--http-listen
    /// 127.0.0.1:0`), read from its log once it says.
    pub async fn endpoints(&self) -> SocketAddr {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let log = self.log();
            let found = (log.lines())
                .find_map(|l| l.split("endpoints on ").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok());
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "no endpoints address in the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of the `/metrics` sample `sample` (its name and labels as
    /// exported, e.g. `disco_registrar_published{service="web/web-1"}`).
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        let (_, text) = crate::support::http::get(self.endpoints().await, "/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits until `service`'s checks (`/metrics`'s `service` label, e.g.
    /// `web/web-1`) have run `runs` more times than when this was called:
    /// the registrar's own sign that rounds of checks went by, where a sleep
    /// only hopes so.
    pub async fn until_checked(&self, service: &str, runs: u64) {
        let prefix = format!("disco_registrar_checks_total{{service=\"{service}\",");
        let count = || async {
            let (_, text) = crate::support::http::get(self.endpoints().await, "/metrics").await;
            (text.lines())
                .filter(|l| l.starts_with(&prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        };
        let start = count().await;
        let deadline = Instant::now() + CONVERGE;
        loop {
            let now = count().await;
            if now >= start + runs {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{service}: {now} check runs, waited for {}",
                start + runs
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `disco registrar ARGS`, with no `DISCO_*` variable from the test's own
/// environment.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_disco"));
    command.arg("registrar").args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("DISCO_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// A service the registrar checks: answers HTTP `GET` with `200 ok` (or
/// 503 while set unhealthy), and can be stopped and started again on the
/// same port.
pub struct TestService {
    pub addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    /// Its own runtime on its own thread: a test that blocks its thread for
    /// a moment (promtool, a process's output) must not stall the checks the
    /// registrar runs against this service, or they time out and the
    /// service is withdrawn under the test's feet.
    runtime: Option<tokio::runtime::Runtime>,
    task: Option<JoinHandle<()>>,
}

impl TestService {
    /// An HTTP service on a free loopback port.
    pub async fn start() -> TestService {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-service")
            .enable_all()
            .build()
            .unwrap();
        let mut service = TestService {
            addr,
            healthy: Arc::new(AtomicBool::new(true)),
            runtime: Some(runtime),
            task: None,
        };
        service.listen(listener);
        service
    }

    /// Serves `listener` on the service's own runtime.
    fn listen(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let runtime = self.runtime.as_ref().unwrap();
        let listener = {
            let _inside = runtime.enter();
            TcpListener::from_std(listener).unwrap()
        };
        self.task = Some(runtime.spawn(serve(listener, self.healthy.clone())));
    }

    /// The port, as a flag value.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Its health URL.
    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// Stops listening: connections are refused.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + CONVERGE;
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot listen on {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.listen(listener);
    }

    /// Whether it answers 200 (else 503).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Relaxed);
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.stop();
        // Not a plain drop: dropping a runtime blocks, which a test's own
        // runtime forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(listener: TcpListener, healthy: Arc<AtomicBool>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let healthy = healthy.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request).await;
            let response: &[u8] = if healthy.load(Relaxed) {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\ndown\n"
            };
            let _ = stream.write_all(response).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Waits until disco answers `name` A with 127.0.0.1.
pub async fn until_answered(disco: &Disco, name: &str) {
    disco
        .until_answers(name, RecordType::A, ok(&["127.0.0.1"]))
        .await;
}

/// Waits until disco says NXDOMAIN for `name` A.
pub async fn until_gone(disco: &Disco, name: &str) {
    disco
        .until_answers(name, RecordType::A, Err(ResponseCode::NXDomain))
        .await;
}

/// Asserts that disco answers `name` A with 127.0.0.1 at every query, asked
/// without pause, for `span`: "and it stays", which a sleep followed by
/// [`until_answered`] cannot tell from "it dropped and came back".
pub async fn stays_answered(disco: &Disco, name: &str, span: Duration) {
    disco
        .answers_steadily_for(name, RecordType::A, &ok(&["127.0.0.1"]), span)
        .await;
}

/// `Ok(127.0.0.1)` or NXDOMAIN, now.
pub async fn answered(disco: &Disco, name: &str) -> bool {
    disco.answers(name, RecordType::A).await == ok(&["127.0.0.1"])
}
