//! The TCP side (RFC 7766): accepting connections within the caps
//! (`connections`), and answering the length-prefixed queries on each.
//!
//! A connection is two halves. The reader takes whole messages off the
//! socket (`framing`), answers the ones the snapshot answers at once, and
//! hands forwarded ones to tasks of their own; the writer sends each answer
//! as it is ready. Pipelined queries are thus answered concurrently and out
//! of order (RFC 7766 §6.2.1.1): a slow forward holds back no other answer.
//! At most [`MAX_PIPELINED`] queries are in flight per connection; past
//! that the reader stops reading until answers go out.
//!
//! A connection is closed when it idles ([`TCP_IDLE`] with nothing in
//! flight), when a message once begun takes longer than [`TCP_IO`] to
//! arrive whole (a client trickling bytes), or when answers take longer
//! than [`TCP_IO`] to be written (a client that does not read them).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::connections::{Activity, Admitted, MAX_PIPELINED};
use super::framing::{self, Next};
use super::guard::Guarded;
use super::{DnsServer, TCP_IDLE};
use crate::dns::answer::MAX_MESSAGE;
use crate::dns::forward;
use crate::dns::responder::{Outcome, Transport, servfail};
use crate::metrics::TcpClose;

/// How long a message, once its first byte has come, may take to arrive
/// whole; and how long a batch of answers may take to be written. Knot's
/// `tcp-io-timeout` is 500 ms; this leaves room for a lossy link's
/// retransmissions.
pub const TCP_IO: Duration = Duration::from_secs(2);

/// Answers written in one system call at most (bytes): pipelined answers
/// ready together go out together.
const WRITE_BATCH: usize = 64 * 1024;

/// One answer, framed, and the in-flight place its query held until it is
/// written.
struct Answer {
    framed: Vec<u8>,
    place: OwnedSemaphorePermit,
}

impl DnsServer {
    /// Accepts connections within the caps and serves each on a task of
    /// its own.
    pub(super) async fn accept_tcp(self, tcp: Arc<TcpListener>) {
        self.faults.check_listener(Transport::Tcp);
        loop {
            let (stream, peer) = match tcp.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: wait for some.
                    tracing::debug!(%err, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            self.faults.check_listener(Transport::Tcp);
            let metrics = self.responder.metrics().tcp();
            let admitted = match self.tcp.admit(peer.ip(), &self.shutdown) {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    // Closed unread: the client sees the connection end
                    // at once, rather than hang in the backlog.
                    metrics.record_refused(refusal);
                    drop(stream);
                    continue;
                }
            };
            if admitted.evicted_one {
                metrics.record_closed(TcpClose::Evicted);
            }
            metrics.record_accepted();
            let server = self.clone();
            self.tracker.spawn(async move {
                let closed = server.serve_tcp(stream, peer.ip(), &admitted).await;
                // An evicted connection was counted when it was chosen,
                // whatever reason it ended with once its token fired (the
                // client's close or a failed write may win the race).
                let evicted =
                    admitted.activity.close.is_cancelled() && !server.shutdown.is_cancelled();
                if !evicted {
                    server.responder.metrics().tcp().record_closed(closed);
                }
            });
        }
    }

    /// Serves one connection until it is closed, and says why.
    async fn serve_tcp(&self, stream: TcpStream, peer: IpAddr, admitted: &Admitted) -> TcpClose {
        let _ = stream.set_nodelay(true);
        let activity = &admitted.activity;
        let (reader, writer) = stream.into_split();
        // Unbounded, since the in-flight places bound it.
        let (answers, outbox) = unbounded_channel();
        let write = write_answers(writer, outbox, activity);
        let read = self.read_queries(reader, peer, answers, activity);
        tokio::pin!(write, read);
        tokio::select! {
            closed = &mut read => match closed {
                // The answers in flight are still written (forwards end
                // within the upstream timeout), unless the socket failed.
                TcpClose::Client | TcpClose::Idle | TcpClose::Malformed | TcpClose::Shutdown => {
                    write.await.err().unwrap_or(closed)
                }
                closed => closed,
            },
            written = &mut write => written.err().unwrap_or(TcpClose::Client),
        }
    }

