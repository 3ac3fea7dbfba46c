//! A scripted upstream resolver on loopback, for what a real one will not
//! do on demand: answer slowly, or answer garbage. It counts the queries it
//! gets, keeps them for tests to read, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// How the upstream answers.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// One A record, 192.0.2.7 with TTL 60, after this delay.
    AnswerAfter(Duration),
    /// The same A record: after the delay for names ending in this one
    /// (lowercase, with its final dot), at once for every other.
    SlowFor(&'static str, Duration),
    /// Bytes that are no DNS message, then near-misses: a header with the
    /// query's ID and no question, and the query echoed back as it came.
    Garbage,
}

/// The address answered by [`Script::AnswerAfter`].
pub const ANSWER: &str = "192.0.2.7";

/// A running scripted upstream.
pub struct FakeUpstream {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    /// Starts one on 127.0.0.1, port chosen by the kernel.
    pub async fn start(script: Script) -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let query = buf[..len].to_vec();
                kept.lock().unwrap().push(query.clone());
                counter.fetch_add(1, Ordering::SeqCst);
                let socket = socket.clone();
                tokio::spawn(async move {
                    for reply in replies(script, &query).await {
                        let _ = socket.send_to(&reply, from).await;
                    }
                });
            }
        });
        FakeUpstream {
            addr,
            queries,
            received,
            task,
        }
    }

    /// The datagrams received so far, as they came.
    pub fn received(&self) -> Vec<Message> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter_map(|packet| Message::from_vec(packet).ok())
            .collect()
    }

    /// Datagrams received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replies(script: Script, query: &[u8]) -> Vec<Vec<u8>> {
    match script {
        Script::AnswerAfter(delay) => {
            tokio::time::sleep(delay).await;
            answer(query)
        }
        Script::SlowFor(slow, delay) => {
            let name = Message::from_vec(query).ok().and_then(|q| {
                q.queries
                    .first()
                    .map(|q| q.name().to_lowercase().to_string())
            });
            if name.is_some_and(|name| name.ends_with(slow)) {
                tokio::time::sleep(delay).await;
            }
            answer(query)
        }
        Script::Garbage => {
            let noise: Vec<u8> = (0..300u16).map(|i| (i * 37 + 11) as u8).collect();
            let mut headless = query[..2].to_vec();
            headless.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]);
            let mut echoed = query.to_vec();
            echoed[2] |= 0x80;
            echoed[6] = 0xff; // claims answers it does not carry
            vec![noise, query[..3].to_vec(), headless, echoed]
        }
    }
}

/// [`ANSWER`] for the query's question, or nothing for no query.
fn answer(query: &[u8]) -> Vec<Vec<u8>> {
    let Ok(query) = Message::from_vec(query) else {
        return vec![];
    };
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let name = query.queries[0].name().clone();
    reply.add_query(query.queries[0].clone());
    reply.add_answer(Record::from_rdata(
        name,
        60,
        RData::A(A(ANSWER.parse().unwrap())),
    ));
    vec![reply.to_vec().unwrap()]
}
