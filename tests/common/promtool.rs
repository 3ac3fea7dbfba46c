//! `promtool check metrics` (Debian's `prometheus` package) on a real
//! `/metrics` text, shared by the test binaries (each includes this file
//! with `#[path]`).

use std::io::Write;
use std::process::{Command, Stdio};

/// Asserts that promtool accepts `metrics` and has nothing to say.
#[track_caller]
pub fn assert_accepts(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "this test needs promtool: apt-get install prometheus (./scripts/test installs it)",
        );
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(metrics.as_bytes()).unwrap();
    drop(stdin);
    let output = promtool.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{metrics}"
    );
}