    /// Reads and answers messages until the connection must end, and says
    /// why. Dropping `answers` on return lets the writer finish.
    async fn read_queries(
        &self,
        mut reader: OwnedReadHalf,
        peer: IpAddr,
        answers: UnboundedSender<Answer>,
        activity: &Activity,
    ) -> TcpClose {
        let mut buffer: Vec<u8> = Vec::with_capacity(512);
        // When the first byte of the message in hand came.
        let mut begun: Option<Instant> = None;
        loop {
            let mut consumed = 0;
            let needed = loop {
                match framing::next_message(&buffer[consumed..]) {
                    Ok(Next::Message(message)) => {
                        let place = tokio::select! {
                            place = activity.queries.clone().acquire_owned() => place,
                            _ = activity.close.cancelled() => return self.closed_by_token(),
                        };
                        let Ok(place) = place else {
                            return TcpClose::Shutdown;
                        };
                        if !self.answer_tcp(message, peer, place, &answers) {
                            return TcpClose::Malformed;
                        }
                        activity.touch();
                        consumed += framing::PREFIX_LEN + message.len();
                    }
                    Ok(Next::Incomplete { needed }) => break needed,
                    Err(err) => {
                        tracing::debug!(%peer, %err, "tcp connection closed");
                        return TcpClose::Malformed;
                    }
                }
            };
            buffer.drain(..consumed);
            begun = match (buffer.is_empty(), consumed) {
                (true, _) => None,
                (false, 0) => begun.or_else(|| Some(Instant::now())),
                (false, _) => Some(Instant::now()),
            };
            // Room for the rest of this message, and for more pipelined
            // behind it in the same read.
            buffer.reserve(needed.max(4096));
            let (deadline, expired) = match begun {
                Some(begun) => (begun + TCP_IO, TcpClose::SlowRead),
                None if activity.busy() => (Instant::now() + TCP_IDLE, TcpClose::Idle),
                None => (activity.last() + TCP_IDLE, TcpClose::Idle),
            };
            tokio::select! {
                _ = activity.close.cancelled() => return self.closed_by_token(),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let idle_since = activity.last();
                    let still_idle = !activity.busy() && idle_since + TCP_IDLE <= Instant::now();
                    if expired == TcpClose::SlowRead || still_idle {
                        return expired;
                    }
                }
                read = reader.read_buf(&mut buffer) => match read {
                    Ok(0) | Err(_) => return TcpClose::Client,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Why a connection whose token was cancelled ends.
    fn closed_by_token(&self) -> TcpClose {
        if self.shutdown.is_cancelled() {
            TcpClose::Shutdown
        } else {
            TcpClose::Evicted
        }
    }

    /// Answers one query, now or from a task, into `answers`; false when it
    /// is no query and the connection is to be closed.
    fn answer_tcp(
        &self,
        query: &[u8],
        peer: IpAddr,
        place: OwnedSemaphorePermit,
        answers: &UnboundedSender<Answer>,
    ) -> bool {
        let mut out = Vec::new();
        let send = |out: &[u8], place| {
            let _ = answers.send(Answer {
                framed: framing::frame(out),
                place,
            });
        };
        match self.respond_guarded(query, peer, Transport::Tcp, &mut out) {
            Outcome::Reply => send(&out, place),
            Outcome::Drop => return false,
            Outcome::Forward => {
                // The same in-flight limit as UDP's forwards, with the same
                // answer when none is left.
                let Ok(forwarding) = self.forwards.clone().try_acquire_owned() else {
                    servfail(query, &mut out);
                    send(&out, place);
                    return true;
                };
                let (server, packet) = (self.clone(), query.to_vec());
                let forward = async move {
                    let out = server.forward(&packet, MAX_MESSAGE).await;
                    drop(forwarding);
                    out
                };
                self.spawn_guarded_tcp(query.to_vec(), forward, place, answers.clone());
            }
            Outcome::Complete => {
                let forwarding = self.forwards.clone().try_acquire_owned();
                let (Some(forwarder), Ok(forwarding)) = (self.forwarder.clone(), forwarding) else {
                    // As over UDP: the CNAME alone, uncompleted.
                    send(&out, place);
                    return true;
                };
                let completion = async move {
                    let out = forward::cname::complete(&forwarder, &out, MAX_MESSAGE).await;
                    drop(forwarding);
                    out
                };
                self.spawn_guarded_tcp(query.to_vec(), completion, place, answers.clone());
            }
        }
        true
    }

    /// Runs `answering` (the answer to `query`, which takes the runtime)
    /// on a task under `guard`, then hands what it gives, or SERVFAIL if it
    /// panicked, to the writer.
    fn spawn_guarded_tcp(
        &self,
        query: Vec<u8>,
        answering: impl Future<Output = Vec<u8>> + Send + 'static,
        place: OwnedSemaphorePermit,
        answers: UnboundedSender<Answer>,
    ) {
        let server = self.clone();
        self.tracker.spawn(async move {
            let out = match Guarded::new(answering).await {
                Ok(out) => out,
                Err(panic) => {
                    let mut out = Vec::new();
                    let metrics = server.responder.metrics();
                    if !(server.panics).caught(metrics, Transport::Tcp, &query, &panic, &mut out) {
                        // Nothing to send: the query's place is freed.
                        return;
                    }
                    out
                }
            };
            let _ = answers.send(Answer {
                framed: framing::frame(&out),
                place,
            });
        });
    }
}

/// Writes answers as they come, those ready together in one write, until
/// every sender is gone; an error says why the connection must end.
async fn write_answers(
    mut writer: OwnedWriteHalf,
    mut outbox: UnboundedReceiver<Answer>,
    activity: &Activity,
) -> Result<(), TcpClose> {
    let mut batch = Vec::with_capacity(4096);
    let mut places = Vec::with_capacity(MAX_PIPELINED);
    while let Some(first) = outbox.recv().await {
        batch.clear();
        batch.extend_from_slice(&first.framed);
        places.push(first.place);
        while batch.len() < WRITE_BATCH {
            let Ok(next) = outbox.try_recv() else { break };
            batch.extend_from_slice(&next.framed);
            places.push(next.place);
        }
        match tokio::time::timeout(TCP_IO, writer.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(TcpClose::Client),
            Err(_) => return Err(TcpClose::SlowWrite),
        }
        // Written: the queries' places are free again.
        places.clear();
        activity.touch();
    }
    let _ = tokio::time::timeout(TCP_IO, writer.shutdown()).await;
    Ok(())
}
