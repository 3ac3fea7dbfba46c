//! The disco side of the harness, shared by the store test binaries (each
//! includes this file with `#[path]`): `disco serve` in-process on
//! 127.0.0.1:0 watching real registries, queried with hickory's client, its
//! HTTP endpoints read over a plain socket.

#![allow(dead_code)]

#[path = "http.rs"]
pub mod http;

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use disco::cli::ServeArgs;
use disco::config::ServeConfig;
use disco::serve::{self, Running};
use hickory_net::client::{Client as DnsClient, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// How long a change in the store may take to show in DNS before a test fails.
/// Far above the real figure (milliseconds); generous for a loaded machine.
pub const CONVERGE: Duration = Duration::from_secs(10);

/// How long a first listing may take: 100,000 instances take a few seconds
/// in a debug build on a busy machine.
pub const READY: Duration = Duration::from_secs(30);

/// A running `disco serve`.
pub struct Disco {
    pub dns: SocketAddr,
    pub http: SocketAddr,
    running: Option<Running>,
    _zones: tempfile::TempDir,
}

/// Flags for a server on loopback port 0 watching `registries`, with no
/// zone files and no upstream.
pub fn args(zones_dir: &std::path::Path, registries: &[String]) -> ServeArgs {
    ServeArgs {
        listen: vec!["127.0.0.1:0".into()],
        http_listen: Some("127.0.0.1:0".into()),
        zones_dir: Some(zones_dir.to_owned()),
        upstream: vec!["off".into()],
        udp_sockets: Some(1),
        registry: registries.to_vec(),
        ..ServeArgs::default()
    }
}

impl Disco {
    /// Starts disco on `registries` and waits until every one has synced.
    pub async fn start(registries: &[String]) -> Disco {
        let disco = Disco::start_with(registries, &[], |_| {}).await;
        disco.wait_ready().await;
        disco
    }

    /// Starts disco with zone files (name, text) and flags adjusted by
    /// `adjust`, without waiting for the registries.
    pub async fn start_with(
        registries: &[String],
        zones: &[(&str, &str)],
        adjust: impl FnOnce(&mut ServeArgs),
    ) -> Disco {
        init_log();
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in zones {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut args = args(dir.path(), registries);
        adjust(&mut args);
        let config = ServeConfig::from_args(args).expect("test configuration is valid");
        let running = serve::start(config, Vec::new())
            .await
            .expect("server starts");
        Disco {
            dns: running.dns_addrs[0],
            http: running.http_addr.unwrap(),
            running: Some(running),
            _zones: dir,
        }
    }

    /// Waits until `/ready` says 200.
    pub async fn wait_ready(&self) {
        let running = self.running.as_ref().unwrap();
        eventually("every registry synced", READY, || async {
            running.status.all_synced()
        })
        .await;
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        self.running
            .take()
            .unwrap()
            .stop(Duration::from_secs(5))
            .await;
    }

    /// Asks over UDP; `None` if no answer came (a failed query).
    pub async fn try_query(&self, name: &str, rtype: RecordType) -> Option<Message> {
        query_at(self.dns, name, rtype).await
    }

    /// Asks over UDP.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Message {
        self.try_query(name, rtype)
            .await
            .unwrap_or_else(|| panic!("no answer to {name} {rtype}"))
    }

    /// The sorted answer data for `name` `rtype`, or the rcode if it failed.
    pub async fn answers(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Vec<String>, ResponseCode> {
        message_answers(&self.query(name, rtype).await)
    }

    /// Asks `name` `rtype` without pause for 3 s (at most 100,000 times),
    /// asserting that every query is answered with `expected` (as
    /// [`Disco::answers`] returns it); returns how many were asked. For
    /// joining with a fault: no answer may fail or be partial during it.
    pub async fn answers_steadily(
        &self,
        name: &str,
        rtype: RecordType,
        expected: &Result<Vec<String>, ResponseCode>,
    ) -> usize {
        self.answers_steadily_for(name, rtype, expected, Duration::from_secs(3))
            .await
    }

    /// [`Disco::answers_steadily`] for `span` instead of 3 s: a registration
    /// that drops and comes back within it fails, where a later
    /// [`Disco::until_answers`] (which polls) would pass.
    pub async fn answers_steadily_for(
        &self,
        name: &str,
        rtype: RecordType,
        expected: &Result<Vec<String>, ResponseCode>,
        span: Duration,
    ) -> usize {
        let until = Instant::now() + span;
        let mut count = 0;
        while Instant::now() < until && count < 100_000 {
            let message = self
                .try_query(name, rtype)
                .await
                .expect("every query is answered");
            assert_eq!(&Ok(answers(&message)), expected, "answer {count}");
            count += 1;
        }
        count
    }

    /// After a watch went silent at `dead`: how long until `/metrics`
    /// counted a resync of the registry `label` (`registry="…"`) for any
    /// cause, which cause, and how long until `name` `rtype` was answered
    /// with `expected`, polling both every 10 ms for at most `limit`. The
    /// figures the liveness tests print (and `bench/liveness.sh` collects).
    pub async fn detection_and_answer(
        &self,
        dead: Instant,
        label: &str,
        name: &str,
        rtype: RecordType,
        expected: Result<Vec<String>, ResponseCode>,
        limit: Duration,
    ) -> (Duration, String, Duration) {
        let prefix = format!("disco_registry_resyncs_total{{{label},cause=\"");
        let (mut detection, mut answer) = (None, None);
        while detection.is_none() || answer.is_none() {
            if detection.is_none() {
                let text = self.metrics().await;
                let cause = text.lines().find_map(|line| {
                    let (cause, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
                    (count != "0").then(|| cause.to_owned())
                });
                detection = cause.map(|cause| (dead.elapsed(), cause));
            }
            if answer.is_none() {
                let got = (self.try_query(name, rtype).await).map(|m| message_answers(&m));
                if got.as_ref() == Some(&expected) {
                    answer = Some(dead.elapsed());
                }
            }
            assert!(
                dead.elapsed() < limit,
                "within {limit:?}: detected {detection:?}, answered after {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (detected, cause) = detection.unwrap();
        (detected, cause, answer.unwrap())
    }

    /// `disco serve` watching `url` with proofs at
    /// [`Disco::test_proof_interval`]: the liveness tests' server.
    pub async fn start_proving(url: &str) -> Disco {
        Disco::start_with(&[url.to_owned()], &[], |args| {
            let interval = Disco::test_proof_interval();
            args.watch_proof_interval = Some(format!("{}ms", interval.as_millis()));
        })
        .await
    }

    /// Waits until the registry `url` has been proved and found current.
    pub async fn until_proved_current(&self, url: &str) {
        self.until_metric(&format!(
            "disco_registry_resyncs_total{{registry=\"{url}\",cause=\"behind\"}} 0"
        ))
        .await;
    }

    /// After the watch of registry `url` went silent at `dead` and a change
    /// was made: waits for its detection and for `name` A to answer
    /// `expected`, within two proof intervals and 6 s; prints the
    /// `LIVENESS {what} …` line `bench/liveness.sh` collects; at intervals
    /// under 5 s (well before etcd's HTTP/2 keepalive, 15 s, could notice)
    /// wants the proof to be what found it, and `/ready` to count it.
    /// Returns the resync's cause.
    pub async fn until_silent_watch_found(
        &self,
        what: &str,
        url: &str,
        dead: Instant,
        name: &str,
        expected: &[&str],
    ) -> String {
        let interval = Disco::test_proof_interval();
        let expected = Ok(expected.iter().map(|a| a.to_string()).collect());
        let label = format!("registry=\"{url}\"");
        let bound = interval * 2 + Duration::from_secs(6);
        let (detected, cause, answered) = self
            .detection_and_answer(dead, &label, name, RecordType::A, expected, bound)
            .await;
        eprintln!(
            "LIVENESS {what} interval={interval:?} detected={detected:?} cause={cause} answered={answered:?}"
        );
        if interval < Duration::from_secs(5) {
            assert_eq!(cause, "behind", "the proof found it");
        }
        // Current again, and `/ready` counts the resync by its cause.
        let (status, body) = self.ready().await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("\"{cause}\":1")), "{body}");
        cause
    }

    /// The proof interval the liveness tests use: 1 s, or
    /// `DISCO_TEST_PROOF_INTERVAL` (`bench/liveness.sh` runs them at the
    /// default 10 s too, where etcd's HTTP/2 keepalive may notice first).
    pub fn test_proof_interval() -> Duration {
        std::env::var("DISCO_TEST_PROOF_INTERVAL")
            .ok()
            .map(|text| humantime::parse_duration(&text).expect("a duration, like 10s"))
            .unwrap_or(Duration::from_secs(1))
    }

    /// Polls until the answer for `name` `rtype` is `expected`.
    pub async fn until_answers(
        &self,
        name: &str,
        rtype: RecordType,
        expected: Result<Vec<String>, ResponseCode>,
    ) {
        let deadline = Instant::now() + CONVERGE;
        loop {
            // A query lost on a loaded machine is asked again, like any
            // answer not yet the expected one.
            // (`None` in the message below: no answer at all.)
            let got = self
                .try_query(name, rtype)
                .await
                .map(|m| message_answers(&m));
            if got.as_ref() == Some(&expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} {rtype}: expected {expected:?} within {CONVERGE:?}, still {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GETs `path` from the HTTP endpoints: status and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http::get(self.http, path).await
    }

    /// The `/ready` status and body.
    pub async fn ready(&self) -> (u16, String) {
        self.http_get("/ready").await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http_get("/metrics").await.1
    }

    /// Polls until `/metrics` has the line `line`.
    pub async fn until_metric(&self, line: &str) {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let text = self.metrics().await;
            if text.lines().any(|l| l == line) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/metrics never had {line:?}; it says:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the `/ready` body contains `needle`.
    pub async fn until_ready_says(&self, needle: &str) {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let (_, body) = self.ready().await;
            if body.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/ready never said {needle:?}; it says {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Asks the DNS server at `dns` over UDP; `None` if no answer came.
pub async fn query_at(dns: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let stream = UdpClientStream::builder(dns, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(2)))
        .build();
    let (mut client, bg) = DnsClient::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, rtype)
        .await
        .ok()
        .map(|r| r.into_message())
}

/// A `disco serve` process (the binary this test run built), as a replica
/// beside others on one store: its own store connection, its own memory.
/// Killed when dropped.
pub struct Replica {
    pub dns: SocketAddr,
    pub http: SocketAddr,
    child: std::process::Child,
    _zones: tempfile::TempDir,
}

impl Replica {
    /// Starts `disco serve` on free loopback ports watching `registry`,
    /// without waiting for it.
    pub fn spawn(registry: &str, dns_port: u16, http_port: u16) -> Replica {
        let zones = tempfile::tempdir().unwrap();
        let dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
        let http = SocketAddr::from(([127, 0, 0, 1], http_port));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_disco"))
            .arg("serve")
            .args(["--listen", &dns.to_string()])
            .args(["--http-listen", &http.to_string()])
            .arg("--zones-dir")
            .arg(zones.path())
            .args([
                "--upstream",
                "off",
                "--udp-sockets",
                "1",
                "--log-level",
                "warn",
            ])
            .args(["--registry", registry])
            .env("TOKIO_WORKER_THREADS", "1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("disco serve starts");
        Replica {
            dns,
            http,
            child,
            _zones: zones,
        }
    }

    /// Waits until `/ready` says 200.
    pub async fn wait_ready(&self) {
        eventually("the replica is ready", READY, || async {
            // Not listening yet: `http::get` would panic.
            tokio::net::TcpStream::connect(self.http).await.is_ok()
                && http::get(self.http, "/ready").await.0 == 200
        })
        .await;
    }

    /// Polls until `/metrics` has the line `line`.
    pub async fn until_metric(&self, line: &str) {
        eventually(&format!("{} has {line:?}", self.dns), CONVERGE, || async {
            http::get(self.http, "/metrics")
                .await
                .1
                .lines()
                .any(|l| l == line)
        })
        .await;
    }

    /// The SRV answers of `name` (as [`srv`] gives them), or the rcode;
    /// a query lost on a loaded machine is asked again.
    pub async fn srv(&self, name: &str) -> Result<Vec<String>, ResponseCode> {
        for _ in 0..5 {
            if let Some(message) = query_at(self.dns, name, RecordType::SRV).await {
                return match message.metadata.response_code {
                    ResponseCode::NoError => Ok(srv(&message)),
                    code => Err(code),
                };
            }
        }
        panic!("{}: no answer to {name} SRV", self.dns);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs to the test's output when `DISCO_TEST_LOG` holds a filter (e.g.
/// `disco=debug`), for reading what a failing test's server did.
fn init_log() {
    if let Ok(filter) = std::env::var("DISCO_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Polls `check` every 20 ms until it holds, at most `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The answer section's data, as text, sorted.
pub fn answers(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message.answers.iter().map(|r| r.data.to_string()).collect();
    out.sort();
    out
}

/// The SRV answers as `priority weight port target`, sorted.
pub fn srv(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(format!(
                "{} {} {} {}",
                srv.priority, srv.weight, srv.port, srv.target
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// `Ok` with these addresses, sorted, as [`Disco::answers`] returns them.
pub fn ok(addresses: &[&str]) -> Result<Vec<String>, ResponseCode> {
    let mut out: Vec<String> = addresses.iter().map(|s| s.to_string()).collect();
    out.sort();
    Ok(out)
}

/// The sorted answer data of a message, or its rcode if it failed.
fn message_answers(message: &Message) -> Result<Vec<String>, ResponseCode> {
    match message.metadata.response_code {
        ResponseCode::NoError => Ok(answers(message)),
        code => Err(code),
    }
}
