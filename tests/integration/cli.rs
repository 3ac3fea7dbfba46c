//! The binary's edges: bad flags, environment variables, config files and
//! zone files exit 64 with a message naming what is wrong; `--help` lists
//! every flag; SIGTERM and SIGINT shut a running server down with status 0.
//!
//! Every run of the real binary passes `--upstream off`, `--http-listen off`,
//! a temporary `--zones-dir` and `--listen 127.0.0.1:0` (unless the flag
//! under test is one of them), and has a deadline.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::support::{answers, query_message};

/// Exit status for bad usage or configuration (DESIGN §4).
const EXIT_USAGE: i32 = 64;

/// How long a run that should fail fast may take.
const QUICK: Duration = Duration::from_secs(10);

/// A zone file with an SOA and one address.
const EXAMPLE_ZONE: &str =
    "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nwww IN A 192.0.2.1\n";

/// `disco` with no inherited `DISCO_*` variables, run in `dir`.
fn disco(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_disco"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DISCO_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `disco serve` with the safe defaults, except the flags named in `skip`.
fn serve(dir: &Path, skip: &[&str]) -> Command {
    let mut command = disco(dir);
    command.arg("serve");
    let zones = dir.to_str().unwrap();
    for (flag, value) in [
        ("--upstream", "off"),
        ("--http-listen", "off"),
        ("--zones-dir", zones),
        ("--listen", "127.0.0.1:0"),
    ] {
        if !skip.contains(&flag) {
            command.args([flag, value]);
        }
    }
    command
}

/// A finished run.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Kills the child (by its own handle) if a test ends while it still runs.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls until the child exits or `limit` passes.
fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pipe to its end on a thread, so a full pipe never blocks the child.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Runs `command` to completion within [`QUICK`]; kills it and fails if it
/// is still running then (it must have started serving).
fn run(mut command: Command) -> Outcome {
    let mut child = Reaper(command.spawn().expect("the disco binary runs"));
    let stdout = drain(child.0.stdout.take());
    let stderr = drain(child.0.stderr.take());
    let status = wait_until(&mut child.0, QUICK);
    drop(child); // kills it if it is still running, closing the pipes
    let outcome = Outcome {
        status: status.unwrap_or_default(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "still running after {QUICK:?} (it should have exited): {outcome:?}"
    );
    outcome
}

/// Asserts a usage failure: exit 64, every `needle` on stderr, no output on
/// stdout (nothing was served).
#[track_caller]
fn assert_usage_error(outcome: &Outcome, needles: &[&str], what: &str) {
    assert_eq!(
        outcome.status.code(),
        Some(EXIT_USAGE),
        "{what}: exit status; stderr: {}",
        outcome.stderr
    );
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "{what}: stderr should name {needle:?}: {}",
            outcome.stderr
        );
    }
    assert!(
        !outcome.stderr.contains("disco serving"),
        "{what}: it served: {}",
        outcome.stderr
    );
    assert!(
        outcome.stdout.is_empty(),
        "{what}: stdout: {}",
        outcome.stdout
    );
}

