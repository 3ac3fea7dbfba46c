//! `disco wait` (DESIGN §5): the real binary asking a real server over UDP.
//! It exits 0 within 100 ms of the name answering as wanted, 1 at the
//! timeout saying per name what it wanted and last saw, 64 for bad usage.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::support::{TestServer, instance};

/// Exit status for bad usage (DESIGN §4).
const EXIT_USAGE: i32 = 64;

/// `disco wait ARGS` with no inherited `DISCO_*` variables.
fn wait_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_disco"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DISCO_") {
            command.env_remove(key);
        }
    }
    command
        .arg("wait")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Kills the child if the test ends while it runs.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `disco wait ARGS` to its end (at most 20 s): exit code, stderr.
fn finish(args: &[&str]) -> (Option<i32>, String) {
    let child = wait_command(args).spawn().expect("disco runs");
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// When the child exits, polled every millisecond (at most `limit`).
async fn exited(child: &mut Child, limit: Duration) -> (Instant, Option<i32>) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (Instant::now(), status.code());
        }
        assert!(Instant::now() < deadline, "disco wait still running");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn wait_returns_within_100ms_of_the_name_answering() {
    let server = TestServer::start(vec![]).await;
    let dns = server.dns.to_string();
    let child = wait_command(&["db.disco.internal.", "--server", &dns, "--timeout", "30s"])
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    // It is asking and finds nothing: the server says NXDOMAIN to us too.
    let nothing = server.udp("db.disco.internal.", RecordType::A).await;
    assert!(nothing.answers.is_empty());
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "exited before the name answered"
    );
    server
        .registry
        .put(vec![instance("db", "db-1", r#"{"address":"10.0.0.7"}"#)]);
    // The moment the name answers, as a client sees it.
    let answered = loop {
        let response = server.udp("db.disco.internal.", RecordType::A).await;
        if !response.answers.is_empty() {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let (at, code) = exited(&mut child.0, Duration::from_secs(5)).await;
    assert_eq!(code, Some(0));
    let late = at.saturating_duration_since(answered);
    assert!(
        late < Duration::from_millis(100),
        "exited {late:?} after the name answered"
    );
}

#[tokio::test]
async fn wait_primary_wants_exactly_one_and_min_counts_addresses() {
    let server = TestServer::start(vec![
        instance("db", "db-1", r#"{"address":"10.0.0.1","tags":["primary"]}"#),
        instance("db", "db-2", r#"{"address":"10.0.0.2","tags":["primary"]}"#),
    ])
    .await;
    let dns = server.dns.to_string();
    // Two primaries are not one: it waits, and says what it saw.
    let (code, stderr) = tokio::task::spawn_blocking({
        let dns = dns.clone();
        move || {
            finish(&[
                "db.disco.internal.",
                "--primary",
                "--server",
                &dns,
                "--timeout",
                "300ms",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("db.disco.internal.: wanted exactly one primary")
            && stderr.contains("last saw 2 addresses (10.0.0.1, 10.0.0.2)"),
        "{stderr}"
    );
    server.registry.put(vec![instance(
        "db",
        "db-2",
        r#"{"address":"10.0.0.2","tags":["replica"]}"#,
    )]);
    let (code, stderr) = tokio::task::spawn_blocking({
        let dns = dns.clone();
        move || {
            finish(&[
                "db.disco.internal.",
                "--primary",
                "--server",
                &dns,
                "--timeout",
                "10s",
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    // Two addresses satisfy --min 2, not --min 3.
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        finish(&[
            "db.disco.internal.",
            "--min",
            "2",
            "--server",
            &dns,
            "--timeout",
            "10s",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn wait_times_out_with_what_each_name_wanted_and_saw() {
    let server =
        TestServer::start(vec![instance("web", "web-1", r#"{"address":"10.0.0.9"}"#)]).await;
    let dns = server.dns.to_string();
    let started = Instant::now();
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        finish(&[
            "web.disco.internal.",
            "nothing.disco.internal.",
            "--min",
            "2",
            "--server",
            &dns,
            "--timeout",
            "400ms",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(stderr.contains("timed out after 400ms"), "{stderr}");
    assert!(
        stderr.contains(
            "web.disco.internal.: wanted at least 2 addresses, last saw 1 address (10.0.0.9)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing.disco.internal.: wanted at least 2 addresses, last saw NXDOMAIN"),
        "{stderr}"
    );
    // A server that never answers is reported as such.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = silent.local_addr().unwrap().to_string();
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        finish(&[
            "web.disco.internal.",
            "--server",
            &silent,
            "--timeout",
            "700ms",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("last saw no reply"), "{stderr}");
}

#[test]
fn wait_rejects_bad_usage_with_64_naming_the_flag() {
    for (args, needle) in [
        (&["db", "--min", "0", "--server", "127.0.0.1"][..], "--min"),
        (&["db", "--min", "two", "--server", "127.0.0.1"], "--min"),
        (
            &["db", "--timeout", "soon", "--server", "127.0.0.1"],
            "--timeout",
        ),
        (&["db", "--server", "nowhere:53"], "--server"),
        (
            &["db", "--primary", "--min", "2", "--server", "127.0.0.1"],
            "--min",
        ),
        (&["db..x", "--server", "127.0.0.1"], "db..x"),
        (&["--server", "127.0.0.1"], "NAME"),
        (&["db", "--frobnicate"], "--frobnicate"),
    ] {
        let (code, stderr) = finish(args);
        assert_eq!(code, Some(EXIT_USAGE), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
