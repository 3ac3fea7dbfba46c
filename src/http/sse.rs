//! The live stream of changes, as server-sent events: the kept changes
//! after the one the client names (`?since=` or a reconnecting browser's
//! `Last-Event-ID`), then each change as it is recorded, and a comment
//! every 15 s so that idle proxies keep the connection. At most
//! [`MAX_STREAMS`] at once; a stream that falls more than the broadcast's
//! buffer behind is ended, and its client reconnects and catches up.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::Stream;
use hyper::body::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::{Ask, Reply, api};
use crate::catalog::{Catalog, ChangeEvent};

/// `Content-Type` of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";
/// Streams open at once, at most: more get 503.
pub const MAX_STREAMS: usize = 64;
/// A comment line this often keeps idle proxies from closing the stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// A body of server-sent events.
pub type EventStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// The open streams.
#[derive(Debug, Default)]
pub(super) struct Streams {
    open: Arc<AtomicUsize>,
}

/// Counts a stream open until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Streams {
    /// Adds `disco_http_event_streams` to a `/metrics` text.
    pub fn render_metrics(&self, text: &mut String) {
        text.push_str("# HELP disco_http_event_streams Event streams (/v1/changes/stream) open.\n");
        text.push_str("# TYPE disco_http_event_streams gauge\n");
        let open = self.open.load(Ordering::Relaxed);
        text.push_str(&format!("disco_http_event_streams {open}\n"));
    }

    /// `/v1/changes/stream`.
    pub fn changes(&self, catalog: &Catalog, ask: &Ask<'_>) -> Result<EventStream, Reply> {
        let since = match ask.last_event_id.map(str::to_owned).or(ask.param("since")) {
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| api::bad_request("since", &text, "expected a change number"))?,
            None => catalog.timeline().since(0, 0).1,
        };
        if self.open.fetch_add(1, Ordering::Relaxed) >= MAX_STREAMS {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Reply::text(503, "too many event streams open\n"));
        }
        let open = Open(self.open.clone());
        let (kept, latest, receiver) = catalog.timeline().subscribe(since);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.reset();
        // `retry` tells the browser how soon to reconnect.
        let mut first = String::from("retry: 1000\n\n");
        for event in &kept {
            first.push_str(&frame(event));
        }
        // What came before the subscription was sent from the ring or is
        // gone from it (with `--change-history 0`, all of it): a gap
        // after this is one the live stream itself missed.
        let last = since.max(latest);
        let state = (receiver, heartbeat, last, open);
        let live = futures_util::stream::unfold(
            state,
            |(mut receiver, mut heartbeat, mut last, open)| async move {
                loop {
                    tokio::select! {
                        event = receiver.recv() => match event {
                            // Already sent from the ring.
                            Ok(event) if event.seq <= last => continue,
                            // Changes too many to keep were skipped
                            // (`Timeline::skip`): as after a lag, the client
                            // reconnects and catches up from the ring.
                            Ok(event) if event.seq > last + 1 => return None,
                            Ok(event) => {
                                last = event.seq;
                                let chunk = Bytes::from(frame(&event));
                                return Some((chunk, (receiver, heartbeat, last, open)));
                            }
                            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                        },
                        _ = heartbeat.tick() => {
                            let chunk = Bytes::from_static(b": keep-alive\n\n");
                            return Some((chunk, (receiver, heartbeat, last, open)));
                        }
                    }
                }
            },
        );
        let head = futures_util::stream::once(std::future::ready(Bytes::from(first)));
        Ok(Box::pin(futures_util::StreamExt::chain(head, live)))
    }
}

/// One change as an event: its number as the id, its JSON as the data.
fn frame(event: &ChangeEvent) -> String {
    format!(
        "id: {}\nevent: change\ndata: {}\n\n",
        event.seq,
        api::change_json(event)
    )
}
