//! `/health`, `/ready` and `/metrics`, served by hyper's HTTP/1.1 server
//! (already built for etcd-client's gRPC stack): keep-alive, `HEAD`, 404 for
//! unknown paths and 405 for other methods, and limits on what a client may
//! send and how long it may take.
//!
//! The surface is small on purpose: a [`Router`] of paths to handlers, each
//! returning a [`Reply`], and [`serve`]. `disco serve` routes
//! [`Endpoints`]; `disco registrar` builds its own [`Router`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dns::server::ListenerBoard;
use crate::metrics::Metrics;
use crate::registry::{ResyncCause, StatusBoard};

/// Largest request head (request line and headers) accepted: larger gets 431.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Largest request body accepted (the endpoints read none): larger gets 413.
pub const MAX_REQUEST_BODY: u64 = 8192;
/// How long a client may take to send a request head, and how long an idle
/// keep-alive connection stays open: then the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open connections get to finish their request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The `Content-Type` of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a handler answers: a status, a content type and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The body (left out for `HEAD`, its length still given).
    pub body: String,
}

impl Reply {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// An `application/json` reply, the value followed by a newline.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: value.to_string() + "\n",
        }
    }

    /// A 200 reply in the Prometheus text format.
    pub fn prometheus(body: String) -> Self {
        Reply {
            status: 200,
            content_type: PROMETHEUS_TEXT,
            body,
        }
    }
}

type Handler = Arc<dyn Fn() -> Reply + Send + Sync>;

/// Paths and their handlers; every path answers `GET` and `HEAD`.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(&'static str, Handler)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.routes.iter().map(|(path, _)| *path).collect();
        f.debug_struct("Router").field("paths", &paths).finish()
    }
}

impl Router {
    /// A router with no paths (everything is 404).
    pub fn new() -> Self {
        Router::default()
    }

    /// Answers `path` (exact, query string ignored) with `handler`.
    pub fn route(
        mut self,
        path: &'static str,
        handler: impl Fn() -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.routes.push((path, Arc::new(handler)));
        self
    }

    fn handler(&self, path: &str) -> Option<&Handler> {
        (self.routes.iter())
            .find(|(route, _)| *route == path)
            .map(|(_, handler)| handler)
    }

    /// The reply to a request: the handler's, or 404, 405, 413.
    fn reply(&self, request: &Request<Incoming>) -> (Reply, bool) {
        let close = false;
        let Some(handler) = self.handler(request.uri().path()) else {
            let paths: Vec<&str> = self.routes.iter().map(|(path, _)| *path).collect();
            let hint = format!("not found; try {}\n", paths.join(", "));
            return (Reply::text(404, hint), close);
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return (Reply::text(405, "only GET and HEAD\n"), close);
        }
        // Nothing here reads a body: refuse a large one rather than let
        // the connection drain it, and close the connection after.
        let body = request.body().size_hint();
        if body.upper().is_none_or(|upper| upper > MAX_REQUEST_BODY) {
            return (Reply::text(413, "request body too large\n"), true);
        }
        (handler(), close)
    }
}

/// What `disco serve`'s endpoints report on.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Query and snapshot metrics.
    pub metrics: Arc<Metrics>,
    /// Registry sources.
    pub status: Arc<StatusBoard>,
    /// The DNS listeners.
    pub listeners: Arc<ListenerBoard>,
}

impl From<Endpoints> for Router {
    fn from(endpoints: Endpoints) -> Router {
        let Endpoints {
            metrics,
            status,
            listeners,
        } = endpoints;
        let (for_ready, listeners_for_ready) = (status.clone(), listeners.clone());
        Router::new()
            .route("/health", || Reply::text(200, "ok\n"))
            .route("/ready", move || ready(&for_ready, &listeners_for_ready))
            .route("/metrics", move || {
                let mut text = metrics.render(&status.sources());
                listeners.render_metrics(&mut text);
                Reply::prometheus(text)
            })
    }
}

/// Serves `router` on `listener` until `shutdown`; each connection is a task
/// on `tracker`, given a moment to finish its request at shutdown.
pub async fn serve(
    listener: TcpListener,
    router: impl Into<Router>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let router = Arc::new(router.into());
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: wait for some to close.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (router, shutdown) = (router.clone(), shutdown.clone());
            tracker.spawn(serve_connection(stream, router, shutdown));
        }
    };
    shutdown.run_until_cancelled(accept).await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Arc<Router>,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (reply, close) = router.reply(&request);
        let mut response = Response::new(Full::new(Bytes::from(reply.body)));
        *response.status_mut() =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
        if reply.status == 405 {
            headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        if close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .max_header_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
}

/// Ready once every registry has delivered its first listing, while every
/// DNS listener is serving. A stale registry stays ready (disco answers
/// from the last snapshot: stale beats down) and says so in the body; a
/// listener that is not serving (it ended and is being restarted) makes
/// it 503, naming the listener and why.
fn ready(status: &StatusBoard, listeners: &ListenerBoard) -> Reply {
    let sources = status.sources();
    let listeners = listeners.statuses();
    let ready = sources.iter().all(|s| s.synced) && listeners.iter().all(|l| l.serving);
    let now = SystemTime::now();
    let listener_details: Vec<serde_json::Value> = listeners
        .iter()
        .map(|l| {
            serde_json::json!({
                "listener": l.name,
                "serving": l.serving,
                "restarts": l.restarts,
                "down_since": l.down_since
                    .map(|since| humantime::format_rfc3339_seconds(since).to_string()),
                "reason": l.reason,
            })
        })
        .collect();
    let seconds_since = |at: Option<SystemTime>| {
        at.and_then(|at| now.duration_since(at).ok())
            .map(|d| d.as_secs_f64())
    };
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
                "position": s.position,
                "seconds_since_event": seconds_since(s.last_event),
                "seconds_since_proof": seconds_since(s.last_proof),
                "lag": s.lag,
                "resyncs": ResyncCause::ALL
                    .iter()
                    .map(|&cause| (cause.as_str().to_owned(), s.resyncs(cause).into()))
                    .collect::<serde_json::Map<String, serde_json::Value>>(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "ready": ready,
        "registries": details,
        "listeners": listener_details,
    });
    Reply::json(if ready { 200 } else { 503 }, &body)
}
