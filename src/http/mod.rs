//! The HTTP listener, served by hyper's HTTP/1.1 server (already built for
//! etcd-client's gRPC stack): keep-alive, `HEAD`, 404 for unknown paths and
//! 405 for other methods, and limits on what a client may send and how long
//! it may take. Read-only: nothing here writes anything.
//!
//! The surface is small on purpose: a [`Router`] of paths to handlers, each
//! given the request's path and query ([`Ask`]) and returning a [`Reply`]
//! (or, for the live stream, a stream of server-sent events), and
//! [`serve`]. `disco serve` routes [`Endpoints`]: `/health`, `/ready` and
//! `/metrics` there, the JSON API in `api`, the web page in `ui`;
//! `disco registrar` builds its own [`Router`].

mod api;
mod endpoints;
mod sse;
pub mod ui;

pub use endpoints::Endpoints;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use sse::EventStream;

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

/// What a handler is asked: the request's path, query string and the
/// headers the handlers read.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The path, as sent (not decoded).
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: &'a str,
    /// `Last-Event-ID`, sent by a browser reconnecting an event stream.
    pub last_event_id: Option<&'a str>,
}

impl Ask<'_> {
    /// The first value of query parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// What a route answers.
enum Answer {
    Reply(Reply),
    Stream(EventStream),
}

type Handler = Arc<dyn Fn(&Ask<'_>) -> Answer + Send + Sync>;

/// How a route matches paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Exact,
    /// The path starts with the route's and goes on.
    Prefix,
}

/// Paths and their handlers; every path answers `GET` and `HEAD`.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(&'static str, Match, Handler)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.routes.iter().map(|(path, ..)| *path).collect();
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
        self,
        path: &'static str,
        handler: impl Fn() -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.route_ask(path, move |_| handler())
    }

    /// Answers `path` (exact) with `handler`, which reads the query.
    pub fn route_ask(
        mut self,
        path: &'static str,
        handler: impl Fn(&Ask<'_>) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler = Arc::new(move |ask: &Ask<'_>| Answer::Reply(handler(ask)));
        self.routes.push((path, Match::Exact, handler));
        self
    }

    /// Answers every longer path under `prefix` (which ends with `/`) with
    /// `handler`; exact routes are matched first.
    pub fn route_prefix(
        mut self,
        prefix: &'static str,
        handler: impl Fn(&Ask<'_>) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler = Arc::new(move |ask: &Ask<'_>| Answer::Reply(handler(ask)));
        self.routes.push((prefix, Match::Prefix, handler));
        self
    }

    /// Answers `path` with a stream of server-sent events, or with a reply
    /// when the stream cannot start.
    pub fn route_stream(
        mut self,
        path: &'static str,
        handler: impl Fn(&Ask<'_>) -> Result<EventStream, Reply> + Send + Sync + 'static,
    ) -> Self {
        let handler = Arc::new(move |ask: &Ask<'_>| match handler(ask) {
            Ok(stream) => Answer::Stream(stream),
            Err(reply) => Answer::Reply(reply),
        });
        self.routes.push((path, Match::Exact, handler));
        self
    }

    fn handler(&self, path: &str) -> Option<&Handler> {
        let exact =
            (self.routes.iter()).find(|(route, kind, _)| *kind == Match::Exact && *route == path);
        let prefix = || {
            self.routes.iter().find(|(route, kind, _)| {
                *kind == Match::Prefix && path.len() > route.len() && path.starts_with(route)
            })
        };
        exact.or_else(prefix).map(|(_, _, handler)| handler)
    }

    /// The answer to a request: the handler's, or 404, 405, 413; and
    /// whether to close the connection after it.
    fn answer(&self, request: &Request<Incoming>) -> (Answer, bool) {
        let close = false;
        let Some(handler) = self.handler(request.uri().path()) else {
            let paths: Vec<&str> = self.routes.iter().map(|(path, ..)| *path).collect();
            let hint = format!("not found; try {}\n", paths.join(", "));
            return (Answer::Reply(Reply::text(404, hint)), close);
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let reply = Reply::text(405, "only GET and HEAD\n");
            return (Answer::Reply(reply), close);
        }
        // Nothing here reads a body: refuse a large one rather than let
        // the connection drain it, and close the connection after.
        let body = request.body().size_hint();
        if body.upper().is_none_or(|upper| upper > MAX_REQUEST_BODY) {
            let reply = Reply::text(413, "request body too large\n");
            return (Answer::Reply(reply), true);
        }
        let ask = Ask {
            path: request.uri().path(),
            query: request.uri().query().unwrap_or(""),
            last_event_id: (request.headers().get("last-event-id"))
                .and_then(|value| value.to_str().ok()),
        };
        (handler(&ask), close)
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
    let stream_shutdown = shutdown.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (answer, close) = router.answer(&request);
        let mut response = match answer {
            Answer::Reply(reply) => {
                let status = reply.status;
                let body = Full::new(Bytes::from(reply.body)).map_err(|never| match never {});
                let mut response = Response::new(UnsyncBoxBody::new(body));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
                if status == 405 {
                    headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                }
                response
            }
            Answer::Stream(events) => {
                // Ends at shutdown, so that the connection can close.
                let frames = events
                    .take_until(stream_shutdown.clone().cancelled_owned())
                    .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
                let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(frames)));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(sse::CONTENT_TYPE));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
        };
        if close {
            (response.headers_mut()).insert(CONNECTION, HeaderValue::from_static("close"));
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