#[test]
fn bad_flag_values_exit_64_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    // (flag, value, what stderr must name besides the flag)
    let cases: &[(&str, &str, &str)] = &[
        ("--ttl", "soon", "soon"),
        ("--ttl", "5ms", "5ms"),
        ("--ttl", "99999999999", "99999999999"),
        ("--listen", "nonsense", "nonsense"),
        ("--listen", "127.0.0.1", "127.0.0.1"),
        ("--listen", "127.0.0.1:99999", "99999"),
        ("--allow-recursion", "300.0.0.0/8", "300.0.0.0/8"),
        ("--allow-recursion", "10.0.0.0/33", "10.0.0.0/33"),
        ("--registry", "redis://x/y", "redis"),
        ("--registry", "etcd:/h1", "etcd:/h1"),
        ("--registry", "etcd:///disco", "no host"),
        ("--registry", "etcd://user:pw@h1:2379/disco", "credentials"),
        ("--registry", "zk:///disco", "no host"),
        ("--registry", "zk://h1:/disco", "h1:"),
        ("--registry", "zk://h1:2181/a//b", "not a ZooKeeper path"),
        (
            "--registry",
            "nerve+zk://h1:2181/nerve/../x",
            "not a ZooKeeper path",
        ),
        ("--registry", "zk://digest:pw@h1:2181/disco", "credentials"),
        ("--domain", "bad..name", "bad..name"),
        ("--upstream", "off,127.0.0.1", "off"),
        ("--upstream", "resolver.example", "resolver.example"),
        ("--http-listen", "nonsense", "nonsense"),
        ("--udp-sockets", "0", "0"),
        ("--udp-sockets", "many", "many"),
        ("--log-format", "xml", "xml"),
        ("--log-level", "[[[", "[[["),
        ("--ns-address", "ns.example", "ns.example"),
        ("--ns-address", "0.0.0.0", "wildcard"),
        ("--udp-answer-limit", "0", "at least 1"),
        ("--udp-answer-limit", "all", "all"),
        ("--rrl-responses", "fast", "fast"),
        ("--rrl-responses", "2000000", "at most 1000000"),
        ("--rrl-errors", "lots", "lots"),
        ("--rrl-slip", "11", "at most 10"),
        ("--rrl-exempt", "10.0.0.0/33", "10.0.0.0/33"),
        (
            "--cookie-secret-file",
            "/nonexistent/secret",
            "/nonexistent/secret",
        ),
    ];
    for &(flag, value, needle) in cases {
        let mut command = serve(dir.path(), &[flag]);
        command.args([flag, value]);
        let what = format!("{flag} {value}");
        assert_usage_error(&run(command), &[flag, needle], &what);
    }
}

#[test]
fn the_root_domain_is_refused() {
    // `validate_domain` refuses the root, but it sees the domain after its
    // trailing dot is trimmed: "" is not a fully qualified root, so it
    // passes, and disco then answers every name authoritatively (example.com.
    // A gets NXDOMAIN with AA set) instead of refusing or forwarding it.
    let dir = tempfile::tempdir().unwrap();
    for value in [".", ""] {
        let mut command = serve(dir.path(), &[]);
        command.args(["--domain", value]);
        assert_usage_error(
            &run(command),
            &["--domain", "root"],
            &format!("--domain {value:?}"),
        );
    }
}

#[test]
fn an_unknown_flag_or_a_missing_value_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve(dir.path(), &[]);
    command.arg("--frobnicate");
    assert_usage_error(&run(command), &["--frobnicate"], "an unknown flag");

    let mut command = serve(dir.path(), &[]);
    command.arg("--ttl");
    assert_usage_error(&run(command), &["--ttl"], "--ttl without a value");

    let mut command = disco(dir.path());
    command.arg("frobnicate");
    assert_usage_error(&run(command), &["frobnicate"], "an unknown subcommand");

    let outcome = run(disco(dir.path()));
    assert_usage_error(&outcome, &["Usage", "serve"], "no subcommand");
}

