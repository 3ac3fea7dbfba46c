//! The HTTP endpoints as HTTP/1.1 clients and Prometheus use them: keep-alive,
//! `HEAD`, 404 and 405, and the limits on slow and oversized requests.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::*;

/// A response read off a keep-alive connection: status, headers, body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; the body by its `Content-Length`, none for `HEAD`.
async fn read_response(reader: &mut BufReader<TcpStream>, head: bool) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let Some((name, value)) = line.trim_end().split_once(": ") else {
            break;
        };
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    if !head {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.unwrap();
        response.body = String::from_utf8(body).unwrap();
    }
    response
}

async fn send(reader: &mut BufReader<TcpStream>, request: &str) {
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
}

/// Whether the server closed the connection (EOF) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(within, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn requests_share_a_keep_alive_connection_and_head_has_no_body() {
    let server =
        TestServer::start(vec![instance("web", "web-1", r#"{"address":"10.0.0.5"}"#)]).await;
    let mut conn = BufReader::new(TcpStream::connect(server.http).await.unwrap());
    send(&mut conn, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let health = read_response(&mut conn, false).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // The same connection, again: Prometheus scrapes over keep-alive.
    send(&mut conn, "GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let metrics = read_response(&mut conn, false).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("disco_instances 1"),
        "{}",
        metrics.body
    );
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    send(&mut conn, "HEAD /ready HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let head = read_response(&mut conn, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    // No body came after the HEAD response: the next bytes are the next
    // response's status line.
    send(&mut conn, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let missing = read_response(&mut conn, false).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/metrics"), "{}", missing.body);
    send(
        &mut conn,
        "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let post = read_response(&mut conn, false).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn a_slow_client_is_cut_at_the_time_limit() {
    let server = TestServer::start(Vec::new()).await;
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    let started = Instant::now();
    // Half a request line, then nothing.
    stream.write_all(b"GET /heal").await.unwrap();
    assert!(
        closed_within(
            &mut stream,
            disco::http::REQUEST_TIMEOUT + Duration::from_secs(3)
        )
        .await,
        "a client that never finishes its request is disconnected"
    );
    assert!(started.elapsed() >= disco::http::REQUEST_TIMEOUT - Duration::from_millis(100));
}

#[tokio::test]
async fn an_oversized_request_is_refused() {
    let server = TestServer::start(Vec::new()).await;
    let mut conn = BufReader::new(TcpStream::connect(server.http).await.unwrap());
    let big = "x".repeat(disco::http::MAX_REQUEST_HEAD);
    send(
        &mut conn,
        &format!("GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n"),
    )
    .await;
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 431 "), "{line}");

    let mut conn = BufReader::new(TcpStream::connect(server.http).await.unwrap());
    let body_len = disco::http::MAX_REQUEST_BODY + 1;
    send(
        &mut conn,
        &format!("GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: {body_len}\r\n\r\n"),
    )
    .await;
    let refused = read_response(&mut conn, false).await;
    assert_eq!(refused.status, 413);
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(closed_within(conn.get_mut(), Duration::from_secs(2)).await);
}
