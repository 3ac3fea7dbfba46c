//! The metrics in the manual are the metrics the binary exports.
//!
//! The convention: each command's metric families are rows of tables whose
//! header begins `` | `disco COMMAND` metric | ``, the family name (with
//! its labels in braces) in the first cell. The families exported are read
//! from the running binary's `/metrics` (`# TYPE` lines), never from a list
//! kept by hand: `disco serve` on the example zone with an etcd and a
//! ZooKeeper registry that do not answer (a registry's families are there
//! from the start, stale), and `disco registrar` with an unreachable store,
//! once for a service with `--elect` and once with `--docker` and no engine.
//! Every family exported must be documented, every family documented must be
//! exported, and any `disco_…` name the prose uses must be one of them. So
//! that a family emitted only in another mode cannot slip by, every metric
//! name the source spells must be among those the started binaries export.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::manual;

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `count` free loopback ports (all bound at once, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Starts the binary with `args` and `env`.
fn start(args: &[String], env: &[(&str, &str)]) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_disco"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(manual::root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the disco binary starts"),
    )
}

/// GETs `/metrics` once: the body of a 200.
fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The families of `/metrics` at `addr` (by their `# TYPE` lines), once
/// `ready` holds of the text; fails naming `what` after 60 s. `None` when
/// the process exited first (a free port taken meanwhile: the caller tries
/// again on others).
fn families(
    what: &str,
    process: &mut Running,
    addr: SocketAddr,
    ready: impl Fn(&str) -> bool,
) -> Option<BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    loop {
        if let Some(status) = process.0.try_wait().unwrap() {
            eprintln!("{what} exited ({status}) before serving /metrics");
            return None;
        }
        if let Some(text) = scrape(addr) {
            if ready(&text) {
                return Some(
                    text.lines()
                        .filter_map(|l| l.strip_prefix("# TYPE "))
                        .filter_map(|l| l.split_whitespace().next())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            last = Some(text);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: /metrics at {addr} not complete within 60 s; last: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `attempt` up to three times, for the ports it takes.
fn retried(what: &str, attempt: impl Fn() -> Option<BTreeSet<String>>) -> BTreeSet<String> {
    (0..3)
        .find_map(|_| attempt())
        .unwrap_or_else(|| panic!("{what} exited before serving /metrics, three times"))
}

/// What `disco serve` exports.
fn serve_families() -> BTreeSet<String> {
    retried("disco serve", serve_families_once)
}

fn serve_families_once() -> Option<BTreeSet<String>> {
    let [dns, http, etcd, zk]: [u16; 4] = free_ports(4).try_into().unwrap();
    let args: Vec<String> = [
        "serve",
        &format!("--listen=127.0.0.1:{dns}"),
        &format!("--http-listen=127.0.0.1:{http}"),
        "--zones-dir=zones",
        "--upstream=off",
        "--udp-sockets=1",
        &format!("--registry=etcd://127.0.0.1:{etcd}/disco"),
        &format!("--registry=zk://127.0.0.1:{zk}/disco"),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut serve = start(&args, &[]);
    families(
        "disco serve",
        &mut serve,
        SocketAddr::from(([127, 0, 0, 1], http)),
        |text| text.contains("disco_registry_up{"),
    )
}

/// What `disco registrar` exports: one service with `--elect`, and the
/// `--docker` form, both on an etcd that does not answer.
fn registrar_families() -> BTreeSet<String> {
    retried("disco registrar", registrar_families_once)
}

fn registrar_families_once() -> Option<BTreeSet<String>> {
    let [http1, http2, etcd, service]: [u16; 4] = free_ports(4).try_into().unwrap();
    let registry = format!("--registry=etcd://127.0.0.1:{etcd}/disco");
    let elect: Vec<String> = [
        "registrar",
        &registry,
        "--service=docs",
        &format!("--port={service}"),
        "--address=127.0.0.1",
        "--check=tcp",
        "--elect",
        "--interval=200ms",
        "--timeout=100ms",
        &format!("--http-listen=127.0.0.1:{http1}"),
    ]
    .map(str::to_owned)
    .to_vec();
    let docker: Vec<String> = [
        "registrar",
        &registry,
        "--docker",
        "--address=127.0.0.1",
        &format!("--http-listen=127.0.0.1:{http2}"),
    ]
    .map(str::to_owned)
    .to_vec();
    let no_engine = manual::root().join("target/no-docker-engine.sock");
    let docker_host = format!("unix://{}", no_engine.display());
    let mut one = start(&elect, &[]);
    let mut many = start(&docker, &[("DOCKER_HOST", &docker_host)]);
    let mut all = families(
        "disco registrar --elect",
        &mut one,
        SocketAddr::from(([127, 0, 0, 1], http1)),
        |text| text.contains("disco_registrar_checks_total{"),
    )?;
    all.extend(families(
        "disco registrar --docker",
        &mut many,
        SocketAddr::from(([127, 0, 0, 1], http2)),
        |text| text.contains("disco_registrar_docker_"),
    )?);
    Some(all)
}

/// The families each command's metric tables document: name → where.
fn documented() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut by_command: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for page in manual::pages() {
        for table in page.tables() {
            let Some(command) = table
                .header
                .first()
                .and_then(|h| h.strip_prefix("`disco "))
                .and_then(|h| h.strip_suffix("` metric"))
            else {
                continue;
            };
            for (line, cells) in &table.rows {
                let name = manual::code_spans(&cells[0])
                    .first()
                    .map(|s| s.split('{').next().unwrap().to_owned())
                    .unwrap_or_default();
                by_command
                    .entry(command.to_owned())
                    .or_default()
                    .insert(name, format!("{}:{line}", page.path));
            }
        }
    }
    by_command
}

/// Compares one command's exported families with its tables.
fn compare(command: &str, exported: &BTreeSet<String>, wrong: &mut Vec<String>) {
    let tables = documented();
    let documented = tables.get(command).cloned().unwrap_or_default();
    for family in exported {
        if !documented.contains_key(family) {
            wrong.push(format!(
                "disco {command} exports {family}, which no `disco {command}` metric table in docs/ documents"
            ));
        }
    }
    for (family, at) in &documented {
        if !exported.contains(family) {
            wrong.push(format!(
                "{at}: documents {family}, which disco {command}'s /metrics does not export"
            ));
        }
    }
}

#[test]
fn every_metric_serve_exports_is_documented_and_no_other() {
    let exported = serve_families();
    assert!(exported.len() > 20, "only {exported:?} read from /metrics");
    let mut wrong = Vec::new();
    compare("serve", &exported, &mut wrong);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_metric_the_registrar_exports_is_documented_and_no_other() {
    let exported = registrar_families();
    assert!(exported.len() > 10, "only {exported:?} read from /metrics");
    let mut wrong = Vec::new();
    compare("registrar", &exported, &mut wrong);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `disco_…` names in the manual that are not metrics.
const NOT_METRICS: &[&str] = &[
    // The swarm service the stack `disco` runs (`docker/stack.yaml`).
    "disco_disco",
    // The stack's backend network, as another stack names it.
    "disco_sd_backend",
];

#[test]
fn every_metric_the_prose_names_is_in_a_table() {
    let documented: BTreeSet<String> = documented()
        .into_values()
        .flat_map(|m| m.into_keys())
        .collect();
    let mut wrong = Vec::new();
    for page in manual::pages() {
        for line in &page.lines {
            for name in manual::tokens(&line.text, "disco_", |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
            }) {
                if NOT_METRICS.contains(&name) {
                    continue;
                }
                let ok = match name.strip_suffix('_') {
                    // `disco_tcp_connections_*`: some family begins so.
                    Some(_) => documented.iter().any(|d| d.starts_with(name)),
                    None => documented.contains(name),
                };
                if !ok {
                    wrong.push(format!(
                        "{}:{}: {name} is in no metric table",
                        page.path, line.number
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Metric names the source spells: `disco_…` right after a quote or after
/// `# HELP ` / `# TYPE ` (so test functions named `disco_…` are not taken).
fn source_names(dir: &std::path::Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_names(&path, out);
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for lead in ["\"", "# HELP ", "# TYPE "] {
            let spelt = format!("{lead}disco_");
            for token in manual::tokens(&text, &spelt, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
            }) {
                out.insert(token[lead.len()..].to_owned());
            }
        }
    }
}

/// The exported-families tests see only what the binaries export in the
/// modes they start; this one makes sure those modes cover every family
/// the source defines, so a family emitted only in some other mode cannot
/// go undocumented unnoticed.
#[test]
fn every_metric_the_source_defines_is_seen_by_these_tests() {
    let mut exported = serve_families();
    exported.extend(registrar_families());
    let mut named = BTreeSet::new();
    source_names(&manual::root().join("src"), &mut named);
    assert!(named.len() > 20, "only {named:?} found in src/");
    let unseen: Vec<&String> = named
        .iter()
        .filter(|name| {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| exported.contains(*base))
                .unwrap_or(name);
            !exported.contains(family)
        })
        .collect();
    assert!(
        unseen.is_empty(),
        "src/ defines {unseen:?}, which the binaries these tests start do not export: \
         start them in a mode that does (tests/docs/metrics.rs), so the docs are checked for it"
    );
}