#[test]
fn a_listen_address_in_use_exits_1_naming_it() {
    // A good address that cannot be bound is a runtime failure (exit 1,
    // DESIGN §4), not bad usage. The UDP socket here has no SO_REUSEPORT,
    // so disco's cannot share its port.
    let dir = tempfile::tempdir().unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut command = serve(dir.path(), &["--listen"]);
    command.args(["--listen", &addr]);
    let outcome = run(command);
    assert_eq!(outcome.status.code(), Some(1), "{outcome:?}");
    assert!(outcome.stderr.contains(&addr), "{}", outcome.stderr);
    assert!(
        !outcome.stderr.contains("disco serving"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn bad_environment_values_exit_64_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value, flag) in [
        ("DISCO_TTL", "soon", "--ttl"),
        ("DISCO_DOMAIN", "bad..name", "--domain"),
        ("DISCO_REGISTRY", "redis://x/y", "--registry"),
        ("DISCO_ALLOW_RECURSION", "300.0.0.0/8", "--allow-recursion"),
        ("DISCO_LOG_FORMAT", "xml", "--log-format"),
    ] {
        let mut command = serve(dir.path(), &[]);
        command.env(variable, value);
        assert_usage_error(
            &run(command),
            &[flag, value],
            &format!("{variable}={value}"),
        );
    }
    // A flag beats its variable: with DISCO_TTL and DISCO_LISTEN bad but
    // --ttl and --listen good, the first error is the --log-level checked
    // after them.
    let mut command = serve(dir.path(), &[]);
    command.args(["--ttl", "5s", "--log-level", "[[["]);
    command
        .env("DISCO_TTL", "soon")
        .env("DISCO_LISTEN", "nonsense");
    let outcome = run(command);
    assert_usage_error(&outcome, &["--log-level"], "flags over variables");
    assert!(
        !outcome.stderr.contains("--ttl") && !outcome.stderr.contains("--listen"),
        "the variables behind given flags are not read: {}",
        outcome.stderr
    );
}

#[test]
fn bad_zookeeper_credentials_exit_64_naming_the_variable_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("zk-password");
    std::fs::write(&password_file, "s3cret\n").unwrap();
    let password_file = password_file.to_str().unwrap();
    let zk = "zk://127.0.0.1:2181/disco";
    // (flags, environment, what stderr must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["--registry", zk],
            &[("DISCO_ZK_USER", "disco")],
            &["DISCO_ZK_USER", "password"],
        ),
        (
            &["--registry", zk],
            &[("DISCO_ZK_PASSWORD", "s3cret")],
            &["DISCO_ZK_USER", "no user"],
        ),
        (
            &["--registry", zk, "--zk-password-file", "/no/such/file"],
            &[("DISCO_ZK_USER", "disco")],
            &["--zk-password-file", "/no/such/file", "cannot read"],
        ),
        (
            &["--registry", zk, "--zk-password-file", password_file],
            &[("DISCO_ZK_USER", "disco"), ("DISCO_ZK_PASSWORD", "s3cret")],
            &["DISCO_ZK_PASSWORD", "not both"],
        ),
        (
            &[
                "--registry",
                "etcd://127.0.0.1:2379/disco",
                "--zk-password-file",
                password_file,
            ],
            &[("DISCO_ZK_USER", "disco")],
            &["DISCO_ZK_USER", "no zk://"],
        ),
    ];
    for &(flags, env, needles) in cases {
        let mut command = serve(dir.path(), &[]);
        command.args(flags).envs(env.iter().copied());
        let outcome = run(command);
        assert_usage_error(&outcome, needles, &format!("{flags:?} {env:?}"));
        assert!(!outcome.stderr.contains("s3cret"), "{}", outcome.stderr);
    }
}

#[test]
fn a_broken_zone_file_exits_64_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("disco.internal.zone"),
        "$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 30\nok IN A 192.0.2.1\nbroken IN A not-an-address\nlater IN A 192.0.2.2\n",
    )
    .unwrap();
    assert_usage_error(
        &run(serve(dir.path(), &[])),
        &["disco.internal.zone:4"],
        "a bad address on line 4",
    );
}

#[test]
fn a_missing_zones_dir_exits_64_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-zones");
    let mut command = serve(dir.path(), &["--zones-dir"]);
    command.arg("--zones-dir").arg(&missing);
    assert_usage_error(
        &run(command),
        &[missing.to_str().unwrap()],
        "a missing --zones-dir",
    );
}

#[test]
fn help_lists_every_serve_flag_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = disco(dir.path());
    command.args(["serve", "--help"]);
    let outcome = run(command);
    assert_eq!(outcome.status.code(), Some(0), "{outcome:?}");
    for flag in [
        "--listen",
        "--domain",
        "--zones-dir",
        "--registry",
        "--upstream",
        "--allow-recursion",
        "--ns-address",
        "--udp-answer-limit",
        "--rrl-responses",
        "--rrl-nxdomains",
        "--rrl-errors",
        "--rrl-slip",
        "--rrl-exempt",
        "--cookie-secret-file",
        "--ttl",
        "--http-listen",
        "--log-format",
        "--zk-password-file",
        "--config",
    ] {
        assert!(
            outcome.stdout.contains(flag),
            "`disco serve --help` does not mention {flag}:\n{}",
            outcome.stdout
        );
    }
    assert!(
        outcome.stdout.contains("DISCO_TTL"),
        "the help names the environment variables (DESIGN §4):\n{}",
        outcome.stdout
    );

    let mut command = disco(dir.path());
    command.arg("--help");
    let outcome = run(command);
    assert_eq!(outcome.status.code(), Some(0), "{outcome:?}");
    assert!(outcome.stdout.contains("serve"), "{}", outcome.stdout);

    let mut command = disco(dir.path());
    command.arg("--version");
    let outcome = run(command);
    assert_eq!(outcome.status.code(), Some(0), "{outcome:?}");
    assert!(
        outcome.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        outcome.stdout
    );
}

