//! What a handler is given ([`Ask`]: the request's path, query and the
//! headers handlers read) and what it answers ([`Reply`]).

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
