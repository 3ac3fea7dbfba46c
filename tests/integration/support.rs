//! The test harness: a real server, an in-process registry, a real client.

#[path = "../common/http.rs"]
mod http;

use std::net::SocketAddr;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

use crate::memory::{MemoryBackend, MemoryHandle};
use disco::cli::ServeArgs;
use disco::config::ServeConfig;
use disco::model::{Instance, parse_native};
use disco::serve::{self, Running};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// A running `disco serve` with an in-process registry.
pub struct TestServer {
    pub dns: SocketAddr,
    pub http: SocketAddr,
    pub registry: MemoryHandle,
    running: Option<Running>,
    _zones: tempfile::TempDir,
}

/// An instance from native JSON, as a backend would read it.
pub fn instance(service: &str, id: &str, json: &str) -> Instance {
    parse_native(service, id, json.as_bytes()).expect("test registrations are valid")
}

/// Flags for a server on loopback port 0 with no zone files and no upstream.
pub fn test_args(zones_dir: &Path) -> ServeArgs {
    ServeArgs {
        listen: vec!["127.0.0.1:0".into()],
        http_listen: Some("127.0.0.1:0".into()),
        zones_dir: Some(zones_dir.to_owned()),
        upstream: vec!["off".into()],
        udp_sockets: Some(2),
        ..ServeArgs::default()
    }
}

impl TestServer {
    /// A server with `instances` registered and no zone files.
    pub async fn start(instances: Vec<Instance>) -> Self {
        Self::start_with(instances, &[], |_| {}).await
    }

    /// A server with `instances`, the given zone files (name, text), and
    /// flags adjusted by `adjust`.
    pub async fn start_with(
        instances: Vec<Instance>,
        zones: &[(&str, &str)],
        adjust: impl FnOnce(&mut ServeArgs),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in zones {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut args = test_args(dir.path());
        adjust(&mut args);
        let config = ServeConfig::from_args(args).expect("test configuration is valid");
        let (backend, registry) = MemoryBackend::new(instances);
        let running = serve::start(config, vec![backend as Arc<dyn disco::registry::Backend>])
            .await
            .expect("server starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !running.status.all_synced() {
            assert!(Instant::now() < deadline, "the registry never synced");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        TestServer {
            dns: running.dns_addrs[0],
            http: running.http_addr.unwrap(),
            registry,
            running: Some(running),
            _zones: dir,
        }
    }

    /// The server's fault points (test builds have them: the `failpoints`
    /// feature).
    pub fn faults(&self) -> Arc<disco::dns::server::Faults> {
        self.running.as_ref().unwrap().faults.clone()
    }

    /// Stops the server, waiting for in-flight queries.
    pub async fn stop(mut self) -> bool {
        self.running
            .take()
            .unwrap()
            .stop(Duration::from_secs(5))
            .await
    }

    /// Asks over UDP with hickory's client (EDNS on, as hickory does).
    pub async fn udp(&self, name: &str, rtype: RecordType) -> Message {
        let stream = UdpClientStream::builder(self.dns, TokioRuntimeProvider::default()).build();
        let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(bg);
        let response = client
            .query(Name::from_str(name).unwrap(), DNSClass::IN, rtype)
            .await
            .expect("an answer over UDP");
        response.into_message()
    }

    /// Asks over TCP with hickory's client.
    pub async fn tcp(&self, name: &str, rtype: RecordType) -> Message {
        let (future, sender) =
            TcpClientStream::new(self.dns, None, None, TokioRuntimeProvider::new());
        let (mut client, bg) = Client::<TokioRuntimeProvider>::new(future.await.unwrap(), sender);
        tokio::spawn(bg);
        let response = client
            .query(Name::from_str(name).unwrap(), DNSClass::IN, rtype)
            .await
            .expect("an answer over TCP");
        response.into_message()
    }

    /// Sends raw bytes over UDP; the response, if one comes within 1 s.
    pub async fn raw(&self, packet: &[u8]) -> Option<Vec<u8>> {
        raw_udp(self.dns, packet).await
    }

    /// GETs `path` from the HTTP endpoints: status and body.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http::get(self.http, path).await
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        self.http_get("/metrics").await.1
    }

    /// Polls until `check` holds for the UDP answer, at most 5 s.
    pub async fn eventually(
        &self,
        name: &str,
        rtype: RecordType,
        check: impl Fn(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let message = self.udp(name, rtype).await;
            if check(&message) || Instant::now() > deadline {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Sends `packet` to `server` over UDP and waits up to 1 s for a response.
pub async fn raw_udp(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(len);
    Some(buf)
}

/// A query message, with EDNS when `edns_size` is given.
pub fn query_message(name: &str, rtype: RecordType, edns_size: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_str(name).unwrap(), rtype));
    if let Some(size) = edns_size {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

/// The answer section's data, as text, sorted.
pub fn answers(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message.answers.iter().map(|r| r.data.to_string()).collect();
    out.sort();
    out
}

/// The answer section's records of one type.
pub fn records_of(records: &[Record], rtype: RecordType) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.record_type() == rtype)
        .collect()
}

/// The SOA in the authority section (negative answers), with its TTL.
pub fn authority_soa(message: &Message) -> Option<(u32, u32)> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.ttl, soa.minimum)),
        _ => None,
    })
}

/// The response code.
pub fn rcode(message: &Message) -> ResponseCode {
    message.metadata.response_code
}
