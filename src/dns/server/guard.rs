//! Catching a panic while answering one packet, so that one bad packet
//! costs one answer and never a listener.
//!
//! Every query is answered inside [`catch_panic`] (per packet, not per
//! thread: the socket's next packet is answered as if nothing happened).
//! A caught panic is counted in `disco_query_panics_total`, answered
//! SERVFAIL when the packet has a header, and logged at most once a minute
//! with the packet in hex and how many were not logged since: a client
//! repeating the packet cannot flood the log. While a panic is being
//! caught, the process's panic hook stays quiet for it (the hook would
//! print every one); every other panic still reaches the hook that was
//! there before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::dns::responder::{Transport, servfail};
use crate::metrics::Metrics;

/// At most one caught panic is logged per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Bytes of a packet shown in the log (a query is rarely longer).
const LOGGED_BYTES: usize = 512;

thread_local! {
    /// Whether this thread is inside [`catch_panic`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// What the hook saw of the panic [`catch_panic`] is catching.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into `Err` with its message and location.
pub(super) fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    let outer = CATCHING.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(outer);
    result.map_err(|payload| {
        CAUGHT
            .take()
            .unwrap_or_else(|| payload_text(payload.as_ref()).to_owned())
    })
}

/// A future polled inside [`catch_panic`]: a panic in any poll ends it
/// with `Err` instead of killing its task unseen.
pub(super) struct Guarded<T> {
    inner: Pin<Box<dyn Future<Output = T> + Send>>,
}

impl<T> Guarded<T> {
    /// Guards `future`.
    pub(super) fn new(future: impl Future<Output = T> + Send + 'static) -> Self {
        Guarded {
            inner: Box::pin(future),
        }
    }
}

impl<T> Future for Guarded<T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_panic(|| self.inner.as_mut().poll(cx)) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    (payload.downcast_ref::<&str>().copied())
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Keeps the default panic output for every panic but the ones
/// [`catch_panic`] catches, whose text it keeps for the caller's log.
fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                CAUGHT.set(Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Counts and logs the panics caught on the query path.
#[derive(Debug)]
pub(super) struct PanicLog {
    /// When one was last logged; a std Mutex, because nothing awaits while
    /// it is held and it is only taken on a panic.
    last_logged: Mutex<Option<Instant>>,
    /// Caught since the last one logged.
    unlogged: AtomicU64,
}

impl PanicLog {
    pub(super) fn new() -> Self {
        PanicLog {
            last_logged: Mutex::new(None),
            unlogged: AtomicU64::new(0),
        }
    }

    /// Records a panic caught answering `packet`, and writes the response
    /// it gets into `out`: SERVFAIL, or nothing for a packet without a
    /// header. Whether there is something to send.
    pub(super) fn caught(
        &self,
        metrics: &Metrics,
        transport: Transport,
        packet: &[u8],
        panic: &str,
        out: &mut Vec<u8>,
    ) -> bool {
        metrics.record_query_panic(transport == Transport::Tcp);
        self.log(transport, packet, panic);
        out.clear();
        // SERVFAIL reads only the header and the question; should even that
        // fail, the packet is dropped.
        let answered = catch_panic(|| servfail(packet, out)).is_ok();
        answered && !out.is_empty()
    }

    fn log(&self, transport: Transport, packet: &[u8], panic: &str) {
        let now = Instant::now();
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < LOG_INTERVAL) {
            self.unlogged.fetch_add(1, Relaxed);
            return;
        }
        *last = Some(now);
        drop(last);
        let unlogged = self.unlogged.swap(0, Relaxed);
        tracing::error!(
            ?transport,
            packet = %hex(packet),
            panic,
            not_logged_since_last = unlogged,
            "a panic answering a packet was caught; the listener goes on serving \
             (please report it with the packet)"
        );
    }
}

/// The first [`LOGGED_BYTES`] of `packet` in hex, and its length when cut.
fn hex(packet: &[u8]) -> String {
    let shown = &packet[..packet.len().min(LOGGED_BYTES)];
    let mut out = String::with_capacity(2 * shown.len() + 24);
    for byte in shown {
        let _ = write!(out, "{byte:02x}");
    }
    if shown.len() < packet.len() {
        let _ = write!(out, "… ({} bytes)", packet.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message_and_location() {
        let caught = catch_panic(|| -> u8 { panic!("bad packet") }).unwrap_err();
        assert!(caught.contains("bad packet"), "{caught}");
        assert!(caught.contains("guard.rs"), "{caught}");
        assert_eq!(catch_panic(|| 7), Ok(7));
    }

    #[test]
    fn a_caught_panic_is_counted_answered_servfail_and_logged_once_a_minute() {
        let metrics = Metrics::new();
        let log = PanicLog::new();
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        let mut out = Vec::new();
        assert!(log.caught(&metrics, Transport::Udp, query, "boom", &mut out));
        assert_eq!(out[..2], [0x12, 0x34]);
        assert_eq!(out[3] & 0x0f, 2, "SERVFAIL");
        assert!(!log.caught(&metrics, Transport::Udp, b"\x12", "boom", &mut out));
        assert_eq!(log.unlogged.load(Relaxed), 1, "the second is not logged");
        assert_eq!(metrics.panics_total(), 2);
    }

    #[tokio::test]
    async fn a_guarded_future_that_panics_ends_in_an_error() {
        let panicking = Guarded::new(async {
            tokio::task::yield_now().await;
            if std::hint::black_box(true) {
                panic!("in a forward");
            }
            1
        });
        assert!(panicking.await.unwrap_err().contains("in a forward"));
        assert_eq!(Guarded::new(async { 1 }).await, Ok(1));
    }

    #[test]
    fn long_packets_are_cut_in_the_log() {
        assert_eq!(hex(b"\x00\xff"), "00ff");
        assert!(hex(&[0; 600]).ends_with("… (600 bytes)"));
    }
}