// ---------------------------------------------------------------------------
// Config files

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("disco.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bad_config_file_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().to_str().unwrap();
    // (file, what stderr must name, the flag left to the file)
    let cases: &[(&str, &[&str], &str)] = &[
        // A bad value: named by its flag, as from the command line.
        ("[serve]\nttl = \"soon\"\n", &["--ttl", "soon"], "--ttl"),
        (
            "[serve]\nlisten = [\"nonsense\"]\n",
            &["--listen", "nonsense"],
            "--listen",
        ),
        // An unknown key, in [serve] or at the top: named, with the file.
        ("[serve]\nbogus = 1\n", &["disco.toml", "bogus"], ""),
        ("bogus = 1\n", &["disco.toml", "bogus"], ""),
        // A list where one value is expected, and broken TOML.
        (
            "[serve]\ndomain = [\"a\", \"b\"]\n",
            &["disco.toml", "domain"],
            "",
        ),
        ("[serve\nttl = \"5s\"\n", &["disco.toml"], ""),
    ];
    for &(text, needles, from_file) in cases {
        let path = write_config(dir.path(), text);
        let mut command = serve(dir.path(), &[from_file]);
        command.arg("--config").arg(&path);
        assert_usage_error(&run(command), needles, &format!("config {text:?}"));
    }
    // The file's zones-dir must exist, like the flag's.
    let path = write_config(
        dir.path(),
        &format!("[serve]\nzones-dir = \"{zones}/missing\"\n"),
    );
    let mut command = serve(dir.path(), &["--zones-dir"]);
    command.arg("--config").arg(&path);
    assert_usage_error(
        &run(command),
        &["missing"],
        "a missing zones-dir in the file",
    );

    let missing = dir.path().join("nope.toml");
    let mut command = serve(dir.path(), &[]);
    command.arg("--config").arg(&missing);
    assert_usage_error(
        &run(command),
        &[missing.to_str().unwrap()],
        "a missing config file",
    );
}

// ---------------------------------------------------------------------------
// A running server

/// A `disco serve` that has logged "disco serving", with its DNS address.
struct Served {
    child: Reaper,
    dns: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// Starts `command` (which must log JSON) and waits up to 10 s for its
/// "disco serving" line; reads the bound DNS address out of it.
fn start(mut command: Command) -> Served {
    let mut child = Reaper(command.spawn().expect("the disco binary runs"));
    let stderr = child.0.stderr.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(err) => panic!("no \"disco serving\" line ({err}); stderr so far: {seen:#?}"),
        };
        seen.push(line.clone());
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if json["fields"]["message"] != "disco serving" {
            continue;
        }
        // `dns` is the Debug form of the bound addresses: "[127.0.0.1:PORT]".
        let dns = json["fields"]["dns"]
            .as_str()
            .unwrap_or_else(|| panic!("no dns field in {line}"));
        let first = dns.trim_matches(['[', ']']).split(',').next().unwrap();
        let dns: SocketAddr = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no address in dns={dns:?}: {line}"));
        assert!(dns.ip().is_loopback() && dns.port() != 0, "{line}");
        return Served {
            child,
            dns,
            lines,
            seen,
        };
    }
}

/// A `disco serve` of the example zone in `dir`, logging JSON, once it
/// serves.
fn serve_the_example_zone(dir: &Path) -> Served {
    std::fs::write(dir.join("example.internal.zone"), EXAMPLE_ZONE).unwrap();
    let mut command = serve(dir, &[]);
    command.args(["--log-format", "json"]);
    start(command)
}

impl Served {
    /// Asks `name` A over UDP; the addresses in the answer.
    fn ask_a(&self, name: &str) -> Vec<String> {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let packet = query_message(name, RecordType::A, None);
        socket.send_to(&packet, self.dns).unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|err| panic!("no answer from {} for {name}: {err}", self.dns));
        let message = Message::from_vec(&buf[..len]).unwrap();
        answers(&message)
    }

    /// Sends `signal` to the process (by its pid) and asserts that it exits
    /// with status 0 within 6 s, after logging that it is shutting down.
    fn assert_clean_exit_on(mut self, signal: libc::c_int) {
        let pid = self.child.0.id() as libc::pid_t;
        #[allow(unsafe_code)]
        // SAFETY: kill(2) with the pid of a child this test spawned and has
        // not reaped (the Reaper holds it), so the pid cannot be reused.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal})");
        let status = wait_until(&mut self.child.0, Duration::from_secs(6));
        let logged: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(logged);
        let status = status.unwrap_or_else(|| {
            panic!(
                "still running 6 s after signal {signal}; stderr: {:#?}",
                self.seen
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "{status} after signal {signal}; stderr: {:#?}",
            self.seen
        );
        // The reader thread sees the rest of stderr once the pipe closes.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.seen.iter().any(|l| l.contains("shutting down")) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no \"shutting down\" line: {:#?}", self.seen),
            }
        }
    }
}

