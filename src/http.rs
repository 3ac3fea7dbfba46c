//! `/health`, `/ready` and `/metrics` over a deliberately small HTTP/1.1
//! server: one request per connection, GET only, bounded in size and time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::registry::StatusBoard;

const MAX_REQUEST: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoints report on.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Query and snapshot metrics.
    pub metrics: Arc<Metrics>,
    /// Registry sources.
    pub status: Arc<StatusBoard>,
}

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let endpoints = endpoints.clone();
            tracker.spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, &endpoints)).await;
            });
        }
    };
    shutdown.run_until_cancelled(accept).await;
}

async fn handle(mut stream: TcpStream, endpoints: &Endpoints) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || request.len() + n > MAX_REQUEST {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (status, content_type, body) = if method != b"GET" {
        (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        )
    } else {
        match path {
            b"/health" => ("200 OK", "text/plain", "ok\n".to_owned()),
            b"/ready" => ready(endpoints),
            b"/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4",
                endpoints.metrics.render(&endpoints.status.sources()),
            ),
            _ => (
                "404 Not Found",
                "text/plain",
                "try /health, /ready or /metrics\n".to_owned(),
            ),
        }
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Ready once every registry has delivered its first listing. A stale
/// registry stays ready (disco answers from the last snapshot: stale beats
/// down) and says so in the body.
fn ready(endpoints: &Endpoints) -> (&'static str, &'static str, String) {
    let sources = endpoints.status.sources();
    let ready = sources.iter().all(|s| s.synced);
    let now = SystemTime::now();
    let details: Vec<serde_json::Value> = sources
        .iter()
        .map(|s| {
            let stale_seconds = s
                .stale_since
                .and_then(|since| now.duration_since(since).ok())
                .map(|d| d.as_secs_f64());
            let stale_since = s
                .stale_since
                .map(|since| humantime::format_rfc3339_seconds(since).to_string());
            serde_json::json!({
                "registry": s.name,
                "synced": s.synced,
                "stale": s.stale_since.is_some(),
                "stale_since": stale_since,
                "stale_seconds": stale_seconds,
                "stale_reason": s.stale_reason,
                "skipped": s.skipped,
            })
        })
        .collect();
    let body = serde_json::json!({ "ready": ready, "registries": details }).to_string() + "\n";
    (
        if ready {
            "200 OK"
        } else {
            "503 Service Unavailable"
        },
        "application/json",
        body,
    )
}
