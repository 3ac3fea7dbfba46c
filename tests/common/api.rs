//! The JSON API and its event stream, as a program would read them, shared
//! by the store test binaries (each includes this file with `#[path]`),
//! and the check of real responses against `docs/openapi.yaml`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::http;

/// GETs `path` and parses the body as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http::get(addr, path).await;
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
    (status, value)
}

/// An open `/v1/changes/stream`.
pub struct EventStream {
    stream: TcpStream,
    seen: String,
}

impl EventStream {
    /// Opens the stream at `path` and reads its response head.
    pub async fn open(addr: SocketAddr, path: &str) -> EventStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut events = EventStream {
            stream,
            seen: String::new(),
        };
        events.until("\r\n\r\n", Duration::from_secs(5)).await;
        assert!(
            events.seen.starts_with("HTTP/1.1 200"),
            "the stream did not start: {}",
            events.seen
        );
        assert!(events.seen.contains("text/event-stream"), "{}", events.seen);
        events
    }

    /// Reads until what arrived contains `needle`; panics after `limit`.
    /// Returns everything read so far.
    pub async fn until(&mut self, needle: &str, limit: Duration) -> &str {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            let read = tokio::time::timeout(left, self.stream.read(&mut buf)).await;
            match read {
                Ok(Ok(n)) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Ok(_) => panic!("the stream closed before {needle:?}: {}", self.seen),
                Err(_) => panic!(
                    "no {needle:?} in the stream within {limit:?}: {}",
                    self.seen
                ),
            }
        }
        &self.seen
    }
}

/// Runs `tests/common/openapi_check.py` against the server at `addr`,
/// `service` standing for `{name}`; panics with its report on a mismatch.
pub async fn openapi_check(addr: SocketAddr, service: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    // Async: the server under test runs on this test's runtime.
    let output = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/common/openapi_check.py"))
        .arg(format!("{root}/docs/openapi.yaml"))
        .arg(format!("http://{addr}"))
        .arg(format!("name={service}"))
        .output()
        .await
        .expect("python3 runs (with python3-jsonschema and python3-yaml)");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the API does not match docs/openapi.yaml:\n{report}"
    );
    report
}
