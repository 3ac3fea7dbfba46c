//! The listener: hyper's HTTP/1.1 server (already built for etcd-client's
//! gRPC stack) serving a [`Router`], with keep-alive, `HEAD`, limits on
//! what a client may send and how long it may take, and a graceful end at
//! shutdown. Knows nothing of any route.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::router::{Answer, Router};
use super::sse;

/// Largest request head (request line and headers) accepted: larger gets 431.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Largest request body accepted (the endpoints read none): larger gets 413.
pub const MAX_REQUEST_BODY: u64 = 8192;
/// How long a client may take to send a request head, and how long an idle
/// keep-alive connection stays open: then the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long open connections get to finish their request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

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
