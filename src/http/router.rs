//! Paths to handlers: [`Router`] matches a request's path (exact routes
//! first, then prefixes), answers 404 naming the paths, 405 for methods
//! other than `GET` and `HEAD`, 413 for a body, and hands the rest to the
//! route's handler.

use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper::{Method, Request};

use super::server::MAX_REQUEST_BODY;
use super::{Ask, EventStream, Reply};

/// What a route answers.
pub(super) enum Answer {
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
    pub(super) fn answer(&self, request: &Request<Incoming>) -> (Answer, bool) {
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