#[test]
fn sigterm_stops_a_serving_disco_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_the_example_zone(dir.path());
    assert_eq!(served.ask_a("www.example.internal."), ["192.0.2.1"]);
    served.assert_clean_exit_on(libc::SIGTERM);
}

#[test]
fn a_serving_disco_runs_without_transparent_huge_pages() {
    // mimalloc's 2 MiB-aligned memory under THP `always` made the kernel
    // clear a whole huge page at every first touch: a fifth of a
    // million-instance cold start (BENCHMARKS.md). The kernel says per
    // process whether THP applies to it (`THP_enabled`, Linux 5.0).
    let dir = tempfile::tempdir().unwrap();
    let served = serve_the_example_zone(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.0.id())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    assert_eq!(
        thp.map(|l| l.split_whitespace().nth(1)),
        Some(Some("0")),
        "{status}"
    );
    served.assert_clean_exit_on(libc::SIGTERM);
}

#[test]
fn a_signal_right_after_disco_serving_is_a_clean_shutdown() {
    // An orchestrator may stop a replica the moment it sees it come up. The
    // signal handlers must be in place before "disco serving" is logged, or
    // the signal takes its default action: death, no exit status, no drain
    // (it did, about one try in seven, before they moved).
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        let mut command = serve(dir.path(), &[]);
        command.args(["--log-format", "json"]);
        start(command).assert_clean_exit_on(libc::SIGTERM);
    }
}

#[test]
fn a_config_file_configures_serve_and_sigint_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).unwrap();
    std::fs::write(zones.join("example.internal.zone"), EXAMPLE_ZONE).unwrap();
    // Listen address, zones, HTTP and the log format come from the file
    // alone; --upstream off is also on the command line, so a file that
    // were ignored could still never forward anywhere.
    let path = write_config(
        dir.path(),
        &format!(
            "[serve]\nttl = \"42s\"\nupstream = [\"off\"]\nhttp-listen = \"off\"\nlisten = [\"127.0.0.1:0\"]\nzones-dir = \"{}\"\nlog-format = \"json\"\n",
            zones.display()
        ),
    );
    let mut command = disco(dir.path());
    command
        .args(["serve", "--upstream", "off", "--config"])
        .arg(&path);
    let served = start(command);
    assert_eq!(served.ask_a("www.example.internal."), ["192.0.2.1"]);
    served.assert_clean_exit_on(libc::SIGINT);
}

#[test]
fn a_name_server_without_an_address_is_warned_about_at_startup() {
    // A resolver delegated to the zone gets ns1's name and no way to reach
    // it; ns.example.com., outside the zone, needs no glue from disco.
    let dir = tempfile::tempdir().unwrap();
    let zone = "$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 30\n@ IN NS ns1\n@ IN NS ns.example.com.\n";
    std::fs::write(dir.path().join("disco.internal.zone"), zone).unwrap();
    let mut command = serve(dir.path(), &[]);
    command.args(["--log-format", "json"]);
    let served = start(command);
    let warnings: Vec<&String> = (served.seen.iter())
        .filter(|line| line.contains(r#""level":"WARN""#) && line.contains("name server"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", served.seen);
    assert!(
        warnings[0].contains("ns1.disco.internal."),
        "{}",
        warnings[0]
    );
    served.assert_clean_exit_on(libc::SIGTERM);

    // The synthesised NS of a disco listening on loopback has its address.
    let empty = tempfile::tempdir().unwrap();
    let mut command = serve(empty.path(), &[]);
    command.args(["--log-format", "json"]);
    let served = start(command);
    assert!(
        !served
            .seen
            .iter()
            .any(|line| line.contains(r#""level":"WARN""#)),
        "{:#?}",
        served.seen
    );
    served.assert_clean_exit_on(libc::SIGTERM);
}
